"""A user's own app through heroku_app (issue 13): tests/apps/minimal, a Django + Celery
project that is not double-boiler's app, deployed as a second Heroku app with the role's
defaults; both layers up in its one dyno, a job run by its Celery worker, and a second
run that changes nothing."""

from __future__ import annotations

import json

import pytest
from conftest import APP, descendants, http_json, run_converge, wait_for, writes

from tests.standins.heroku_api.client import StandInClient

MINIMAL = "minimal-molecule"
PLAYBOOK = "deploy_minimal_app.yml"


@pytest.fixture(scope="module")
def deployed(api: StandInClient) -> dict:
    first = api.next_seq()
    run = run_converge(playbook=PLAYBOOK)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    entries = api.requests(since=first)
    assert [e for e in entries if e["violations"]] == [], json.dumps(entries, indent=1)[:3000]
    return api.ok("GET", f"/apps/{MINIMAL}")


def test_the_minimal_app_has_its_own_addons(api: StandInClient, deployed: dict) -> None:
    services = {a["addon_service"]["name"] for a in api.ok("GET", f"/apps/{MINIMAL}/addons")}
    assert services == {"heroku-postgresql", "heroku-redis"}
    config = api.ok("GET", f"/apps/{MINIMAL}/config-vars")
    theirs = api.ok("GET", f"/apps/{APP}/config-vars")
    assert config["DATABASE_URL"] != theirs["DATABASE_URL"]  # a database of its own


def test_both_layers_of_its_dyno_are_up(api: StandInClient, deployed: dict) -> None:
    dynos = {d["name"]: d for d in api.admin("GET", "dynos") if d["app"] == MINIMAL}
    assert set(dynos) == {"web.1"} and dynos["web.1"]["state"] == "up", dynos
    tree = descendants(dynos["web.1"]["pid"])
    # No setproctitle in its requirements: the processes show their command lines.
    # A Gunicorn master and WEB_CONCURRENCY=2 workers; a Celery main and 2 pool children.
    assert len([p for p in tree if "bin/gunicorn " in p.args]) == 3, tree
    assert len([p for p in tree if "bin/celery " in p.args]) == 3, tree
    # the app's own /healthz: its workers answer a ping through Heroku Redis
    status, report = http_json(deployed["web_url"] + "healthz")
    assert status == 200, report
    assert report["checks"]["web"]["worker_class"].endswith("GeventWorker")
    assert report["checks"]["database"]["vendor"] == "postgresql"
    assert report["checks"]["workers"]["count"] == 1


def test_a_job_runs_in_its_worker(api: StandInClient, deployed: dict) -> None:
    status, created = http_json(
        deployed["web_url"] + "jobs", json.dumps({"numbers": [1, 2, 39]}).encode()
    )
    assert status == 202, created
    job = wait_for(
        lambda: http_json(f"{deployed['web_url']}jobs/{created['id']}")[1],
        lambda answer: answer.get("done") is True,
        timeout=60,
    )
    assert job["total"] == 42
    dyno = next(d for d in api.admin("GET", "dynos") if d["app"] == MINIMAL)
    assert job["worker_pid"] in {p.pid for p in descendants(dyno["pid"])}


def test_a_second_run_sends_no_writing_request(api: StandInClient, deployed: dict) -> None:
    first = api.next_seq()
    run = run_converge(playbook=PLAYBOOK)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert writes(api.requests(since=first)) == []
    assert "changed=0" in run.stdout, run.stdout[-2000:]
