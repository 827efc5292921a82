"""A public API that holds: backpressure, per-client limits, client addresses, hygiene."""

import json
import multiprocessing
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from jobs import admission, views
from jobs.models import CreationWindow, Job
from tests.app import admission_child
from tests.support.dyno import ROOT, Dyno
from tests.support.postgres import on_sqlite_and_postgresql

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    sent = []
    monkeypatch.setattr(views.run_job, "delay", lambda job_id: sent.append(job_id))
    admission.refusals.clear()
    yield sent
    admission.refusals.clear()


def from_client(address: str, hops_seen: str | None = None) -> Client:
    """A client behind one router hop: the router's X-Forwarded-For ends with `address`."""
    forwarded = address if hops_seen is None else f"{hops_seen}, {address}"
    return Client(REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR=forwarded)


def post(client, body, path="/api/jobs/batch"):
    return client.post(path, data=json.dumps(body), content_type="application/json")


# --- Backpressure ---------------------------------------------------------------


def test_past_the_backlog_bound_a_batch_is_refused_whole_with_retry_after(settings):
    settings.JOBS_MAX_BACKLOG = 10
    settings.JOBS_CLIENT_MAX_BACKLOG = 10
    assert post(from_client("198.51.100.1"), {"count": 6}).status_code == 202
    response = post(from_client("198.51.100.2"), {"count": 5})
    assert response.status_code == 429
    body = response.json()
    assert body["reason"] == "backlog_full"
    assert "server's queue is full" in body["error"]
    assert (body["backlog_jobs"], body["max_jobs"]) == (6, 10)
    assert 1 <= int(response["Retry-After"]) <= 30
    assert body["retry_after"] == int(response["Retry-After"])
    assert Job.objects.count() == 6  # nothing of the refused batch
    assert post(from_client("198.51.100.3"), {"count": 4}).status_code == 202


def test_finished_jobs_do_not_count_against_the_backlog(settings):
    settings.JOBS_MAX_BACKLOG = 5
    Job.objects.bulk_create([Job(status="done", client="x") for _ in range(50)])
    assert post(from_client("198.51.100.1"), {"count": 5}).status_code == 202


def test_the_row_bound_counts_rows_exactly_when_ids_have_gaps(settings):
    # admission.rows_at_most reads the id range; deleted rows leave gaps, and then the
    # exact count decides (the bound is on rows, not on ids).
    settings.JOBS_MAX_BACKLOG = 5
    settings.JOBS_KEEP_FINISHED = 5
    Job.objects.bulk_create([Job(status="done", client="x") for _ in range(10)])
    Job.objects.filter(pk__in=Job.objects.order_by("id").values_list("id", flat=True)[1:9]).delete()
    assert admission.rows_at_most() == 10 and Job.objects.count() == 2
    assert post(from_client("198.51.100.1"), {"count": 5}).status_code == 202
    assert Job.objects.count() == 7
    assert admission.rows_at_most() == 15


def test_the_id_range_is_read_from_the_index_not_by_scanning_the_table():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Job.objects.bulk_create([Job(status="done", client="x") for _ in range(20)])
    with CaptureQueriesContext(connection) as queries:
        assert admission.rows_at_most() == 20
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            cursor.execute("EXPLAIN QUERY PLAN " + query["sql"])
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            # A full scan reads as "SCAN jobs_job"; MIN or MAX alone is one index search.
            assert "SCAN" not in plan, (query["sql"], plan)


def admission_steps(monkeypatch) -> list[str]:
    """Each admission check and the creators' lock, in order (the lock starts the
    transaction's part: on SQLite the write lock is already held there)."""
    steps = []
    real_check, real_lock = admission.check, admission.locks.lock_admission

    def check(*args, **kwargs):
        steps.append("check")
        return real_check(*args, **kwargs)

    def lock():
        steps.append("lock")
        real_lock()

    monkeypatch.setattr(admission, "check", check)
    monkeypatch.setattr(admission.locks, "lock_admission", lock)
    monkeypatch.setattr(admission.Fill, "last", 1.0)  # a fresh process: cautious
    return steps


def test_far_from_every_bound_admission_checks_once_inside_the_transaction(settings, monkeypatch):
    settings.JOBS_MAX_BACKLOG = settings.JOBS_CLIENT_MAX_BACKLOG = 100
    steps = admission_steps(monkeypatch)
    client = from_client("198.51.100.1")
    assert post(client, {"count": 5}).status_code == 202
    assert steps == ["check", "lock", "check"]  # the first in a process: both passes
    steps.clear()
    assert post(client, {"count": 5}).status_code == 202
    assert steps == ["lock", "check"]


def test_near_a_bound_a_refused_batch_is_refused_before_the_transaction(settings, monkeypatch):
    settings.JOBS_MAX_BACKLOG = settings.JOBS_CLIENT_MAX_BACKLOG = 100
    steps = admission_steps(monkeypatch)
    assert post(from_client("198.51.100.1"), {"count": 60}).status_code == 202  # 60% full
    steps.clear()
    response = post(from_client("198.51.100.2"), {"count": 50})
    assert response.status_code == 429 and response.json()["reason"] == "backlog_full"
    assert steps == ["check"]  # refused without the lock
    assert Job.objects.count() == 60


def test_the_backlog_is_also_bounded_in_estimated_work(settings):
    settings.JOBS_MAX_BACKLOG_SECONDS = 20
    settings.CELERY_WORKER_CONCURRENCY = 2
    # 30 s of waiting each, two children: one job is 15 s of the dyno's time.
    assert post(from_client("198.51.100.1"), {"io_wait_ms": 30_000}, "/api/jobs").status_code == 202
    response = post(from_client("198.51.100.2"), {"io_wait_ms": 30_000}, "/api/jobs")
    assert response.status_code == 429
    assert response.json()["reason"] == "backlog_full"
    assert response.json()["max_seconds"] == 20
    # A small job still fits beside it.
    assert post(from_client("198.51.100.3"), {"io_wait_ms": 10}, "/api/jobs").status_code == 202


def test_a_batch_no_client_could_ever_queue_is_a_400_not_a_429(settings):
    settings.JOBS_CLIENT_MAX_BACKLOG_SECONDS = 60
    response = post(from_client("198.51.100.1"), {"count": 1000, "io_wait_ms": 30_000})
    assert response.status_code == 400
    assert response.json()["reason"] == "batch_too_large"
    assert "Retry-After" not in response
    assert Job.objects.count() == 0


@on_sqlite_and_postgresql
def test_concurrent_batches_cannot_both_squeeze_under_the_bound(tmp_path, database):
    # Six processes (as Gunicorn workers or dynos are) each pass the first,
    # lock-free check at once, then insert 300 jobs under a bound of 1,000:
    # the check inside the locked transaction must turn three of them away.
    with database(tmp_path) as database_url:
        env = {
            "DJANGO_SETTINGS_MODULE": "doubleboiler.settings",
            "DJANGO_SECRET_KEY": "test-only-" + "x" * 50,
            "DATABASE_URL": database_url,
            "JOBS_MAX_BACKLOG": "1000",
            "JOBS_CLIENT_MAX_BACKLOG": "1000",
            "JOBS_MAX_BACKLOG_SECONDS": "100000",
            "JOBS_CLIENT_MAX_BACKLOG_SECONDS": "100000",
        }
        Dyno(tmp_path, env_extra=env).migrate()
        spawn = multiprocessing.get_context("spawn")
        barrier, results = spawn.Barrier(6), spawn.Queue()
        children = [
            spawn.Process(
                target=admission_child.admit_after_barrier,
                args=(env, barrier, f"192.0.2.{n}", 300, results),
            )
            for n in range(6)
        ]
        for child in children:
            child.start()
        outcomes = sorted(results.get(timeout=60) for _ in children)
        for child in children:
            child.join(timeout=30)
        assert outcomes == ["admitted"] * 3 + ["refused"] * 3
        rows = subprocess.run(
            [sys.executable, "app/manage.py", "shell", "-c",
             "from jobs.models import Job; print(Job.objects.count())"],
            cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert rows.stdout.split()[-1] == "900"


# --- Per-client limits ----------------------------------------------------------


def test_one_client_cannot_fill_the_backlog_and_others_still_get_in(settings):
    settings.JOBS_CLIENT_MAX_BACKLOG = 100
    abuser, other = from_client("203.0.113.66"), from_client("203.0.113.7")
    assert post(abuser, {"count": 100}).status_code == 202
    response = post(abuser, {"count": 1})
    assert response.status_code == 429
    assert response.json()["reason"] == "client_backlog_full"
    assert "your address's queue is full" in response.json()["error"]
    assert post(other, {"count": 100}).status_code == 202
    assert Job.objects.filter(client="203.0.113.66").count() == 100


def test_the_rate_limit_counts_accepted_requests_per_client_per_minute(settings):
    settings.JOBS_CLIENT_CREATES_PER_MINUTE = 3
    client = from_client("203.0.113.9")
    for _ in range(3):
        assert post(client, {}, "/api/jobs").status_code == 202
    response = post(client, {}, "/api/jobs")
    assert response.status_code == 429
    assert response.json()["reason"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert CreationWindow.objects.get(client="203.0.113.9").requests == 3
    assert post(from_client("203.0.113.10"), {}, "/api/jobs").status_code == 202
    # The next minute is a new window.
    CreationWindow.objects.update(window_start=timezone.now() - timedelta(minutes=1))
    admission.refusals.clear()
    assert post(client, {}, "/api/jobs").status_code == 202


def test_a_client_told_to_wait_is_answered_without_a_query(settings, django_assert_num_queries):
    settings.JOBS_CLIENT_CREATES_PER_MINUTE = 1
    client = from_client("203.0.113.11")
    assert post(client, {}, "/api/jobs").status_code == 202
    assert post(client, {}, "/api/jobs").status_code == 429
    with django_assert_num_queries(0):
        response = post(client, {}, "/api/jobs")
    assert response.status_code == 429
    assert response.json()["reason"] == "rate_limited"


def test_a_remembered_refusal_ends_at_its_retry_after_however_often_it_is_hit(
    settings, monkeypatch
):
    # Several submitters of one page retry in turn: hits on the remembered refusal
    # must not extend it, or the client is refused for ever (the demo page once was).
    settings.JOBS_CLIENT_CREATES_PER_MINUTE = 1
    clock = [1000.0]
    monkeypatch.setattr(admission.time, "monotonic", lambda: clock[0])
    client = from_client("203.0.113.12")
    assert post(client, {}, "/api/jobs").status_code == 202
    first = post(client, {}, "/api/jobs")
    assert first.status_code == 429
    wait = int(first["Retry-After"])
    for _ in range(4 * wait - 1):
        clock[0] += 0.25
        assert post(client, {}, "/api/jobs").status_code == 429
    clock[0] += 0.25
    assert admission.refusals.get("203.0.113.12") is None  # its wait is over
    CreationWindow.objects.update(window_start=timezone.now() - timedelta(minutes=1))
    assert post(client, {}, "/api/jobs").status_code == 202


# --- Who the client is ------------------------------------------------------------


@pytest.mark.parametrize(
    ("hops", "remote", "forwarded", "expected"),
    [
        (1, "10.0.0.1", "203.0.113.5", "203.0.113.5"),  # Dokku's nginx: $remote_addr
        (
            1,
            "10.0.0.1",
            "6.6.6.6, 203.0.113.5",
            "203.0.113.5",
        ),  # Heroku appends; 6.6.6.6 is the client's own
        (1, "10.0.0.1", "6.6.6.6,7.7.7.7, 203.0.113.5", "203.0.113.5"),
        (2, "10.0.0.1", "6.6.6.6, 203.0.113.5, 10.0.0.9", "203.0.113.5"),
        (1, "10.0.0.1", None, "10.0.0.1"),  # no router header: the peer
        (1, "10.0.0.1", "not-an-address", "10.0.0.1"),
        (2, "10.0.0.1", "203.0.113.5", "10.0.0.1"),  # fewer entries than hops: the peer
        (0, "127.0.0.1", "203.0.113.5", "127.0.0.1"),  # local target: the header is ignored
        (1, "10.0.0.1", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        (1, "10.0.0.1", "::ffff:203.0.113.5", "203.0.113.5"),
    ],
)
def test_the_client_address_is_what_the_router_wrote(
    rf, settings, hops, remote, forwarded, expected
):
    from jobs.clients import client_address

    settings.TRUSTED_PROXY_HOPS = hops
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_address(rf.post("/api/jobs", **extra)) == expected


def test_a_client_cannot_escape_its_limit_by_writing_x_forwarded_for(settings):
    settings.JOBS_CLIENT_MAX_BACKLOG = 5
    for number in range(3):
        spoofed = from_client("203.0.113.66", hops_seen=f"192.0.2.{number}")
        status = post(spoofed, {"count": 5}).status_code
        assert status == (202 if number == 0 else 429)
    assert set(Job.objects.values_list("client", flat=True)) == {"203.0.113.66"}


# --- Bounded storage at creation ---------------------------------------------------


def test_a_full_job_table_is_pruned_before_a_batch_is_admitted(settings, monkeypatch):
    monkeypatch.setattr(admission, "_last_prune", [float("-inf")])
    settings.JOBS_MAX_BACKLOG = 10
    settings.JOBS_KEEP_FINISHED = 20
    moment = timezone.now() - timedelta(minutes=1)
    Job.objects.bulk_create(
        [Job(status="done", finished_at=moment, updated_at=moment) for _ in range(30)]
    )
    assert post(from_client("198.51.100.1"), {"count": 5}).status_code == 202
    assert Job.objects.filter(status="done").count() == 18  # 90% of the 20 kept
    assert Job.objects.count() <= settings.JOBS_MAX_BACKLOG + settings.JOBS_KEEP_FINISHED


def test_between_prunes_a_full_job_table_refuses_creation(settings, monkeypatch):
    # Pruning runs at most every few seconds per process: one just ran.
    monkeypatch.setattr(admission, "_last_prune", [admission.time.monotonic()])
    settings.JOBS_MAX_BACKLOG = 10
    settings.JOBS_KEEP_FINISHED = 20
    Job.objects.bulk_create([Job(status="done") for _ in range(30)])
    response = post(from_client("198.51.100.1"), {}, "/api/jobs")
    assert response.status_code == 429
    assert response.json()["reason"] == "storage_full"
    assert response.json()["max_rows"] == 30
    assert Job.objects.count() == 30


# --- Request hygiene ------------------------------------------------------------------

HYGIENE_CASES = [
    ("malformed JSON", b'{"count": 2', 400, "not valid JSON"),
    ("not UTF-8", b'{"count": "\xff"}', 400, "not valid JSON"),
    ("not an object", b"[1, 2]", 400, "must be a JSON object"),
    ("wrong type", b'{"count": "3"}', 400, "count must be a whole number"),
    ("a float", b'{"count": 2.5}', 400, "count must be a whole number"),
    ("huge number", b'{"count": ' + b"9" * 5000 + b"}", 400, "at most 15 digits"),
    ("overflowing float", b'{"io_wait_ms": 1e999}', 400, "io_wait_ms must be a whole number"),
    ("NaN", b'{"io_wait_ms": NaN}', 400, "NaN is not a number"),
    ("Infinity", b'{"count": Infinity}', 400, "Infinity is not a number"),
    ("duplicate keys", b'{"count": 1, "count": 1000}', 400, "'count' appears twice"),
    ("unknown field", b'{"count": 1, "priority": 9}', 400, "unknown field(s): 'priority'"),
    (
        "deep nesting, past the size",
        b'{"count": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        413,
        "larger than",
    ),
    (
        "huge body",
        b'{"count": 1, "pad": "' + b"x" * 100_000 + b'"}',
        413,
        "larger than 16384 bytes",
    ),
]


@pytest.mark.parametrize(
    ("what", "body", "status", "message"), HYGIENE_CASES, ids=[c[0] for c in HYGIENE_CASES]
)
def test_bad_bodies_get_a_clear_error_and_create_nothing(client, what, body, status, message):
    response = client.post("/api/jobs/batch", data=body, content_type="application/json")
    assert response.status_code == status
    assert message in response.json()["error"]
    assert "Traceback" not in response.content.decode(errors="replace")
    assert Job.objects.count() == 0


def test_nesting_within_the_size_limit_is_still_a_clear_400(client):
    body = b"[" * 5000 + b"]" * 5000
    response = client.post("/api/jobs", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def test_a_declared_length_past_the_limit_is_refused_before_the_body_is_read(rf):
    request = rf.post("/api/jobs", data=b"{}", content_type="application/json")
    request.META["CONTENT_LENGTH"] = str(10**9)
    response = views.jobs_collection(request)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/no/such/page", {}, 404),
        ("/api/jobs/123456789", {}, 404),
        ("/healthz", {"HTTP_HOST": "evil.example"}, 400),  # DisallowedHost
    ],
)
def test_django_error_answers_carry_no_trace_or_setting(client, settings, path, headers, status):
    settings.DEBUG = False
    response = client.get(path, **headers)
    assert response.status_code == status
    text = response.content.decode()
    assert response["Content-Type"] == "application/json"
    for leak in ("Traceback", "SECRET_KEY", settings.SECRET_KEY, "DATABASES", "settings"):
        assert leak not in text
    assert json.loads(text)["error"]


def test_a_server_error_answers_without_a_trace(client, settings, monkeypatch):
    settings.DEBUG = False

    def explode(*args, **kwargs):
        raise RuntimeError(f"boom {settings.SECRET_KEY}")

    monkeypatch.setattr(admission, "admit", explode)
    client.raise_request_exception = False
    response = post(client, {}, "/api/jobs")
    assert response.status_code == 500
    text = response.content.decode()
    assert "boom" not in text and "Traceback" not in text and settings.SECRET_KEY not in text
    assert response.json()["error"].startswith("server error")
