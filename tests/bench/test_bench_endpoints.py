"""The benchmark's I/O-bound endpoints (bench/urls.py), and the demo page beside them.

The endpoints are exercised against the real slow upstream (bench/upstream.py in
its own process), sync view through Django's test client, async view through
the async one.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import AsyncClient

from bench.app import ROOT
from bench.procs import Process, free_port

DELAY_MS = 150
# The benchmark's own routes; the shipped app does not route /bench/io.
pytestmark = pytest.mark.urls("bench.urls")


@pytest.fixture(scope="module")
def upstream_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log: Path = tmp_path_factory.mktemp("upstream") / "upstream.log"
    process = Process(
        "upstream",
        [sys.executable, "-m", "bench.upstream", "--port", str(port), "--delay-ms", str(DELAY_MS)],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        log_path=log,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or not process.alive():
                    pytest.fail(f"the upstream did not start: {process.log_tail()}")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/slow?x=1"
    finally:
        process.stop()


def test_sync_endpoint_waits_on_the_upstream(client, monkeypatch, upstream_url: str) -> None:
    monkeypatch.setenv("BENCH_UPSTREAM_URL", upstream_url)
    started = time.perf_counter()
    response = client.get("/bench/io")
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "sync"
    assert body["upstream_status"] == 200
    assert body["upstream_bytes"] > 0
    # The wait is the upstream's delay, really spent on a socket.
    assert body["upstream_ms"] >= DELAY_MS * 0.9
    assert elapsed_ms >= DELAY_MS * 0.9
    assert response["Cache-Control"].startswith("max-age=0")


def test_async_endpoint_does_the_same(monkeypatch, upstream_url: str) -> None:
    monkeypatch.setenv("BENCH_UPSTREAM_URL", upstream_url)
    # Django's async test client runs the view on an event loop, as an ASGI server would.
    response = asyncio.run(AsyncClient().get("/bench/io-async"))
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "async"
    assert body["upstream_status"] == 200
    assert body["upstream_ms"] >= DELAY_MS * 0.9


def test_endpoints_refuse_without_an_upstream(client, monkeypatch) -> None:
    monkeypatch.delenv("BENCH_UPSTREAM_URL", raising=False)
    response = client.get("/bench/io")
    assert response.status_code == 503
    assert "BENCH_UPSTREAM_URL" in response.json()["error"]
    monkeypatch.setenv("BENCH_UPSTREAM_URL", "ftp://example.invalid/")
    assert client.get("/bench/io").status_code == 503


def test_endpoint_reports_an_unreachable_upstream(client, monkeypatch) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("BENCH_UPSTREAM_URL", f"http://127.0.0.1:{port}/")
    response = client.get("/bench/io")
    assert response.status_code == 502
    assert "ConnectionRefusedError" in response.json()["error"]


def test_demo_page_renders_with_a_fresh_cursor(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="demo-cursor"' in html
    assert "/static/demo/demo.js" in html and "/static/demo/demo.css" in html
    assert response["X-Web-Pid"]
    cursor = html.split('id="demo-cursor" type="application/json">')[1].split("<")[0]
    micros = int(cursor.strip('"').split("-")[0])
    # "Now" minus the feed's overlap: polling starts here, not at the first job ever.
    assert abs(micros / 1e6 - time.time()) < 10


@pytest.mark.parametrize("path", ["/bench/io", "/bench/io-async"])
def test_the_shipped_app_does_not_route_the_benchmark(path: str) -> None:
    from django.urls import Resolver404, resolve

    with pytest.raises(Resolver404):
        resolve(path, urlconf="doubleboiler.urls")
    assert resolve(path, urlconf="bench.urls").url_name.startswith("bench-io")
