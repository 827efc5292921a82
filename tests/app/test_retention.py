"""Bounded storage: finished jobs, delivered broker messages and stale rows are pruned."""

import json
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from doubleboiler.celery import app as celery_app
from jobs import retention
from jobs.models import CreationWindow, Job, WorkerHeartbeat

pytestmark = pytest.mark.django_db


def finished(count: int, age: timedelta, status: str = "done") -> list[Job]:
    moment = timezone.now() - age
    return Job.objects.bulk_create(
        [Job(status=status, finished_at=moment, updated_at=moment) for _ in range(count)]
    )


def test_finished_jobs_older_than_the_keep_time_go_and_unfinished_ones_stay(settings):
    settings.JOBS_KEEP_FINISHED_SECONDS = 3600
    old = finished(3, timedelta(hours=2)) + finished(2, timedelta(hours=2), status="failed")
    recent = finished(4, timedelta(minutes=5))
    waiting = [Job.objects.create(), Job.objects.create(status="running")]
    # An old queued job is still owed its run: never pruned.
    Job.objects.filter(pk=waiting[0].pk).update(created_at=timezone.now() - timedelta(days=3))
    counts = retention.prune()
    assert counts["jobs_by_age"] == len(old)
    left = set(Job.objects.values_list("id", flat=True))
    assert left == {job.pk for job in recent + waiting}


def test_only_the_newest_finished_jobs_are_kept_beyond_the_count(settings):
    settings.JOBS_KEEP_FINISHED = 5
    jobs = finished(12, timedelta(minutes=1))
    queued = Job.objects.create()
    counts = retention.prune()
    assert counts["jobs_by_count"] == 7
    left = sorted(Job.objects.values_list("id", flat=True))
    assert left == sorted([job.pk for job in jobs[-5:]] + [queued.pk])


def test_deleting_goes_in_chunks(settings, monkeypatch):
    monkeypatch.setattr(retention, "DELETE_CHUNK", 3)
    settings.JOBS_KEEP_FINISHED = 0
    finished(10, timedelta(minutes=1))
    assert retention.prune()["jobs_by_count"] == 10
    assert Job.objects.count() == 0


@pytest.fixture
def kombu_messages(settings):
    """kombu's message table (doubleboiler.broker creates it on a real dyno)."""
    settings.BROKER_KIND = "database"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE kombu_message (id INTEGER PRIMARY KEY AUTOINCREMENT, visible BOOL, "
            "timestamp DATETIME, payload TEXT NOT NULL, version SMALLINT NOT NULL, queue_id INT)"
        )

    def add(visible: bool, age: timedelta) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO kombu_message (visible, timestamp, payload, version, queue_id) "
                "VALUES (%s, %s, 'x', 1, 1)",
                [visible, datetime.now() - age],
            )

    def left() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT SUM(visible), SUM(NOT visible) FROM kombu_message")
            waiting, delivered = cursor.fetchone()
        return int(waiting or 0), int(delivered or 0)

    yield add, left
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE kombu_message")


def test_delivered_broker_messages_go_by_age_and_count(settings, kombu_messages):
    add, left = kombu_messages
    settings.BROKER_KEEP_DELIVERED_SECONDS = 600
    settings.BROKER_KEEP_DELIVERED = 3
    for _ in range(4):
        add(False, timedelta(hours=1))
    for _ in range(5):
        add(False, timedelta(seconds=10))
    for _ in range(6):
        add(True, timedelta(hours=2))  # waiting: they carry queued jobs
    counts = retention.prune()
    assert (counts["messages_by_age"], counts["messages_by_count"]) == (4, 2)
    assert left() == (6, 3)
    assert counts["rows"]["broker_messages"] == 9


def test_nothing_to_prune_in_the_broker_when_it_is_not_the_database(settings):
    settings.BROKER_KIND = "redis"
    counts = retention.prune()
    assert (counts["messages_by_age"], counts["messages_by_count"]) == (0, 0)
    assert "broker_messages" not in counts["rows"]


def test_past_rate_windows_and_long_gone_workers_go():
    now = timezone.now()
    CreationWindow.objects.create(client="a", window_start=now - timedelta(minutes=5))
    current = CreationWindow.objects.create(client="a", window_start=now)
    WorkerHeartbeat.objects.create(
        hostname="old", pid=1, started_at=now - timedelta(days=3), last_seen=now - timedelta(days=2)
    )
    WorkerHeartbeat.objects.create(hostname="live", pid=2, started_at=now, last_seen=now)
    counts = retention.prune()
    assert (counts["rate_windows"], counts["heartbeats"]) == (1, 1)
    assert list(CreationWindow.objects.values_list("id", flat=True)) == [current.pk]
    assert list(WorkerHeartbeat.objects.values_list("hostname", flat=True)) == ["live"]


def test_over_the_budget_finished_jobs_are_cut_to_a_tenth(settings, monkeypatch):
    settings.JOBS_KEEP_FINISHED = 20
    finished(20, timedelta(minutes=1))
    monkeypatch.setattr(retention, "database_bytes", lambda: 10 * 2**20)
    settings.DATABASE_BUDGET_MB = 1
    counts = retention.prune()
    assert counts["jobs_by_count"] == 18
    assert counts["database_bytes"] > counts["budget_bytes"]
    assert Job.objects.count() == 2


def test_the_database_size_is_measured():
    assert retention.database_bytes() > 0


def test_the_task_is_registered_as_jobs_prune_and_returns_the_counts(settings):
    settings.JOBS_KEEP_FINISHED = 1
    finished(3, timedelta(minutes=1))
    task = celery_app.tasks["jobs.prune"]
    counts = task.apply().get()
    assert counts["jobs_by_count"] == 2
    assert json.dumps(counts)  # a result a scheduler can log


def test_the_management_command_prints_the_counts_as_json(settings):
    settings.JOBS_KEEP_FINISHED = 0
    finished(2, timedelta(minutes=1))
    out = StringIO()
    call_command("prune_jobs", stdout=out)
    assert json.loads(out.getvalue())["jobs_by_count"] == 2


def test_row_bounds_that_do_not_fit_the_budget_fail_the_system_check(settings):
    assert retention.check_budget() == []
    settings.DATABASE_BUDGET_MB = 10
    errors = retention.check_budget()
    assert [error.id for error in errors] == ["jobs.E001"]
    assert "DATABASE_BUDGET_MB=10" in errors[0].msg
