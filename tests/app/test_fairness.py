"""Fair dispatch: one client's backlog cannot take every Celery child or hold others back."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import tasks, worker
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    messages = []
    monkeypatch.setattr(tasks.run_job, "delay", lambda job_id: messages.append(job_id))
    return messages


def running(client: str, lease=timedelta(minutes=1)) -> Job:
    job = Job.objects.create(client=client, io_wait_ms=1, cpu_iterations=1)
    Job.objects.filter(pk=job.pk).update(
        status="running", attempts=1, lease_expires_at=timezone.now() + lease
    )
    return job


def queued(client: str, count: int = 1) -> list[Job]:
    return [Job.objects.create(client=client, io_wait_ms=1, cpu_iterations=1) for _ in range(count)]


def run(job_id):
    return tasks.run_job.apply(args=(job_id,)).get()


def test_a_busy_clients_message_runs_the_oldest_job_of_another_client(settings, sent):
    settings.JOBS_CLIENT_MAX_RUNNING = 1
    running("abuser")
    flood = queued("abuser", 5)
    mine = queued("normal")[0]
    # The abuser's message comes first (first in, first out), but its client
    # already runs its one job: the normal client's job runs instead.
    assert run(flood[0].pk) == "done"
    assert Job.objects.get(pk=mine.pk).status == "done"
    parked = Job.objects.get(pk=flood[0].pk)
    assert (parked.status, parked.deferred) == ("queued", True)


def test_with_nobody_else_waiting_the_message_parks_its_job(settings, sent):
    settings.JOBS_CLIENT_MAX_RUNNING = 1
    running("abuser")
    job = queued("abuser")[0]
    assert run(job.pk) == "deferred"
    assert Job.objects.get(pk=job.pk).deferred is True
    assert sent == []


def test_a_client_below_its_bound_runs_its_own_job(settings, sent):
    settings.JOBS_CLIENT_MAX_RUNNING = 2
    running("a")
    job = queued("a")[0]
    assert run(job.pk) == "done"
    assert Job.objects.get(pk=job.pk).deferred is False


def test_an_expired_lease_does_not_count_as_running(settings, sent):
    settings.JOBS_CLIENT_MAX_RUNNING = 1
    running("a", lease=-timedelta(seconds=1))  # its worker is gone
    job = queued("a")[0]
    assert run(job.pk) == "done"


def test_a_finished_job_releases_the_next_parked_job_of_its_client(settings, sent):
    settings.JOBS_CLIENT_MAX_RUNNING = 1
    first = queued("abuser")[0]
    later = queued("abuser", 2)
    Job.objects.filter(pk__in=[job.pk for job in later]).update(deferred=True)
    assert run(first.pk) == "done"
    assert sent == [later[0].pk]  # one message for the oldest parked job
    assert Job.objects.get(pk=later[0].pk).deferred is False
    assert Job.objects.get(pk=later[1].pk).deferred is True


def test_parking_loses_no_job_when_the_clients_last_job_finishes_meanwhile(settings, sent):
    settings.JOBS_CLIENT_MAX_RUNNING = 1
    job = queued("a")[0]
    # The client was busy when the message looked, idle by the time it parks.
    assert tasks.defer(job) is False
    assert Job.objects.get(pk=job.pk).deferred is False


def test_parked_jobs_are_not_taken_for_lost_messages_but_released_when_stale(
    settings, sent, monkeypatch
):
    settings.JOBS_CLIENT_MAX_RUNNING = 1
    monkeypatch.setattr(worker, "broker_backlog", lambda: 0)
    long_ago = timezone.now() - timedelta(minutes=5)
    parked = queued("a", 3)
    Job.objects.filter(pk__in=[job.pk for job in parked]).update(deferred=True, updated_at=long_ago)
    busy_parked = queued("b")[0]
    running("b")
    Job.objects.filter(pk=busy_parked.pk).update(deferred=True, updated_at=long_ago)
    # "a" runs nothing: its release was lost; one of its jobs goes (the others follow
    # as each finishes). "b" still runs a job: its release will come.
    assert worker.requeue_stale_jobs() == 1
    assert sent == [parked[0].pk]


def test_a_claim_past_the_clients_bound_is_refused_as_busy(settings):
    settings.JOBS_CLIENT_MAX_RUNNING = 2
    running("a")
    running("a")
    job = queued("a")[0]
    assert tasks.take(job, timezone.now()) == tasks.BUSY
    assert Job.objects.get(pk=job.pk).status == "queued"
    other = queued("b")[0]
    assert tasks.take(other, timezone.now()) == tasks.TAKEN


def test_a_second_delivery_of_a_running_job_still_waits_for_its_lease(settings):
    # Its client is at its bound because of the job itself: not a reason to park.
    settings.JOBS_CLIENT_MAX_RUNNING = 1
    job = running("a")
    claimed, wait = tasks.claim(job.pk)
    assert claimed is None
    assert 30 < wait <= 60
