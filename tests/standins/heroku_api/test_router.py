"""The router in front of the dynos behaves as Heroku's (devcenter: http-routing).

The session stand-in runs with a short request timeout and preboot delay (conftest)
so that H12 and a preboot switch are seen in seconds, not 30 s and 3 minutes.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse

import pytest

from tests.standins.heroku_api.client import StandInClient, StandInProcess
from tests.standins.heroku_api.conftest import PREBOOT_DELAY, ROUTER_TIMEOUT
from tests.standins.heroku_api.router import KEEPALIVE_IDLE_SECONDS, DynoConnections
from tests.standins.heroku_api.testapps import (
    ECHO_APP,
    finish_build,
    finish_release,
    make_tarball,
    upload_and_build,
)


def _deploy_echo(standin: StandInClient, app: str) -> dict:
    build = upload_and_build(standin, app, make_tarball(ECHO_APP))
    build, output = finish_build(standin, app, build)
    assert build["status"] == "succeeded", output
    release = finish_release(standin, app, build["release"]["id"])
    _wait_routed(standin, app, 1)
    return release


def _wait_routed(standin: StandInClient, app: str, count: int, timeout: float = 60) -> list:
    return standin.wait(
        lambda: [d for d in standin.admin("GET", "dynos") if d["app"] == app and d["routed"]],
        lambda d: len(d) == count,
        timeout,
    )


def _ports(standin: StandInClient, app: str) -> tuple[int, int]:
    """(HTTPS, HTTP) router ports of the app; web_url is on the HTTP one here."""
    ports = standin.admin("GET", "routers")[app]
    info = standin.ok("GET", f"/apps/{app}")
    assert urllib.parse.urlsplit(info["web_url"]).port == ports["http"]
    assert standin.ok("GET", f"/apps/{app}/domains")[0]["hostname"] == "127.0.0.1"
    return ports["https"], ports["http"]


class Client:
    """One keep-alive connection to the router, over TLS (the test CA) or plain HTTP."""

    def __init__(self, process: StandInProcess, port: int, tls: bool, host: str | None = None):
        if tls:
            context = ssl.create_default_context(
                cafile=str(process.state_dir / "router" / "ca.pem")
            )
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", port, context=context, timeout=30
            )
        else:
            self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.host = host

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        hdrs = dict(headers or {})
        if self.host:
            hdrs["Host"] = self.host
        self.conn.request("GET", path, headers=hdrs)
        resp = self.conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


@pytest.fixture
def echo_app(standin: StandInClient, app_name: str) -> str:
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "hi"})
    # The dynos tell which release they run (HEROKU_RELEASE_VERSION).
    standin.ok("PATCH", f"/apps/{app_name}/features/runtime-dyno-metadata", {"enabled": True})
    _deploy_echo(standin, app_name)
    return app_name


def test_tls_and_plain_http_with_herokus_headers(
    standin: StandInClient, standin_process: StandInProcess, echo_app: str
) -> None:
    tls_port, http_port = _ports(standin, echo_app)
    before = int(time.time() * 1000)
    status, headers, body = Client(standin_process, tls_port, tls=True).get(
        "/headers", {"X-Forwarded-For": "203.0.113.7", "X-Request-Id": "a" * 24}
    )
    seen = json.loads(body)["headers"]
    assert status == 200 and headers["via"] == "1.1 heroku-router"
    assert seen["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"  # appended
    assert seen["X-Forwarded-Proto"] == "https"
    assert seen["X-Forwarded-Port"] == str(tls_port)
    assert before <= int(seen["X-Request-Start"]) <= int(time.time() * 1000)
    assert seen["X-Request-Id"] == "a" * 24
    assert seen["Via"] == "1.1 heroku-router"
    assert seen["Host"] == f"127.0.0.1:{tls_port}"  # the app's own host, as sent
    _, _, body = Client(standin_process, http_port, tls=False).get(
        "/headers", {"X-Request-Id": "short"}
    )
    seen = json.loads(body)["headers"]
    assert seen["X-Forwarded-Proto"] == "http" and seen["X-Forwarded-Port"] == str(http_port)
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert len(seen["X-Request-Id"]) == 36  # too short to keep: a new uuid
    log = (standin_process.state_dir / "logs" / echo_app / "platform.log").read_text()
    assert 'heroku[router]: at=info method=GET path="/headers"' in log
    assert "protocol=https" in log and "protocol=http" in log


def test_unknown_host_is_refused_and_custom_domain_served_with_acm(
    standin: StandInClient, standin_process: StandInProcess, echo_app: str
) -> None:
    tls_port, http_port = _ports(standin, echo_app)
    status, _, body = Client(standin_process, http_port, False, "www.example.org").get("/")
    assert (status, body) == (404, b"No such app\n")
    standin.ok(
        "POST", f"/apps/{echo_app}/domains", {"hostname": "www.example.org", "sni_endpoint": None}
    )
    status, _, _ = Client(standin_process, http_port, False, "www.example.org").get("/headers")
    assert status == 200
    standin.ok("POST", f"/apps/{echo_app}/acm")
    context = ssl.create_default_context(cafile=str(standin_process.state_dir / "router/ca.pem"))
    raw = context.wrap_socket(
        __import__("socket").create_connection(("127.0.0.1", tls_port), 10),
        server_hostname="www.example.org",
    )
    assert ("DNS", "www.example.org") in raw.getpeercert()["subjectAltName"]  # ACM's cert
    raw.close()


def test_keepalive_to_dynos_and_the_feature_that_disables_it(
    standin: StandInClient, standin_process: StandInProcess, echo_app: str
) -> None:
    _, http_port = _ports(standin, echo_app)
    client = Client(standin_process, http_port, tls=False)
    peers = {json.loads(client.get("/headers")[2])["peer_port"] for _ in range(3)}
    assert len(peers) == 1  # one kept-alive router-to-dyno connection
    standin.ok(
        "PATCH", f"/apps/{echo_app}/features/http-disable-keepalive-to-dyno", {"enabled": True}
    )
    answers = [json.loads(client.get("/headers")[2]) for _ in range(3)]
    assert len({a["peer_port"] for a in answers}) == 3
    assert {a["headers"].get("Connection") for a in answers} == {"close"}


def test_idle_dyno_connections_are_dropped_after_the_keepalive_window() -> None:
    assert KEEPALIVE_IDLE_SECONDS == 90  # http-routing#keepalives (Router 2.0)
    pool = DynoConnections(idle=0.2)
    first = pool.get(1, 1)
    pool.put(1, first)
    assert pool.get(1, 1) is first  # reused while fresh
    pool.put(1, first)
    time.sleep(0.3)
    assert pool.get(1, 1) is not first and pool.opened == 2


def test_a_client_stuck_in_its_tls_handshake_does_not_hold_up_the_others(
    standin: StandInClient, standin_process: StandInProcess, echo_app: str
) -> None:
    """Heroku's router serves each connection on its own (Router 2.0 is concurrent): a
    client that opens a TCP connection and never sends its ClientHello, and a burst of
    new TLS connections, as 50 load threads make, do not wait behind each other."""
    tls_port, _ = _ports(standin, echo_app)
    silent = [socket.create_connection(("127.0.0.1", tls_port)) for _ in range(3)]
    try:
        time.sleep(0.2)  # let the listener accept them
        results: list[int] = []

        def fetch() -> None:
            client = Client(standin_process, tls_port, tls=True)
            client.conn.timeout = 10
            results.append(client.get("/headers")[0])

        started = time.monotonic()
        threads = [threading.Thread(target=fetch) for _ in range(60)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert results == [200] * 60, results
        assert time.monotonic() - started < 10
    finally:
        for sock in silent:
            sock.close()


def test_h12_after_the_request_timeout(
    standin: StandInClient, standin_process: StandInProcess, echo_app: str
) -> None:
    _, http_port = _ports(standin, echo_app)
    began = time.monotonic()
    status, _, body = Client(standin_process, http_port, tls=False).get(
        f"/sleep?seconds={ROUTER_TIMEOUT + 3}"
    )
    took = time.monotonic() - began
    assert status == 503 and b"Application Error" in body
    assert ROUTER_TIMEOUT <= took < ROUTER_TIMEOUT + 3
    log = (standin_process.state_dir / "logs" / echo_app / "platform.log").read_text()
    assert 'at=error code=H12 desc="Request timeout" method=GET path="/sleep' in log
    assert "status=503" in log


def test_routes_only_to_up_dynos_of_the_formation(
    standin: StandInClient, standin_process: StandInProcess, echo_app: str
) -> None:
    _, http_port = _ports(standin, echo_app)
    standin.ok(
        "PATCH",
        f"/apps/{echo_app}/formation/web",
        {"quantity": 2, "dyno_size": {"name": "standard-1X"}},
    )
    _wait_routed(standin, echo_app, 2)
    client = Client(standin_process, http_port, tls=False)
    assert {json.loads(client.get("/headers")[2])["dyno"] for _ in range(6)} == {"web.1", "web.2"}
    standin.ok("PATCH", f"/apps/{echo_app}/formation/web", {"quantity": 1})
    _wait_routed(standin, echo_app, 1)
    standin.wait(
        lambda: {d["name"] for d in standin.admin("GET", "dynos") if d["app"] == echo_app},
        lambda names: names == {"web.1"},
        30,
    )
    assert {json.loads(client.get("/headers")[2])["dyno"] for _ in range(4)} == {"web.1"}
    standin.ok("PATCH", f"/apps/{echo_app}/formation/web", {"quantity": 0})
    status, _, _ = Client(standin_process, http_port, tls=False).get("/headers")
    assert status == 503
    log = (standin_process.state_dir / "logs" / echo_app / "platform.log").read_text()
    assert 'code=H14 desc="No web dynos running"' in log


def _rollout(standin: StandInClient, process: StandInProcess, app: str) -> dict:
    """Change a config var (a new release) while a client keeps requesting; what it saw."""
    _, http_port = _ports(standin, app)
    seen: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            client = Client(process, http_port, tls=False)
            try:
                status, _, body = client.get("/headers")
                release = json.loads(body)["release"] if status == 200 else ""
            except (OSError, http.client.HTTPException, ValueError):
                status, release = 0, ""
            seen.append((time.monotonic(), status, release))
            time.sleep(0.05)

    timeline: list[list[tuple[str, bool, int]]] = []
    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    standin.ok("PATCH", f"/apps/{app}/config-vars", {"GREETING": "hello"})
    deadline = time.monotonic() + PREBOOT_DELAY + 40
    releases = standin.ok("GET", f"/apps/{app}/releases")
    latest = max(r["version"] for r in releases)
    while time.monotonic() < deadline:
        dynos = [d for d in standin.admin("GET", "dynos") if d["app"] == app]
        timeline.append([(d["name"], d["retiring"], d["release_version"]) for d in dynos])
        if [d["release_version"] for d in dynos] == [latest] and all(d["routed"] for d in dynos):
            break
        time.sleep(0.1)
    time.sleep(1)
    stop.set()
    thread.join(10)
    return {"seen": seen, "timeline": timeline, "latest": latest}


def test_preboot_starts_new_dynos_before_stopping_old(
    standin: StandInClient, standin_process: StandInProcess, echo_app: str
) -> None:
    standin.ok("PATCH", f"/apps/{echo_app}/formation/web", {"dyno_size": {"name": "standard-1X"}})
    _wait_routed(standin, echo_app, 1)
    standin.ok("PATCH", f"/apps/{echo_app}/features/preboot", {"enabled": True})
    result = _rollout(standin, standin_process, echo_app)
    assert [s for s in result["seen"] if s[1] != 200] == []  # no request failed
    both = [t for t in result["timeline"] if len(t) == 2]
    assert both, result["timeline"]  # old and new web.1 ran side by side
    assert {retiring for _, retiring, _ in both[0]} == {True, False}
    served = [release for _, _, release in result["seen"]]
    assert served[-1] == f"v{result['latest']}"
    switch = served.index(f"v{result['latest']}")
    assert all(r != f"v{result['latest']}" for r in served[:switch])  # one switch, no mixing
    assert f"v{result['latest']}" in set(served[switch:]) and len(set(served[switch:])) == 1
    # `ps` (the API) shows only the new dynos during the rollout.
    dynos = standin.ok("GET", f"/apps/{echo_app}/dynos")
    assert [d["release"]["version"] for d in dynos] == [result["latest"]]


def test_without_preboot_old_dynos_stop_before_new_ones_start(
    standin: StandInClient, standin_process: StandInProcess, echo_app: str
) -> None:
    result = _rollout(standin, standin_process, echo_app)
    assert not [t for t in result["timeline"] if len(t) > 1]  # never two web.1 at once
    log = (standin_process.state_dir / "logs" / echo_app / "platform.log").read_text()
    rollout = log[log.rindex("Set GREETING config vars") :]
    assert rollout.index("Stopping all processes with SIGTERM") < rollout.index(
        "Starting process with command"
    )
