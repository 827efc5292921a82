"""The demo page under the server's limits: it waits out a 429 and says why.

A private dyno whose per-client backlog bound (20 jobs) is smaller than the
run the page starts (60 jobs in batches of 10): the server answers 429 with
Retry-After, the page shows the server's reason, waits, sends the same batch
again, and every job still runs once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from bench.app import AppInstance, Server
from tests.browser.test_demo_page import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, start_run

JOBS, BATCH = 60, 10

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"
    ),
]


@pytest.fixture(scope="module")
def dyno(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    instance = AppInstance(
        "browser-throttle",
        extra_env={"JOBS_CLIENT_MAX_BACKLOG": "20"},
        workdir=tmp_path_factory.mktemp("browser-throttle-dyno"),
    )
    try:
        instance.prepare(collectstatic=True)
        server = instance.start_dyno()
        server.wait_healthy(timeout=90)
        yield server
    finally:
        instance.cleanup()


def test_the_page_waits_out_a_429_shows_why_and_loses_no_job(dyno: Server) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    statuses: Counter[int] = Counter()
    page_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            page.on(
                "response",
                lambda r: statuses.update([r.status]) if "/api/jobs/batch" in r.url else None,
            )
            start_run(
                page,
                dyno.url,
                jobs=JOBS,
                batch=BATCH,
                parallel=6,
                io_wait_ms=200,
                cpu_iterations=1000,
            )
            page.wait_for_selector("#throttle:not([hidden])", timeout=30_000)
            notice = page.inner_text("#throttle")
            page.screenshot(path=ARTIFACTS / "demo-throttled.png", full_page=True)
            page.wait_for_selector("#demo[data-run-state=finished]", timeout=120_000)
            summary = page.evaluate("window.doubleBoiler.summary()")
            banner = page.inner_text("#banner")
        finally:
            browser.close()

    assert page_errors == []
    assert "Throttled by the server" in notice
    assert "your address's queue is full" in notice
    assert "Sending again in" in notice
    assert statuses[429] >= 1 and set(statuses) <= {202, 429}, statuses
    assert summary["throttled"] == statuses[429]
    assert summary["counts"]["done"] == JOBS
    assert summary["counts"]["rejected"] == 0
    assert len(set(summary["ids"])) == JOBS
    assert "throttled" in banner
