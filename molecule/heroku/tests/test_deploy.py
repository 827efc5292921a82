"""After converge and idempotence: what Heroku would show, and what runs in the dyno."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import (
    APP,
    STATE_DIR,
    converge_runs,
    descendants,
    http_json,
    process_table,
    run_converge,
    wait_for,
    writes,
)

from tests.standins.heroku_api.client import StandInClient
from tests.support.schedule import next_demo_run


@pytest.fixture(scope="module")
def app(api: StandInClient) -> dict:
    return api.ok("GET", f"/apps/{APP}")


@pytest.fixture(scope="module")
def config(api: StandInClient) -> dict:
    return api.ok("GET", f"/apps/{APP}/config-vars")


@pytest.fixture(scope="module")
def secret(config: dict) -> str:
    return config["DJANGO_SECRET_KEY"]


@pytest.fixture(scope="module")
def web_dyno(api: StandInClient) -> dict:
    dynos = {d["name"]: d for d in api.admin("GET", "dynos") if d["app"] == APP}
    assert set(dynos) == {"web.1"}, dynos  # one-dyno mode: no worker dyno
    assert dynos["web.1"]["state"] == "up"
    return dynos["web.1"]


def test_app_exists_in_its_region_on_its_stack(app: dict) -> None:
    assert app["name"] == APP
    assert app["region"]["name"] == "us"
    assert app["stack"]["name"] == app["build_stack"]["name"] == "heroku-24"
    assert app["web_url"].startswith("https://127.0.0.1:56")  # the router, over TLS


def test_buildpack_is_python(api: StandInClient) -> None:
    installed = api.ok("GET", f"/apps/{APP}/buildpack-installations")
    assert [b["buildpack"]["name"] for b in installed] == ["heroku/python"]


def test_addons_are_provisioned_and_attached(api: StandInClient, config: dict) -> None:
    addons = {a["addon_service"]["name"]: a for a in api.ok("GET", f"/apps/{APP}/addons")}
    assert set(addons) == {"heroku-postgresql", "heroku-redis"}  # the broker is Redis
    assert addons["heroku-postgresql"]["plan"]["name"] == "heroku-postgresql:essential-0"
    assert addons["heroku-redis"]["plan"]["name"] == "heroku-redis:mini"
    assert {a["state"] for a in addons.values()} == {"provisioned"}
    assert config["DATABASE_URL"].startswith("postgres://")
    assert config["REDIS_URL"].startswith("rediss://")


def test_config_vars(config: dict, secret: str) -> None:
    assert len(secret) >= 50
    assert "DJANGO_HTTPS_ONLY" not in config  # the production default: HTTPS only
    # every domain of the app (the stand-in's Heroku domain is web_url's host)
    assert config["ALLOWED_HOSTS"] == "127.0.0.1"
    assert config["DOUBLE_BOILER_MODE"] == "one-dyno"
    assert config["DOUBLE_BOILER_BROKER"] == "redis"
    assert config["GUNICORN_WORKER_CLASS"] == "gevent"
    # sized by heroku_connection_budget for essential-0 and mini (20 connections each)
    assert (config["DATABASE_POOL_SIZE"], config["CELERY_BROKER_POOL_LIMIT"]) == ("4", "1")


def test_app_features_follow_the_dyno_size(api: StandInClient) -> None:
    features = {f["name"]: f["enabled"] for f in api.ok("GET", f"/apps/{APP}/features")}
    assert features["runtime-dyno-metadata"] is True
    assert features["preboot"] is False  # Basic dynos have no preboot


def test_every_web_dyno_runs_the_current_release(api: StandInClient) -> None:
    releases = api.ok(
        "GET", f"/apps/{APP}/releases", headers={"Range": "version ..; order=desc, max=1"}
    )
    dynos = [d for d in api.ok("GET", f"/apps/{APP}/dynos") if d["type"] == "web"]
    assert dynos and {d["release"]["version"] for d in dynos} == {releases[0]["version"]}


def test_secret_was_set_once_and_never_rotated(api: StandInClient, secret: str) -> None:
    runs = converge_runs(api.requests())
    assert len(runs) >= 2
    patches = [e for e in runs[0] if e["method"] == "PATCH" and e["path"].endswith("/config-vars")]
    assert len(patches) == 1 and "DJANGO_SECRET_KEY" in patches[0]["body_keys"]
    for run in runs[1:]:
        assert not [e for e in run if e["method"] == "PATCH" and "config-vars" in e["path"]]
    seen = set()
    for release in api.ok("GET", f"/apps/{APP}/releases"):
        values = api.ok("GET", f"/apps/{APP}/releases/{release['version']}/config-vars")
        if "DJANGO_SECRET_KEY" in values:
            seen.add(values["DJANGO_SECRET_KEY"])
    assert seen == {secret}


def test_latest_release_succeeded_and_is_current(api: StandInClient) -> None:
    releases = api.ok(
        "GET", f"/apps/{APP}/releases", headers={"Range": "version ..; order=desc, max=1"}
    )
    latest = releases[0]
    assert latest["status"] == "succeeded" and latest["current"] is True
    assert latest["description"].startswith("Deploy ")
    assert latest["slug"] is not None
    builds = api.ok("GET", f"/apps/{APP}/builds")
    assert [b["status"] for b in builds] == ["succeeded"]  # built once, skipped after
    assert builds[0]["release"]["id"] == latest["id"]
    assert builds[0]["source_blob"]["checksum"].startswith("SHA256:")
    phase = api.stream_text(latest["output_stream_url"])
    assert "Applying jobs.0001_initial... OK" in phase  # the release phase migrated


def test_formation_as_configured(api: StandInClient) -> None:
    formation = {f["type"]: f for f in api.ok("GET", f"/apps/{APP}/formation")}
    assert (formation["web"]["quantity"], formation["web"]["size"]) == (1, "Basic")
    assert formation["worker"]["quantity"] == 0


def test_second_converge_sent_no_writing_request(api: StandInClient) -> None:
    runs = converge_runs(api.requests())
    first, second = runs[0], runs[1]
    sent = [f"{e['method']} {e.get('link') or e['path']} -> {e['status']}" for e in first]
    report = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "first-converge-requests.txt"
    report.write_text("\n".join(sent) + "\n")
    print("first converge sent:\n  " + "\n  ".join(sent))
    assert {
        "POST /apps",
        "PUT /apps/double-boiler-molecule/buildpack-installations",
        "PATCH /apps/double-boiler-molecule/config-vars",
        "POST /sources",
        "POST /apps/double-boiler-molecule/builds",
    } <= set(writes(first))
    assert any(e["kind"] == "blob" and e["method"] == "PUT" for e in first)
    looked = {e["link"] for e in second if e["kind"] == "api"}
    assert {
        "GET /apps/{app}",
        "GET /apps/{app}/buildpack-installations",
        "GET /apps/{app}/addons",
        "GET /apps/{app}/config-vars",
        "GET /apps/{app}/builds",
        "GET /apps/{app}/formation",
    } <= looked  # it did look at everything
    assert writes(second) == []


def test_zero_schema_violations(api: StandInClient) -> None:
    entries = api.requests()
    assert [e for e in entries if e["violations"]] == []
    assert [e for e in entries if e.get("unimplemented")] == []
    assert api.admin("GET", "health")["internal_errors"] == []


def test_dyno_outer_layer_is_bin_dyno_running_honcho(web_dyno: dict) -> None:
    outer = process_table()[web_dyno["pid"]]
    assert outer.args.endswith("bin/dyno")
    assert any(p.args.startswith("gunicorn: master") for p in descendants(outer.pid))


def test_inner_web_is_gunicorn_master_with_gevent_workers(app: dict, web_dyno: dict) -> None:
    tree = descendants(web_dyno["pid"])
    masters = [p for p in tree if p.args.startswith("gunicorn: master")]
    assert len(masters) == 1, tree
    workers = [
        p for p in tree if p.ppid == masters[0].pid and p.args.startswith("gunicorn: worker")
    ]
    assert len(workers) == 2  # WEB_CONCURRENCY
    status, report = http_json(app["web_url"] + "healthz")
    assert status == 200, report
    assert report["checks"]["web"]["worker_class"].endswith("GeventWorker")
    assert report["checks"]["web"]["gevent_patched"] is True
    assert report["checks"]["web"]["pid"] in {w.pid for w in workers}


def test_inner_worker_is_celery_main_with_pool_children(app: dict, web_dyno: dict) -> None:
    tree = descendants(web_dyno["pid"])
    titled = {p.pid for p in tree if "celeryd" in p.args and "MainProcess" in p.args}
    # A pool child forked a moment ago still carries its parent's title.
    mains = [p for p in tree if p.pid in titled and p.ppid not in titled]
    assert len(mains) == 1, tree
    pool = [p for p in tree if p.ppid == mains[0].pid and "ForkPoolWorker" in p.args]
    assert len(pool) == 2  # CELERY_CONCURRENCY
    _, report = http_json(app["web_url"] + "healthz")
    assert report["checks"]["workers"]["count"] == 1


def test_healthz_green_on_every_layer(app: dict) -> None:
    status, report = http_json(app["web_url"] + "healthz")
    assert status == 200, report
    assert report["status"] == "ok"
    assert all(check["ok"] for check in report["checks"].values())
    assert report["checks"]["database"]["vendor"] == "postgresql"
    assert "redis" in report["checks"]["broker"]["transport"].lower()


def test_a_batch_of_jobs_completes(app: dict, web_dyno: dict) -> None:
    status, created = http_json(
        app["web_url"] + "api/jobs/batch", json.dumps({"count": 40, "io_wait_ms": 50}).encode()
    )
    assert status == 202, created
    ids = created["ids"]
    answer = wait_for(
        lambda: http_json(app["web_url"] + "api/jobs?ids=" + ",".join(map(str, ids)))[1],
        lambda a: all(job["status"] == "done" for job in a["jobs"]),
        timeout=90,
    )
    assert len(answer["jobs"]) == 40
    pool = {p.pid for p in descendants(web_dyno["pid"]) if "ForkPoolWorker" in p.args}
    assert {job["worker_pid"] for job in answer["jobs"]} <= pool


def test_scheduled_ticks_happen_once_each_in_the_dyno(app: dict, web_dyno: dict) -> None:
    """The demo task (every 60 s by default) gets its next tick from web.1's embedded beat."""
    _, report = http_json(app["web_url"] + "healthz")
    assert report["checks"]["scheduler"]["ok"] is True, report["checks"]["scheduler"]
    beats = {p.pid for p in descendants(web_dyno["pid"]) if p.args.startswith("[celery beat]")}
    assert len(beats) == 1  # one-dyno mode: beat embedded in the dyno's Celery worker
    run, _ = next_demo_run(lambda: http_json(app["web_url"] + "api/schedule?runs=20")[1])
    assert run["dispatched_by"] == {"dyno": "web.1", "pid": beats.pop()}


def _stand_in_texts() -> dict[str, str]:
    texts = {}
    for path in STATE_DIR.rglob("*"):
        if path.is_file() and (
            path.suffix in (".log", ".jsonl")
            or path.parent.name in ("streams", "logs")
            or path.name == "standin.log"
        ):
            texts[str(path)] = path.read_text(errors="replace")
    return texts


def test_secret_and_token_never_in_output_logs_or_arguments(secret: str, token: str) -> None:
    captured = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible-output.log"
    output = captured.read_text()
    assert "PLAY RECAP" in output  # the capture works
    assert secret not in output and token not in output
    texts = _stand_in_texts()
    assert any(name.endswith("requests.jsonl") for name in texts)
    assert any("/streams/" in name for name in texts)
    leaks = [name for name, text in texts.items() if secret in text or token in text]
    assert leaks == []
    arguments = " ".join(p.args for p in process_table().values())
    assert secret not in arguments and token not in arguments


def test_reconverge_verbose_with_diff_changes_nothing_and_never_prints_secrets(
    api: StandInClient, secret: str, token: str
) -> None:
    run = run_converge("-vvv", "--diff")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "changed=0" in output
    assert secret not in output and token not in output
    last = converge_runs(api.requests())[-1]
    assert writes(last) == []
