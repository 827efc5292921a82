"""Zero-downtime deploys, checks and containers as Dokku's docker-local scheduler runs them.

dokku/dokku v0.38.27 plugins/scheduler-docker-local/scheduler-deploy (old containers keep
serving until the new ones pass their checks, then SIGTERM, then stop after
wait-to-retire), check-deploy (Host: the first domain, or none), Docker's container host
names and on-failure:10. Takes about a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from dokku_standin.supervisor import Instance, ProcessSupervisor
from test_dokku_standin_deploy import archive, web_address

pytestmark = pytest.mark.slow

# A web process that says which release and which host serves it, and logs the headers of
# every request (the checks' requests among them).
SERVER = r"""
import http.server, json, os, pathlib, socket
release = pathlib.Path("RELEASE").read_text().strip()
log = pathlib.Path(os.environ["REQUEST_LOG"])

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with log.open("a") as handle:
            handle.write(json.dumps({"path": self.path, "host": self.headers.get("Host"),
                                     "proto": self.headers.get("X-Forwarded-Proto")}) + "\n")
        broken = self.path.startswith("/healthz") and release == "broken"
        body = json.dumps({"release": release, "hostname": socket.gethostname(),
                           "env_hostname": os.environ.get("HOSTNAME")}).encode()
        self.send_response(500 if broken else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(
    (os.environ["BIND_HOST"], int(os.environ["PORT"])), Handler).serve_forever()
"""
APP_JSON = {
    "healthchecks": {
        "web": [
            {
                "type": "startup",
                "name": "web check",
                "path": "/healthz",
                "initialDelay": 2,
                "attempts": 3,
                "wait": 1,
            }
        ]
    }
}


def files(release: str) -> dict[str, str]:
    return {
        "requirements.txt": "",
        "Procfile": "web: exec python server.py\nworker: exec python server.py\n",
        "server.py": SERVER,
        "RELEASE": release + "\n",
        "app.json": json.dumps(APP_JSON),
    }


def get(address: str) -> dict:
    with urllib.request.urlopen(f"http://{address}/", timeout=5) as response:
        return json.loads(response.read())


def answers(address: str) -> bool:
    try:
        get(address)
    except OSError:
        return False
    return True


def cid(dokku, dyno: str = "web.1") -> str:
    return (dokku.root / "app" / f"CONTAINER.{dyno}").read_text().strip()


def checks_seen(log: Path) -> list[dict]:
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["path"] == "/healthz"]


def wait_for(predicate, seconds: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_zero_downtime_deploy_checks_hostnames_and_scaling(dokku, tmp_path: Path):
    log = tmp_path / "requests.jsonl"
    log.touch()
    log.chmod(0o666)
    dokku("apps:create", "app")
    dokku("config:set", "--no-restart", "app", f"REQUEST_LOG={log}")
    assert dokku("checks:set", "app", "wait-to-retire", "2").rc == 0

    first = dokku(
        "git:from-archive", "--archive-type", "tar.gz", "app", "--", stdin=archive(files("v1"))
    )
    assert first.rc == 0, first.stdout + first.stderr
    v1 = web_address(dokku)
    assert get(v1)["release"] == "v1"
    # No domain (no global VHOST: vhosts off): no Host override, the container's address.
    assert {c["host"] for c in checks_seen(log)} == {v1}
    # The container's host name is its ID's first 12 characters, as Docker's.
    served = get(v1)
    assert served["env_hostname"] == cid(dokku)[:12]
    if os.geteuid() == 0:
        assert served["hostname"] == cid(dokku)[:12]

    # Domains in the order given: the first one (not sorted) is the checks' Host header.
    assert dokku("domains:set", "app", "b.example.org", "a.example.org").rc == 0
    log.write_text("")
    second = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parents[1] / "dokku"),
            "git:from-archive",
            "--archive-type",
            "tar.gz",
            "app",
            "--",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "DOKKU_STANDIN_CONFIG": str(dokku.config)},
    )
    second.stdin.write(archive(files("v2")))
    second.stdin.close()
    # The old container serves throughout, until the new one passed its checks.
    polls, failures = 0, []
    while second.poll() is None and web_address(dokku) == v1:
        try:
            assert get(v1)["release"] == "v1"
        except OSError as exc:
            failures.append(exc)
        polls += 1
        time.sleep(0.1)
    output = second.stdout.read().decode()
    assert second.wait() == 0, output
    assert polls > 5 and not failures, (polls, failures)
    v2 = web_address(dokku)
    assert v2 != v1 and get(v2)["release"] == "v2"
    assert {c["host"] for c in checks_seen(log)} == {"b.example.org"}
    assert "-----> Shutting down old containers in 2 seconds" in output
    # SIGTERM at once, stopped and removed after wait-to-retire
    assert wait_for(lambda: not answers(v1), 10)
    sup = ProcessSupervisor(dokku.lib / "data" / "standin" / "run")
    assert wait_for(
        lambda: (
            [n for n in sup.names() if n.startswith("app.web.1.")]
            == [f"app.web.1.{cid(dokku)[:12]}"]
        )
    )

    # web=2: two web containers, two addresses, two host names; then a worker
    assert dokku("ps:scale", "app", "web=2", "worker=1").rc == 0
    assert dokku("--quiet", "ps:scale", "app").stdout == "web:  2\nworker: 1\n"
    one, two = web_address(dokku, dyno="web.1"), web_address(dokku, dyno="web.2")
    assert one != two
    names = {get(one)["env_hostname"], get(two)["env_hostname"]}
    assert names == {cid(dokku, "web.1")[:12], cid(dokku, "web.2")[:12]}
    assert dokku("ps:report", "app", "--processes").stdout == "3\n"

    # A release that fails its checks does not go live: the old containers keep serving.
    before = {dyno: cid(dokku, dyno) for dyno in ("web.1", "web.2", "worker.1")}
    broken = dokku(
        "git:from-archive", "--archive-type", "tar.gz", "app", "--", stdin=archive(files("broken"))
    )
    assert broken.rc == 1
    assert " !     Could not start due to 1 failed checks (web.1)\n" in broken.stderr
    assert {dyno: cid(dokku, dyno) for dyno in before} == before
    assert get(one)["release"] == get(two)["release"] == "v2"
    assert [n for n in sup.names() if n.startswith("app.")] == sorted(
        f"app.{dyno}.{c[:12]}" for dyno, c in before.items()
    )


def test_restart_policy_gives_up_after_ten_restarts(tmp_path: Path):
    """on-failure:10 (ps restart-policy default): the first run and 10 restarts, no more."""
    script = tmp_path / "crash.sh"
    script.write_text("#!/bin/bash\necho crashing\nexit 3\n")
    script.chmod(0o755)
    env_file = tmp_path / "env"
    env_file.write_text("")
    sup = ProcessSupervisor(tmp_path / "run")
    inst = Instance(
        app="app",
        process_type="worker",
        index=1,
        script=str(script),
        env_file=str(env_file),
        cwd=str(tmp_path),
        user="",
        stop_timeout=1,
        description="crashes",
        cid="ab" * 32,
    )
    sup.start(inst)
    assert wait_for(lambda: sup.status(inst.container).state == "exited", 40)
    assert sup.status(inst.container).restarts == 10
    assert len([line for _, line in sup.log_lines(inst.container, 0) if line == "crashing"]) == 11
    sup.remove(inst.container)


def test_checks_send_x_forwarded_proto_with_a_certificate(dokku, tmp_path: Path):
    from dokku_standin.core import Context
    from dokku_standin.deploy import check_headers
    from dokku_standin.state import Settings

    dokku("apps:create", "app")
    ctx = Context(Settings(**dokku.settings))
    assert check_headers(ctx, "app") == {"Accept": "*/*"}
    dokku("domains:set", "app", "*", "localhost", "*.example.org", "example.org")
    # `localhost` and `*` are skipped; a wildcard is taken as it is
    assert check_headers(ctx, "app")["Host"] == "*.example.org"
    tls = dokku.root / "app" / "tls"
    tls.mkdir()
    (tls / "server.crt").write_text("crt")
    (tls / "server.key").write_text("key")
    assert check_headers(ctx, "app")["X-Forwarded-Proto"] == "https"
    # vhosts off: no Host header even though the VHOST file had names
    assert dokku("domains:disable", "app").rc == 0
    assert "Host" not in check_headers(ctx, "app")
