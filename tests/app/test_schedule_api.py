"""GET /api/schedule: each periodic task, its schedule, next due time and last runs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduling import claims, tasks
from scheduling.models import SchedulerHeartbeat
from scheduling.scheduler import ensure_schedule_loaded, periodics

pytestmark = pytest.mark.django_db


def test_the_configured_tasks_are_listed_before_any_beat_loaded_them(client):
    answer = client.get("/api/schedule").json()
    by_name = {task["name"]: task for task in answer["tasks"]}
    assert {"demo", "prune finished jobs"} <= set(by_name)
    demo = by_name["demo"]
    assert demo["task"] == "scheduling.demo" and demo["loaded"] is False
    assert demo["schedule"] == {"kind": "interval", "every_seconds": 60.0}
    assert demo["catch_up"] is False and demo["last_runs"] == []
    prune = by_name["prune finished jobs"]
    assert prune["task"] == "jobs.prune" and prune["catch_up"] is True
    assert prune["schedule"]["kind"] == "crontab"
    assert answer["schedulers"] == []


def test_runs_show_who_dispatched_and_ran_them(client, monkeypatch):
    monkeypatch.setenv("DYNO", "web.7")
    ensure_schedule_loaded()
    demo = next(p for p in periodics() if p.name == "demo")
    sent = []
    now = timezone.now()
    claims.dispatch_due(demo, lambda tick: sent.append(tick.pk), now=now)
    assert tasks.run(sent[0]) == "ok"
    SchedulerHeartbeat.objects.create(
        key="web.7:1", dyno="web.7", pid=1, started_at=now, last_seen=now
    )
    answer = client.get("/api/schedule?runs=5").json()
    demo_view = next(task for task in answer["tasks"] if task["name"] == "demo")
    assert demo_view["loaded"] is True
    (run,) = demo_view["last_runs"]
    assert run["outcome"] == "ok" and run["dispatched_by"]["dyno"] == "web.7"
    assert run["run_by"]["dyno"] == "web.7" and run["run_by"]["pid"] > 0
    assert run["finished_at"] >= run["dispatched_at"] >= run["due_at"][:19]
    assert run["result"]["jobs"] == {}
    next_due = timezone.datetime.fromisoformat(demo_view["next_due_at"])
    assert (
        timedelta(0)
        < next_due - timezone.datetime.fromisoformat(run["due_at"])
        <= timedelta(minutes=1)
    )
    assert demo_view["outcomes"] == {"ok": 1}
    assert [s["dyno"] for s in answer["schedulers"]] == ["web.7"]


@pytest.mark.parametrize("runs", ["x", "-1", "1000"])
def test_a_bad_runs_parameter_is_a_400(client, runs):
    response = client.get(f"/api/schedule?runs={runs}")
    assert response.status_code == 400
    assert "runs must be" in response.json()["error"]
