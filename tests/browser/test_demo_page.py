"""The demo page in a real browser: Debian's Chromium, driven by Playwright.

A private dyno (bin/dyno, temp SQLite, database broker) on a port in 7000-7999
serves the page; the test starts a run of a few hundred jobs, waits until the
page shows them all done, keeps screenshots under tests/artifacts/, and checks
the page's counters against the server's own view of the same jobs.
"""

from __future__ import annotations

import itertools
import json
import math
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bench.app import ROOT, AppInstance, Server

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
JOBS = 300
BATCH = 10

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


@pytest.fixture(scope="module")
def dyno(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # The demo task every 5 s, so the page's schedule panel shows runs during the test.
    instance = AppInstance(
        "browser",
        workdir=tmp_path_factory.mktemp("browser-dyno"),
        # .localhost as the local target allows it: the page's held requests use h<N>.localhost.
        extra_env={"SCHEDULE_DEMO_SECONDS": "5", "ALLOWED_HOSTS": ".localhost,127.0.0.1"},
    )
    try:
        instance.prepare(collectstatic=True)
        server = instance.start_dyno()
        server.wait_healthy(timeout=90)
        yield server
    finally:
        instance.cleanup()


def server_jobs(base_url: str, ids: list[int]) -> list[dict]:
    jobs = []
    for start in range(0, len(ids), 200):
        chunk = ",".join(str(i) for i in ids[start : start + 200])
        with urllib.request.urlopen(f"{base_url}/api/jobs?ids={chunk}", timeout=10) as response:
            jobs.extend(json.load(response)["jobs"])
    return jobs


def nearest_rank(sorted_values: list[float], p: float) -> float:
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@contextmanager
def demo_page(problems: list[str]) -> Iterator[Page]:
    """A page in Chromium that notes every script error and console error in `problems`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: (
                    problems.append(f"console: {msg.text}") if msg.type == "error" else None
                ),
            )
            yield page
        finally:
            browser.close()


def start_run(page: Page, url: str, results: str = "feed", **fields: int) -> None:
    """Open the demo at `url`, wait for a green /healthz, fill the run's form and start it."""
    page.goto(url + "/")
    page.wait_for_selector("#health.ok", timeout=15_000)
    for name, value in fields.items():
        page.fill(f"input[name={name}]", str(value))
    page.select_option("select[name=results]", results)
    page.click("#start")


def test_demo_run_matches_the_server(dyno: Server) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    api_requests: Counter[str] = Counter()
    with demo_page(problems) as page:

        def count(request) -> None:
            path = request.url.removeprefix(dyno.url)
            if path.startswith("/api/jobs/batch"):
                api_requests["create"] += 1
            elif path.startswith("/api/jobs"):
                api_requests["poll"] += 1

        page.on("request", count)
        page.on(
            "response",
            lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )
        start_run(
            page, dyno.url, jobs=JOBS, batch=BATCH, parallel=12, io_wait_ms=30, cpu_iterations=2000
        )
        # Mid-run: some jobs are already done while others still wait.
        page.wait_for_function(
            "() => { const s = window.doubleBoiler.summary();"
            " return s && s.counts.done > 40 && s.counts.queued > 40; }",
            timeout=60_000,
        )
        page.screenshot(path=ARTIFACTS / "demo-running.png", full_page=True)
        page.wait_for_selector("#demo[data-run-state=finished]", timeout=180_000)
        page.wait_for_function(
            f"() => document.getElementById('stat-done').textContent === '{JOBS}'",
            timeout=5_000,
        )
        page.screenshot(path=ARTIFACTS / "demo-finished.png", full_page=True)
        summary = page.evaluate("window.doubleBoiler.summary()")
        shown = {
            name: page.inner_text(f"#stat-{name}")
            for name in ("done", "queued", "running", "failed", "p50", "p90", "p99")
        }
        web_rows = page.locator("#web-table tr").count()
        worker_rows = page.locator("#worker-table tr").count()
        # The schedule panel: the demo task with runs that finished, as the server says.
        page.wait_for_selector("#schedule-table tr[data-task=demo] .tick.ok", timeout=30_000)
        # Read together: the page renders the table right as it stores the answer.
        schedule_page, demo_row = page.evaluate(
            "() => [window.doubleBoiler.state.schedule,"
            " document.querySelector('#schedule-table tr[data-task=demo]').innerText]"
        )
        # The same grid coloured by the Celery child that ran each job.
        page.check("input[name=colour][value=worker]")
        page.wait_for_timeout(300)
        page.screenshot(path=ARTIFACTS / "demo-by-worker.png", full_page=True)

    assert problems == []
    ids = summary["ids"]
    assert len(ids) == len(set(ids)) == JOBS
    assert summary["submitted"] == JOBS
    jobs = server_jobs(dyno.url, ids)
    assert sorted(job["id"] for job in jobs) == sorted(ids)

    # Every job is done on the server, and the page says so.
    assert Counter(job["status"] for job in jobs) == {"done": JOBS}
    assert summary["counts"]["done"] == JOBS
    assert all(summary["counts"][state] == 0 for state in ("queued", "running", "failed"))
    assert shown["done"] == str(JOBS)
    assert (shown["queued"], shown["running"], shown["failed"]) == ("0", "0", "0")

    # Which process did what: the page's attribution is the server's.
    assert summary["createdByWebPid"] == {
        str(pid): n for pid, n in Counter(job["web_pid"] for job in jobs).items()
    }
    assert summary["doneByWorkerPid"] == {
        str(pid): n for pid, n in Counter(job["worker_pid"] for job in jobs).items()
    }
    assert web_rows == len(summary["createdByWebPid"]) >= 1
    assert worker_rows == len(summary["doneByWorkerPid"]) >= 1

    # Latency percentiles (create -> done) agree with the server's timestamps.
    latencies = sorted(
        (
            datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])
        ).total_seconds()
        * 1000
        for job in jobs
    )
    for p in (50, 90, 99):
        expected = nearest_rank(latencies, p)
        assert summary["latencyMs"][f"p{p}"] == pytest.approx(expected, abs=0.01)
        # The page rounds like JavaScript's Math.round (half up).
        assert shown[f"p{p}"] == (
            f"{math.floor(expected + 0.5)} ms" if expected < 10_000 else f"{expected / 1000:.1f} s"
        )

    # The schedule the page shows is the server's: the demo task, its runs, who ran them.
    with urllib.request.urlopen(f"{dyno.url}/api/schedule?runs=50", timeout=10) as response:
        schedule = json.load(response)
    demo = next(task for task in schedule["tasks"] if task["name"] == "demo")
    shown_demo = next(task for task in schedule_page["tasks"] if task["name"] == "demo")
    assert "every 5 s" in demo_row and "scheduling.demo" in demo_row
    server_runs = {run["due_at"]: run for run in demo["last_runs"]}
    for run in shown_demo["last_runs"]:
        assert run["due_at"] in server_runs
        if run["outcome"] == "ok":
            assert server_runs[run["due_at"]]["run_by"] == run["run_by"]
            assert run["due_at"][11:19] in demo_row or len(shown_demo["last_runs"]) > 4
    due_times = [datetime.fromisoformat(run["due_at"]) for run in demo["last_runs"]]
    assert len(due_times) == len(set(due_times)) >= 1  # one run per tick
    assert all((a - b).total_seconds() % 5 == 0 for a, b in itertools.pairwise(due_times))

    # The server said how busy its workers were; batching kept the request count low.
    assert summary["inflightPeak"] >= 1
    assert api_requests["create"] == JOBS // BATCH
    assert api_requests["poll"] < JOBS


def test_results_by_held_requests_one_gevent_worker_holds_a_hundred(dyno: Server) -> None:
    """Results: a held request per job. Each job's result comes from GET /api/jobs/<id>?wait=25,
    which the web worker holds open until the job finishes; the server's own counter
    (X-Web-Inflight) must show one gevent worker holding 100 or more at once."""
    problems: list[str] = []
    holds: Counter[str] = Counter()
    with demo_page(problems) as page:
        page.on(
            "response",
            lambda r: holds.update(
                [r.url.split("/api/")[0]] if "?wait=" in r.url and r.status == 200 else []
            ),
        )
        start_run(
            page,
            dyno.url,
            "hold",
            jobs=JOBS,
            batch=JOBS,
            parallel=1,
            io_wait_ms=30,
            cpu_iterations=0,
        )
        page.wait_for_selector("#demo[data-run-state=finished]", timeout=180_000)
        page.screenshot(path=ARTIFACTS / "demo-held-requests.png", full_page=True)
        summary = page.evaluate("window.doubleBoiler.summary()")
        peak_shown = int(page.inner_text("#stat-inflight-peak"))
    assert problems == []
    assert summary["counts"]["done"] == JOBS
    assert summary["inflightPeak"] == peak_shown >= 100, summary
    assert sum(holds.values()) >= JOBS  # every job's result came by a held request
    assert len(holds) > 1  # spread over loopback names, past the 6 a host gets
