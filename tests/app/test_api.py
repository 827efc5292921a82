"""The jobs API: create, read, poll by cursor, and refuse bad input."""

import json

import pytest
from django.utils import timezone

from jobs import views
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    sent = []
    monkeypatch.setattr(views.run_job, "delay", lambda job_id: sent.append(job_id))
    return sent


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_create_one_job_returns_202_and_enqueues_it(client, no_broker):
    response = post(client, "/api/jobs", {"io_wait_ms": 5, "cpu_iterations": 10})
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.status, job.io_wait_ms, job.cpu_iterations) == ("queued", 5, 10)
    assert no_broker == [job.pk]
    assert response["X-Web-Pid"].isdigit()
    assert response["X-Web-Inflight"] == "1"


def test_create_a_batch(client, no_broker):
    response = post(client, "/api/jobs/batch", {"count": 25, "io_wait_ms": 1})
    assert response.status_code == 202
    ids = response.json()["ids"]
    assert len(ids) == 25 == Job.objects.count()
    assert no_broker == ids


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/jobs/batch", {"count": 0}, "count must be from 1"),
        ("/api/jobs/batch", {"count": 5000}, "count must be from 1"),
        ("/api/jobs/batch", {"count": "3"}, "count must be a whole number"),
        ("/api/jobs", {"io_wait_ms": -1}, "io_wait_ms must be a whole number from 0"),
        ("/api/jobs", {"cpu_iterations": True}, "cpu_iterations must be a whole number"),
        ("/api/jobs", [1, 2], "must be a JSON object"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(client, path, body, message):
    response = post(client, path, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert Job.objects.count() == 0


def test_invalid_json_is_refused(client):
    response = client.post("/api/jobs", data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def test_broker_down_answers_503_and_keeps_the_jobs(client, monkeypatch):
    def refuse(job_id):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(views.run_job, "delay", refuse)
    response = post(client, "/api/jobs/batch", {"count": 3})
    assert response.status_code == 503
    assert len(response.json()["ids"]) == 3
    assert Job.objects.filter(status="queued").count() == 3


def test_read_one_job_and_a_missing_one(client):
    job = Job.objects.create(io_wait_ms=1)
    assert client.get(f"/api/jobs/{job.pk}").json()["status"] == "queued"
    assert client.get("/api/jobs/999999").status_code == 404


def test_read_many_by_id(client):
    jobs = [Job.objects.create() for _ in range(3)]
    answer = client.get("/api/jobs?ids=" + ",".join(str(j.pk) for j in jobs[:2])).json()
    assert [job["id"] for job in answer["jobs"]] == [jobs[0].pk, jobs[1].pk]
    assert client.get("/api/jobs?ids=1,x").status_code == 400


def test_polling_by_cursor_sees_every_change_and_pages(client, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 4)
    jobs = [Job.objects.create() for _ in range(10)]
    seen, cursor = {}, ""
    for _ in range(10):
        answer = client.get(f"/api/jobs?since={cursor}").json()
        seen.update({job["id"]: job["status"] for job in answer["jobs"]})
        cursor = answer["cursor"]
        if not answer["more"]:
            break
    assert set(seen) == {job.pk for job in jobs}
    # A change after the last poll comes with the next one.
    Job.objects.filter(pk=jobs[3].pk).update(status="done", updated_at=timezone.now())
    answer = client.get(f"/api/jobs?since={cursor}").json()
    assert {job["id"]: job["status"] for job in answer["jobs"]}[jobs[3].pk] == "done"
    assert client.get("/api/jobs?since=garbage").status_code == 400


def test_methods_are_checked(client):
    assert client.delete("/api/jobs").status_code == 405
    assert client.get("/api/jobs/batch").status_code == 405
