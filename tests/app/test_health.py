"""/healthz: 200 only when every layer is up, 503 naming what is not."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import health
from jobs.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_worker():
    now = timezone.now()
    return WorkerHeartbeat.objects.create(
        hostname="celery@test",
        pid=10,
        pool_pids=[11, 12],
        concurrency=2,
        started_at=now,
        last_seen=now,
    )


def test_all_layers_up_is_200(client, live_worker):
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    report = response.json()
    assert report["status"] == "ok"
    assert set(report["checks"]) == {"web", "database", "broker", "workers", "scheduler"}
    assert report["checks"]["workers"] | {"ms": 0} == {
        "ok": True,
        "count": 1,
        "names": ["celery@test"],
        "method": "heartbeat",
        "pids": {"celery@test": {"main": 10, "pool": [11, 12]}},
        "ms": 0,
    }
    assert report["checks"]["web"]["pid"] > 0


def test_no_live_worker_is_503_naming_the_workers(client, live_worker):
    WorkerHeartbeat.objects.update(last_seen=timezone.now() - timedelta(minutes=1))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["workers"]
    assert "no live Celery worker" in response.json()["checks"]["workers"]["error"]


def test_broker_down_is_503_naming_the_broker(client, live_worker, monkeypatch):
    def down():
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(health, "broker", down)
    response = client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    # The workers cannot be reached through a dead broker: not pinged, reported down.
    assert report["failing"] == ["broker", "workers"]
    assert "ConnectionRefusedError" in report["checks"]["broker"]["error"]
    assert "not checked" in report["checks"]["workers"]["error"]


def test_split_mode_startup_check_leaves_out_the_other_dyno(client, monkeypatch):
    monkeypatch.setenv("DOUBLE_BOILER_MODE", "split")
    assert client.get("/healthz").status_code == 503  # the app as a whole: no worker
    response = client.get("/healthz?scope=dyno")
    assert response.status_code == 200
    assert "split mode" in response.json()["checks"]["workers"]["skipped"]


def test_one_dyno_startup_check_still_needs_the_worker(client):
    assert client.get("/healthz?scope=dyno").status_code == 503


def test_one_dyno_startup_check_counts_only_this_dynos_worker(client, monkeypatch):
    """Issue 9 #2: while Dokku's new container is checked, the old one still runs with its
    worker; that worker must not make the new dyno look healthy."""
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        hostname="celery@old-container",
        pid=10,
        pool_pids=[11],
        concurrency=1,
        started_at=now,
        last_seen=now,
    )
    monkeypatch.setattr(health.socket, "gethostname", lambda: "new-container")
    assert client.get("/healthz").status_code == 200  # the app as a whole has a worker
    response = client.get("/healthz?scope=dyno")
    assert response.status_code == 503
    assert response.json()["checks"]["workers"]["count"] == 0
    WorkerHeartbeat.objects.create(
        hostname="celery@new-container",
        pid=20,
        pool_pids=[21],
        concurrency=1,
        started_at=now,
        last_seen=now,
    )
    response = client.get("/healthz?scope=dyno")
    assert response.status_code == 200
    assert response.json()["checks"]["workers"]["names"] == ["celery@new-container"]


def test_no_live_scheduler_is_reported_but_not_failing(client, live_worker):
    # Beats coordinate through the database and missed ticks are caught up or
    # recorded as skipped: a missing beat must not fail deploys nor restart dynos.
    response = client.get("/healthz")
    assert response.status_code == 200
    report = response.json()
    scheduler = report["checks"]["scheduler"]
    assert scheduler["ok"] is False and scheduler["required"] is False
    assert "no Celery beat seen" in scheduler["error"] and "never seen" in scheduler["error"]
    assert report["failing"] == [] and report["warnings"] == ["scheduler"]


def test_a_live_scheduler_is_named(client, live_worker):
    from scheduling.models import SchedulerHeartbeat

    now = timezone.now()
    SchedulerHeartbeat.objects.create(
        key="web.1:42", dyno="web.1", pid=42, started_at=now, last_seen=now
    )
    SchedulerHeartbeat.objects.create(
        key="web.2:43", dyno="web.2", pid=43, started_at=now, last_seen=now - timedelta(minutes=5)
    )
    report = client.get("/healthz").json()
    assert report["checks"]["scheduler"]["ok"] is True
    assert report["checks"]["scheduler"]["names"] == ["web.1:42"]
    assert report["warnings"] == []


def test_scheduler_off_means_heroku_scheduler_dispatches(client, live_worker, settings):
    settings.SCHEDULE_BEAT = False
    scheduler = client.get("/healthz").json()["checks"]["scheduler"]
    assert scheduler["ok"] is True
    assert "dispatch_due_ticks" in scheduler["note"]
