"""Long-polls: GET /api/jobs/<id>?wait=N answers when the job finishes, or after N s."""

import threading
import time

import pytest
from django.test import Client

from jobs import waiting
from jobs.models import Job

# The watcher reads in a thread of its own: its connection must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def watcher(monkeypatch):
    fresh = waiting.Watcher(poll_seconds=0.02)
    monkeypatch.setattr(waiting, "watcher", fresh)
    return fresh


def finish_later(job_ids: list[int], after: float) -> threading.Thread:
    def finish():
        time.sleep(after)
        Job.objects.filter(pk__in=job_ids).update(status=Job.Status.DONE, result={"ok": True})

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def test_a_held_request_answers_when_its_job_finishes(watcher):
    job = Job.objects.create()
    finisher = finish_later([job.pk], after=0.3)
    started = time.monotonic()
    answer = Client().get(f"/api/jobs/{job.pk}?wait=5")
    held = time.monotonic() - started
    finisher.join()
    assert answer.status_code == 200
    assert answer.json()["status"] == "done"
    assert 0.25 <= held < 2, held
    assert answer["Access-Control-Allow-Origin"] == "*"


def test_a_wait_that_runs_out_answers_with_the_status_then(watcher):
    job = Job.objects.create(status=Job.Status.RUNNING)
    started = time.monotonic()
    answer = Client().get(f"/api/jobs/{job.pk}?wait=0.3")
    assert 0.25 <= time.monotonic() - started < 2
    assert answer.json()["status"] == "running"
    assert watcher.waiting() == 0  # nothing left behind


def test_a_finished_job_answers_at_once_without_the_watcher(watcher):
    job = Job.objects.create(status=Job.Status.FAILED)
    assert Client().get(f"/api/jobs/{job.pk}?wait=25").json()["status"] == "failed"
    assert watcher.polls == 0


def test_many_held_requests_share_one_query_per_poll(watcher):
    jobs = [Job.objects.create() for _ in range(40)]
    answers: list[str] = []

    def hold(job_id: int) -> None:
        answers.append(Client().get(f"/api/jobs/{job_id}?wait=10").json()["status"])

    holders = [threading.Thread(target=hold, args=(job.pk,)) for job in jobs]
    for holder in holders:
        holder.start()
    deadline = time.monotonic() + 5
    while watcher.waiting() < len(jobs) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watcher.waiting() == len(jobs)
    polls_before = watcher.polls
    time.sleep(0.2)  # about 10 polls for 40 waiting requests
    assert watcher.polls - polls_before <= 15
    finish_later([job.pk for job in jobs], after=0).join()
    for holder in holders:
        holder.join(timeout=5)
    assert answers == ["done"] * len(jobs)
    deadline = time.monotonic() + 2
    while watcher._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watcher._thread is None  # the watcher stops when nobody waits


@pytest.mark.parametrize("wait", ["-1", "26", "nan", "soon", "1e999"])
def test_a_wait_out_of_bounds_is_refused(watcher, wait):
    job = Job.objects.create()
    answer = Client().get(f"/api/jobs/{job.pk}?wait={wait}")
    assert answer.status_code == 400
    assert "wait must be a number of seconds from 0 to 25" in answer.json()["error"]
