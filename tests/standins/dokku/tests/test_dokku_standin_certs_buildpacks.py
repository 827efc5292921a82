"""certs:* and buildpacks:* as Dokku's certs plugin (bash) and buildpacks plugin (Go) do."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from dokku_standin.core import Context
from dokku_standin.proxy import render
from dokku_standin.state import Settings


def self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    crt, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(key),
            "-out",
            str(crt),
        ],
        check=True,
        capture_output=True,
    )
    return crt, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_certs_add_files_or_tar_and_the_https_server(dokku, tmp_path: Path):
    dokku("apps:create", "app")
    dokku("domains:set", "app", "app.example.org")
    crt, key = self_signed(tmp_path, "app.example.org")
    missing = dokku("certs:add", "app", str(crt), str(tmp_path / "nope.key"))
    assert missing.stderr == " !     KEY file specified not found, please check file paths\n"
    assert dokku("certs:report", "app", "--ssl-enabled").stdout == "false\n"
    assert dokku("certs:add", "app", str(crt), str(key)).rc == 0
    tls = dokku.root / "app" / "tls"
    assert oct((tls / "server.key").stat().st_mode & 0o777) == "0o640"
    assert dokku("certs:report", "app", "--ssl-enabled").stdout == "true\n"
    assert dokku("certs:show", "app", "crt").stdout == crt.read_text()
    assert "CN" in dokku("certs:report", "app", "--ssl-subject").stdout

    ctx = Context(Settings(**dokku.settings))
    conf = render(ctx, "app", ["127.0.0.5:5000"])
    assert "return 301 https://$host:443$request_uri;" in conf
    assert "listen      127.0.0.1:443 ssl http2;" in conf
    assert f"ssl_certificate           {tls}/server.crt;" in conf
    assert 'add_header Strict-Transport-Security "max-age=15724800; includeSubdomains"' in conf
    assert "server 127.0.0.5:5000;" in conf
    assert dokku("urls", "app").stdout == "https://app.example.org\n"

    assert dokku("certs:remove", "app").rc == 0
    assert "301" not in render(ctx, "app", ["127.0.0.5:5000"])
    # a tar on stdin: exactly one .crt and one .key
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(crt, "server.crt")
    assert dokku("certs:add", "app", stdin=buffer.getvalue()).stderr == (
        " !     Tar archive is missing .key file\n"
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(crt, "server.crt")
        tar.add(key, "server.key")
    assert dokku("certs:add", "app", stdin=buffer.getvalue()).rc == 0
    assert (tls / "server.key").read_text() == key.read_text()


def test_domains_disable_gives_the_app_a_random_port(dokku):
    dokku("apps:create", "app")
    dokku("domains:set", "app", "app.example.org")
    ctx = Context(Settings(**dokku.settings))
    assert "listen      127.0.0.1:80;" in render(ctx, "app", [])
    assert dokku("domains:disable", "app").rc == 0
    assert dokku("domains:report", "app", "--domains-app-enabled").stdout == "false\n"
    conf = render(ctx, "app", [])
    assert "server_name" not in conf and "listen      127.0.0.1:80;" not in conf
    port = dokku("proxy:report", "app", "--proxy-port").stdout.strip()
    assert int(port) > 1024 and f"listen      127.0.0.1:{port};" in conf
    dokku("domains:set-global", "dokku.test")
    assert dokku("domains:enable", "app").rc == 0
    assert dokku("domains:report", "app", "--domains-app-vhosts").stdout == "app.dokku.test\n"
    assert "listen      127.0.0.1:80;" in render(ctx, "app", [])


def test_buildpacks_list_as_the_plugin_keeps_it(dokku):
    dokku("apps:create", "app")
    assert dokku("buildpacks:add", "app", "heroku/python").rc == 0
    pinned = "https://github.com/heroku/heroku-buildpack-nodejs.git#v300"
    assert dokku("buildpacks:add", "app", pinned).rc == 0
    assert dokku("buildpacks:report", "app", "--buildpacks-list").stdout == (
        f"https://github.com/heroku/heroku-buildpack-python.git,{pinned}\n"
    )
    bad = dokku("buildpacks:add", "app", "not a url")
    assert bad.rc == 1 and bad.stderr == " !     Invalid buildpack specified: not a url\n"
    assert dokku("buildpacks:clear", "app").rc == 0
    assert dokku("buildpacks:report", "app", "--buildpacks-list").stdout == "\n"
