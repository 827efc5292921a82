"""Deploys through the stand-in, end to end on this machine (no Docker, no systemd).

A tiny app (Python's http.server, an empty requirements.txt) is built "the way a buildpack
would", released and run; these tests hold the deploy semantics the roles rely on.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

WEB = "web: exec python -m http.server $PORT --bind $BIND_HOST"
RELEASE = (
    'release: python -c "import os, pathlib;'
    " pathlib.Path(os.environ['MARKER']).write_text(os.environ['GIT_REV'])\""
)
HEALTHCHECK = {
    "healthchecks": {"web": [{"type": "startup", "path": "/", "attempts": 5, "wait": 1}]}
}


def archive(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def app_files(body: str, procfile: list[str], app_json: dict | None = None) -> dict[str, str]:
    files = {
        "requirements.txt": "",
        "Procfile": "\n".join(procfile) + "\n",
        "index.html": body,
    }
    if app_json is not None:
        files["app.json"] = json.dumps(app_json)
    return files


def deploy(dokku, app: str, files: dict[str, str]):
    return dokku("git:from-archive", "--archive-type", "tar.gz", app, "--", stdin=archive(files))


def web_address(dokku, app: str = "app", dyno: str = "web.1") -> str:
    """Where the dyno's container listens: $DOKKU_ROOT/<app>/IP.<dyno> and PORT.<dyno>."""
    ip = (dokku.root / app / f"IP.{dyno}").read_text().strip()
    port = (dokku.root / app / f"PORT.{dyno}").read_text().strip()
    return f"{ip}:{port}"


def get(dokku, app: str = "app", path: str = "/index.html") -> str:
    with urllib.request.urlopen(f"http://{web_address(dokku, app)}{path}", timeout=5) as response:
        return response.read().decode()


def cid(dokku, app: str) -> str:
    status = dokku("ps:report", app, "--status-web.1").stdout
    match = re.fullmatch(r"running \(CID: ([0-9a-f]{11})\)\n", status)
    assert match, status
    return match.group(1)


def sha(dokku, app: str) -> str:
    return dokku("git:report", app, "--git-sha").stdout.strip()


def test_deploy_release_restart_and_failed_deploys(dokku, tmp_path: Path):
    marker = tmp_path / "released"
    dokku("apps:create", "app")
    dokku("config:set", "--no-restart", "app", f"MARKER={marker}")

    first = deploy(dokku, "app", app_files("v1", [RELEASE, WEB], HEALTHCHECK))
    assert first.rc == 0, first.stdout + first.stderr
    assert "-----> Python app detected" in first.stdout
    assert "Executing release task from Procfile in ephemeral container" in first.stdout
    assert "All checks successful (web.1)" in first.stdout
    assert "=====> Application deployed:" in first.stdout
    assert get(dokku) == "v1"
    # the release task ran with the app's config, including GIT_REV set by the git plugin
    assert marker.read_text() == sha(dokku, "app")
    assert dokku("ps:report", "app", "--deployed").stdout == "true\n"
    assert dokku("ps:report", "app", "--running").stdout == "true\n"
    # every Procfile type is in the scale, release too (ps updateScale: procfile-util list)
    assert dokku("--quiet", "ps:scale", "app").stdout == "release: 0\nweb:  1\n"
    web = cid(dokku, "app")

    # identical content: git-from-directory returns 1 (stderr), nothing restarts
    same = deploy(dokku, "app", app_files("v1", [RELEASE, WEB], HEALTHCHECK))
    assert same.rc == 1
    assert " !     No changes detected, skipping git commit\n" in same.stderr
    assert cid(dokku, "app") == web

    # config:set --no-restart changes nothing running; config:set redeploys (release again)
    assert dokku("config:set", "--no-restart", "app", "X=1").rc == 0
    assert cid(dokku, "app") == web
    marker.unlink()
    restarted = dokku("config:set", "app", "X=2")
    assert "-----> Restarting app app\n" in restarted.stdout
    assert "-----> Releasing app...\n" in restarted.stdout
    assert marker.exists()
    assert cid(dokku, "app") != web
    web = cid(dokku, "app")

    # ps:restart: the same build started again, no release task
    marker.unlink()
    assert dokku("ps:restart", "app").rc == 0
    assert not marker.exists()
    assert cid(dokku, "app") != web
    web, good_sha = cid(dokku, "app"), sha(dokku, "app")

    # a failing release task fails the deploy; the branch moves back; v1 keeps serving
    broken = deploy(dokku, "app", app_files("v2", ["release: exit 3", WEB], HEALTHCHECK))
    assert broken.rc == 1
    assert " !     Execution of release task failed: exit 3\n" in broken.stderr
    assert sha(dokku, "app") == good_sha
    assert cid(dokku, "app") == web
    assert get(dokku) == "v1"

    # a web process that fails its checks: the old one is started again
    failing = deploy(dokku, "app", app_files("v3", ["web: sleep 60"], HEALTHCHECK))
    assert failing.rc == 1
    assert " !     Could not start due to 1 failed checks (web.1)\n" in failing.stderr
    assert sha(dokku, "app") == good_sha
    assert get(dokku) == "v1"

    # the same content that failed before deploys again once it works (nothing was kept)
    fixed = deploy(dokku, "app", app_files("v2", [RELEASE, WEB], HEALTHCHECK))
    assert fixed.rc == 0, fixed.stderr
    assert get(dokku) == "v2"
    assert sha(dokku, "app") != good_sha


def test_web_process_is_restarted_on_failure(dokku):
    dokku("apps:create", "app")
    assert deploy(dokku, "app", app_files("up", [WEB], HEALTHCHECK)).rc == 0
    (state_file,) = (Path(dokku.lib) / "data/standin/run").glob("app.web.1.*.state.json")
    state = json.loads(state_file.read_text())
    os.kill(state["child_pid"], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if get(dokku) == "up":
                break
        except OSError:
            time.sleep(0.2)
    assert get(dokku) == "up"
    assert dokku("ps:report", "app", "--running").stdout == "true\n"
    # logs: "<RFC 3339 time> app[<dyno>]: <line>", the prefix coloured as Dokku's sed does
    logs = dokku("logs", "app", "-n", "50").stdout
    assert re.search(r"\x1b\[36m\d{4}-\d\d-\d\dT[\d:.]+Z app\[web\.1\]:\x1b\[0m ", logs), logs
    assert "GET /index.html" in dokku("logs", "app", "--quiet").stdout
    ip, port = web_address(dokku).split(":")
    dokku("apps:destroy", "app", "--force")
    with socket.socket() as sock:
        assert sock.connect_ex((ip, int(port))) != 0


def test_app_json_env_and_formation(dokku):
    dokku("apps:create", "app")
    dokku("config:set", "--no-restart", "app", "KEEP=mine")
    app_json = {
        **HEALTHCHECK,
        "env": {
            "SECRET": {"description": "made once", "generator": "secret"},
            "FOO": "bar",
            "KEEP": {"value": "default"},
        },
        "formation": {"web": {"quantity": 1}, "worker": {"quantity": 0}},
    }
    procfile = [WEB, "worker: sleep 1000"]
    first = deploy(dokku, "app", app_files("a", procfile, app_json))
    assert first.rc == 0, first.stderr
    assert "-----> Setting 2 env var(s) from app.json" in first.stdout
    env = json.loads(dokku("config:export", "--format", "json", "app").stdout)
    assert re.fullmatch(r"[0-9a-f]{64}", env["SECRET"]) and env["FOO"] == "bar"
    assert env["KEEP"] == "mine"
    # a formation with quantities takes ps:scale away (ps-can-scale false)
    assert dokku("--quiet", "ps:scale", "app").stdout == "web:  1\nworker: 0\n"
    refused = dokku("ps:scale", "app", "worker=1")
    assert refused.rc == 1
    assert refused.stderr == (
        " !     App app contains an app.json file with a formations key and cannot be manually"
        " scaled\n"
    )
    second = deploy(dokku, "app", app_files("b", procfile, app_json))
    assert second.rc == 0, second.stderr
    # later deploys leave app.json's values alone (no "sync")
    assert (
        json.loads(dokku("config:export", "--format", "json", "app").stdout)["SECRET"]
        == (env["SECRET"])
    )
