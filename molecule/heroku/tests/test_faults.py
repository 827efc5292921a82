"""Fault cases, after the main checks: bad inputs, API hiccups, failing builds and releases.

Each case runs the converge playbook again in a subprocess and looks at what the
play printed, what the stand-in received, and what keeps serving.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    APP,
    PROJECT,
    converge_env,
    converge_runs,
    http_json,
    run_converge,
    wait_for,
    writes,
)

from tests.standins.heroku_api.client import StandInClient


def _api_requests(api: StandInClient) -> list[dict]:
    return [e for e in api.requests() if e["kind"] in ("api", "blob")]


def _serving(api: StandInClient) -> tuple[str, int]:
    """(id of the current release, pid of web.1), after checking /healthz is green."""
    current = [r for r in api.ok("GET", f"/apps/{APP}/releases") if r["current"]]
    assert len(current) == 1
    dyno = next(d for d in api.admin("GET", "dynos") if d["app"] == APP and d["name"] == "web.1")
    app = api.ok("GET", f"/apps/{APP}")
    status, report = http_json(app["web_url"] + "healthz")
    assert status == 200, report
    return current[0]["id"], dyno["pid"]


@pytest.fixture
def source_copy() -> Iterator[Path]:
    """A git work tree holding the project's tracked files, which a case can break."""
    where = Path(tempfile.mkdtemp(prefix="double-boiler-heroku-fault-"))
    copy = where / "src"
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        if (PROJECT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, copy / name)
    subprocess.run(["git", "init", "--quiet"], cwd=copy, check=True)
    subprocess.run(["git", "add", "--all"], cwd=copy, check=True)
    try:
        yield copy
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_bad_app_name_fails_before_any_request(api: StandInClient) -> None:
    before = len(_api_requests(api))
    run = run_converge("-e", "heroku_app_name=Not_A_Heroku_Name")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Not_A_Heroku_Name" in output
    assert len(_api_requests(api)) == before


def test_missing_token_fails_before_any_request(api: StandInClient) -> None:
    before = len(_api_requests(api))
    run = run_converge(env=converge_env(HEROKU_API_KEY=None))
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "HEROKU_API_KEY" in output
    assert len(_api_requests(api)) == before


def test_rate_limits_and_unavailability_are_retried(api: StandInClient) -> None:
    api.admin(
        "POST",
        "faults",
        {
            "kind": "rate_limit",
            "count": 2,
            "method": "GET",
            "path": f"^/apps/{APP}$",
            "retry_after": 1,
        },
    )
    api.admin(
        "POST",
        "faults",
        {
            "kind": "unavailable",
            "count": 2,
            "method": "GET",
            "path": f"^/apps/{APP}/config-vars$",
            "retry_after": 1,
        },
    )
    run = run_converge()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "changed=0" in output
    last = converge_runs(api.requests())[-1]
    statuses = [(e["path"], e["status"]) for e in last if e["kind"] == "api"]
    app_path, config_path = f"/apps/{APP}", f"/apps/{APP}/config-vars"
    assert [s for p, s in statuses if p == app_path][:3] == [429, 429, 200]
    assert [s for p, s in statuses if p == config_path][:3] == [503, 503, 200]
    assert writes(last) == []
    assert api.admin("GET", "faults") == []


def test_failing_build_fails_the_play_and_keeps_the_release(
    api: StandInClient, source_copy: Path
) -> None:
    serving = _serving(api)
    with (source_copy / "requirements.txt").open("a") as fh:
        fh.write("double-boiler-no-such-package-for-the-fault-test==0.0.0\n")
    run = run_converge("-e", f"heroku_app_source_dir={source_copy}")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "double-boiler-no-such-package-for-the-fault-test" in output  # pip's error, shown
    assert "failed" in output
    builds = api.ok("GET", f"/apps/{APP}/builds", headers={"Range": "started_at ..; order=desc"})
    assert builds[0]["status"] == "failed" and builds[0]["release"] is None
    assert _serving(api) == serving


def test_failing_release_phase_fails_the_play_and_keeps_the_release(
    api: StandInClient, source_copy: Path
) -> None:
    serving = _serving(api)
    procfile = source_copy / "Procfile"
    lines = procfile.read_text().splitlines()
    lines = [
        (
            # still migrates, so the checkout keeps the contract app_contract checks
            "release: python app/manage.py migrate --noinput"
            " && echo 'the release phase fails on purpose' >&2 && exit 1"
            if line.startswith("release:")
            else line
        )
        for line in lines
    ]
    procfile.write_text("\n".join(lines) + "\n")
    run = run_converge("-e", f"heroku_app_source_dir={source_copy}")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "the release phase fails on purpose" in output  # the release output, shown
    builds = api.ok("GET", f"/apps/{APP}/builds", headers={"Range": "started_at ..; order=desc"})
    assert builds[0]["status"] == "succeeded"
    release = api.ok("GET", f"/apps/{APP}/releases/{builds[0]['release']['id']}")
    assert release["status"] == "failed" and release["current"] is False
    assert _serving(api) == serving


def test_the_real_source_deploys_again_and_the_whole_run_held_to_the_schema(
    api: StandInClient,
) -> None:
    before, _ = _serving(api)
    run = run_converge()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    after, _ = _serving(api)
    assert after != before  # rebuilt: the latest build was the broken source
    entries = api.requests()
    assert [e for e in entries if e["violations"]] == [], json.dumps(
        [e for e in entries if e["violations"]], indent=1
    )[:3000]
    assert api.admin("GET", "health")["internal_errors"] == []


def _services(api: StandInClient) -> set[str]:
    return {a["addon_service"]["name"] for a in api.ok("GET", f"/apps/{APP}/addons")}


def _healthz(web_url: str) -> int:
    try:
        return http_json(web_url + "healthz", timeout=15)[0]
    except OSError:  # a dyno restarting on the release the add-on's removal made
        return 0


def _a_job_runs(api: StandInClient) -> None:
    web_url = api.ok("GET", f"/apps/{APP}")["web_url"]
    wait_for(lambda: _healthz(web_url), lambda status: status == 200, timeout=120, interval=2)
    status, answer = http_json(web_url + "api/jobs", json.dumps({"io_wait_ms": 10}).encode())
    assert status == 202, answer
    done = wait_for(
        lambda: http_json(f"{web_url}api/jobs/{answer['id']}")[1],
        lambda job: job.get("status") == "done",
        timeout=90,
    )
    assert done["status"] == "done"


def test_switching_the_broker_to_the_database_removes_redis(api: StandInClient) -> None:
    # issue 10 item 4: the Redis add-on is deleted and REDIS_URL no longer wins
    run = run_converge("-e", "heroku_app_broker=database")
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert _services(api) == {"heroku-postgresql"}
    config = api.ok("GET", f"/apps/{APP}/config-vars")
    assert "REDIS_URL" not in config and config["DOUBLE_BOILER_BROKER"] == "database"
    last = converge_runs(api.requests())[-1]
    assert any(e["method"] == "DELETE" and "/addons/" in e["path"] for e in last)
    _a_job_runs(api)
    # and back, so the later checks see the scenario's own setup
    back = run_converge()
    assert back.returncode == 0, (back.stdout + back.stderr)[-4000:]
    assert _services(api) == {"heroku-postgresql", "heroku-redis"}
    assert api.ok("GET", f"/apps/{APP}/config-vars")["DOUBLE_BOILER_BROKER"] == "redis"
    _a_job_runs(api)
