"""Job completion is exactly-once however often the message is delivered."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import tasks
from jobs.models import Job

pytestmark = pytest.mark.django_db


def run(job_id):
    return tasks.run_job.apply(args=(job_id,)).get()


def test_a_job_runs_and_records_its_result():
    job = Job.objects.create(io_wait_ms=1, cpu_iterations=100)
    assert run(job.pk) == "done"
    job.refresh_from_db()
    assert job.status == "done"
    assert job.attempts == 1
    assert len(job.result["digest"]) == 16
    assert job.started_at <= job.finished_at


def test_a_second_delivery_of_a_finished_job_changes_nothing():
    job = Job.objects.create(io_wait_ms=1, cpu_iterations=10)
    run(job.pk)
    first = Job.objects.get(pk=job.pk)
    assert run(job.pk) == "already finished"
    again = Job.objects.get(pk=job.pk)
    assert (again.status, again.attempts, again.result, again.finished_at) == (
        first.status,
        first.attempts,
        first.result,
        first.finished_at,
    )
    assert again.duplicate_deliveries == 1


def test_a_running_job_with_a_live_lease_is_not_run_twice(monkeypatch):
    job = Job.objects.create(io_wait_ms=1)
    Job.objects.filter(pk=job.pk).update(
        status="running", attempts=1, lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    claimed, wait = tasks.claim(job.pk)
    assert claimed is None
    assert 30 < wait <= 60


def test_a_job_whose_worker_vanished_is_claimed_again_after_its_lease():
    job = Job.objects.create(io_wait_ms=1, cpu_iterations=10)
    Job.objects.filter(pk=job.pk).update(
        status="running", attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert run(job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("done", 2)


def test_a_superseded_claim_cannot_complete_the_job():
    job = Job.objects.create(io_wait_ms=1, cpu_iterations=10)
    mine, _ = tasks.claim(job.pk)
    # Our lease ran out and another delivery claimed the job (attempt 2).
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    theirs, _ = tasks.claim(job.pk)
    assert theirs.attempts == 2
    assert tasks.finish(mine, status="done", result={"from": "stale"}) is False
    assert tasks.finish(theirs, status="done", result={"from": "current"}) is True
    job.refresh_from_db()
    assert job.result == {"from": "current"}


def test_a_claim_knows_the_row_it_took_without_reading_it_again():
    job = Job.objects.create(io_wait_ms=1, client="198.51.100.1")
    claimed, _ = tasks.claim(job.pk)
    stored = Job.objects.get(pk=job.pk)
    for name in ("status", "attempts", "worker_pid", "started_at", "lease_expires_at", "deferred"):
        assert getattr(claimed, name) == getattr(stored, name), name
    assert (stored.status, stored.attempts) == ("running", 1)


def test_a_claim_from_a_stale_read_loses_to_the_delivery_that_claimed_since():
    job = Job.objects.create(io_wait_ms=1)
    stale = Job.objects.get(pk=job.pk)  # read before another delivery's claim and lost lease
    Job.objects.filter(pk=job.pk).update(
        status="running", attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert tasks.take(stale, timezone.now()) == tasks.GONE
    assert Job.objects.get(pk=job.pk).attempts == 1


def test_the_work_itself_waits_and_hashes():
    result = tasks.simulated_work(io_wait_ms=20, cpu_iterations=1000)
    assert result["io_ms"] >= 19
    assert result["cpu_ms"] > 0


def test_stale_jobs_are_requeued_once_and_fresh_ones_left_alone(monkeypatch):
    from jobs import worker

    sent = []
    monkeypatch.setattr(worker, "timezone", timezone)
    monkeypatch.setattr(tasks.run_job, "delay", lambda job_id: sent.append(job_id))
    monkeypatch.setattr(worker, "broker_backlog", lambda: 0)  # every message is gone
    long_ago = timezone.now() - timedelta(minutes=5)
    fresh = Job.objects.create()
    old_queued = Job.objects.create()
    Job.objects.filter(pk=old_queued.pk).update(updated_at=long_ago)
    dead_lease = Job.objects.create()
    Job.objects.filter(pk=dead_lease.pk).update(
        status="running", lease_expires_at=long_ago, updated_at=long_ago
    )
    live_lease = Job.objects.create()
    Job.objects.filter(pk=live_lease.pk).update(
        status="running", lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    Job.objects.filter(pk=Job.objects.create().pk).update(status="done", updated_at=long_ago)

    assert worker.requeue_stale_jobs() == 2
    assert sorted(sent) == sorted([old_queued.pk, dead_lease.pk])
    assert worker.requeue_stale_jobs() == 0  # touched: not again for a while
    sent.clear()
    # At start, jobs that were running when the last dyno stopped go again too.
    assert worker.requeue_stale_jobs(at_start=True) == 2
    assert sorted(sent) == sorted([dead_lease.pk, live_lease.pk])
    assert fresh.pk not in sent


@pytest.mark.parametrize(
    ("backlog", "requeued"),
    [
        (5, []),  # every queued job still has its message waiting: a backlog, not a loss
        (3, [0, 1]),  # two lost theirs: the two oldest go again
        (0, [0, 1, 2, 3, 4]),
        (None, [0, 1, 2, 3, 4]),  # the broker cannot tell: better a duplicate than a loss
    ],
)
def test_only_as_many_queued_jobs_as_lost_a_message_are_requeued(monkeypatch, backlog, requeued):
    from jobs import worker

    sent = []
    monkeypatch.setattr(tasks.run_job, "delay", lambda job_id: sent.append(job_id))
    monkeypatch.setattr(worker, "broker_backlog", lambda: backlog)
    long_ago = timezone.now() - timedelta(minutes=5)
    old = [Job.objects.create() for _ in range(5)]
    Job.objects.filter(pk__in=[job.pk for job in old]).update(updated_at=long_ago)
    dead_lease = Job.objects.create()
    Job.objects.filter(pk=dead_lease.pk).update(
        status="running", lease_expires_at=long_ago, updated_at=long_ago
    )

    worker.requeue_stale_jobs()
    # A running job whose lease ran out goes again whatever the broker holds.
    assert sorted(sent) == sorted([dead_lease.pk] + [old[i].pk for i in requeued])


def test_messages_the_worker_fetched_count_as_carrying_a_job(monkeypatch):
    from celery.worker import state

    from jobs import worker

    class Request:  # stands for a celery Request: only its identity matters here
        pass

    fetched, started = Request(), Request()
    monkeypatch.setattr(worker, "broker_backlog", lambda: 1)
    monkeypatch.setattr(state, "reserved_requests", {fetched, started})
    monkeypatch.setattr(state, "active_requests", {started})
    assert worker.fetched_not_started() == 1
    assert worker.queued_without_message(2) == 0
    assert worker.queued_without_message(3) == 1
    assert worker.queued_without_message(0) == 0


def test_the_broker_is_not_asked_when_no_queued_job_is_stale(monkeypatch):
    from jobs import worker

    asked = []
    monkeypatch.setattr(tasks.run_job, "delay", lambda job_id: None)
    monkeypatch.setattr(worker, "broker_backlog", lambda: asked.append(1) or 0)
    Job.objects.create()  # queued a moment ago: not stale
    assert worker.requeue_stale_jobs() == 0
    assert asked == []


@pytest.mark.django_db(transaction=True)
def test_a_pool_child_keeps_its_database_connection_across_jobs_until_it_ages(
    settings, monkeypatch
):
    from types import SimpleNamespace

    from django.db import connection

    from jobs import worker

    assert settings.CELERY_DB_REUSE_MAX > 0  # Celery's own close after each task is off
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    worker.keep_connections_across_jobs()
    connection.connect()  # a child's first job connects: its age starts now
    closed = []
    monkeypatch.setattr(connection, "close", lambda: closed.append(True))
    delivery = SimpleNamespace(request=SimpleNamespace(is_eager=False))
    for _ in range(3):  # task_prerun and task_postrun around each job
        worker.close_unusable_connections(sender=delivery)
        Job.objects.count()
    assert closed == []
    connection.close_at = time.monotonic() - 1  # older than CONN_MAX_AGE
    worker.close_unusable_connections(sender=delivery)
    assert closed == [True]
