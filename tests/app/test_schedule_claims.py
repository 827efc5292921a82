"""One dispatch per tick however many schedulers claim it; catch-up, sweeps, fences."""

from datetime import UTC, datetime, timedelta

import pytest
from celery import current_app, schedules, shared_task
from django.core.management import call_command

from scheduling import claims, tasks
from scheduling.models import Tick

pytestmark = pytest.mark.django_db

EVERY5 = schedules.schedule(timedelta(seconds=5))
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@shared_task(name="tests.scheduled_boom")
def boom():
    raise RuntimeError("boom")


@shared_task(name="tests.scheduled_echo")
def echo(word="hi"):
    return {"echo": word}


def periodic(catch_up=False, task="tests.scheduled_echo", schedule=EVERY5, name="echo"):
    return claims.Periodic(name=name, task=task, schedule=schedule, catch_up=catch_up)


class Outbox(list):
    def __call__(self, tick):
        self.append(tick.pk)


def test_two_schedulers_at_the_same_moment_dispatch_each_tick_once(monkeypatch):
    sent = Outbox()
    monkeypatch.setenv("DYNO", "web.1")
    first = claims.dispatch_due(periodic(), sent, now=T0, grace=60)
    monkeypatch.setenv("DYNO", "web.2")
    second = claims.dispatch_due(periodic(), sent, now=T0, grace=60)
    assert len(first.dispatched) == 1 and second.dispatched == []
    tick = Tick.objects.get()
    assert (tick.due_at, tick.claimed_by, tick.dispatches) == (T0, "web.1", 1)
    assert sent == [tick.pk]
    assert first.next_due == T0 + timedelta(seconds=5)


def test_the_loser_of_a_race_learns_it_from_the_constraint(monkeypatch):
    # Both computed the same due time before either inserted: the second insert fails.
    assert claims.claim(periodic(), T0, T0, Tick.Outcome.DISPATCHED, late=False) is not None
    assert claims.claim(periodic(), T0, T0, Tick.Outcome.DISPATCHED, late=False) is None
    assert Tick.objects.count() == 1


def test_a_task_never_seen_starts_with_its_latest_due_time_only():
    sent = Outbox()
    result = claims.dispatch_due(periodic(), sent, now=T0 + timedelta(seconds=12), grace=60)
    assert [t.due_at for t in result.dispatched] == [T0 + timedelta(seconds=10)]


def seed_last_run():
    claims.claim(periodic(), T0, T0, Tick.Outcome.DISPATCHED, late=False)


def test_ticks_missed_while_no_scheduler_ran_are_skipped_and_recorded():
    seed_last_run()
    sent = Outbox()
    # Back after 10 minutes: the last minute (grace) is on time, the rest was missed.
    result = claims.dispatch_due(periodic(), sent, now=T0 + timedelta(minutes=10), grace=60)
    assert len(result.dispatched) == 13  # 9:01 .. 10:00 inclusive, every 5 s
    assert result.skipped == 120 - 13 - result.not_recorded
    assert Tick.objects.filter(outcome=Tick.Outcome.SKIPPED).count() == result.skipped
    assert all(not tick.late for tick in result.dispatched)
    assert not Tick.objects.filter(due_at__gte=T0 + timedelta(minutes=9)).exclude(
        outcome=Tick.Outcome.DISPATCHED
    )


def test_a_task_that_catches_up_runs_each_missed_tick_once(settings):
    settings.SCHEDULE_CATCH_UP_LIMIT = 20
    seed_last_run()
    sent = Outbox()
    result = claims.dispatch_due(
        periodic(catch_up=True), sent, now=T0 + timedelta(minutes=10), grace=60
    )
    assert len(result.dispatched) == 20 and result.not_recorded == 100
    assert sum(tick.late for tick in result.dispatched) == 20 - 13
    again = claims.dispatch_due(
        periodic(catch_up=True), sent, now=T0 + timedelta(minutes=10), grace=60
    )
    assert again.dispatched == [] and len(sent) == len(set(sent)) == 20


def test_a_delivery_runs_the_tick_once_and_a_second_does_nothing():
    sent = Outbox()
    claims.dispatch_due(periodic(), sent, now=T0, grace=60)
    assert tasks.run(sent[0]) == "ok"
    assert tasks.run(sent[0]) == "duplicate"
    tick = Tick.objects.get()
    assert (tick.outcome, tick.runs, tick.duplicate_deliveries) == ("ok", 1, 1)
    assert tick.result == {"echo": "hi"} and tick.finished_at and tick.run_pid


def test_failures_are_recorded():
    sent = Outbox()
    claims.dispatch_due(periodic(task="tests.scheduled_boom", name="boom"), sent, now=T0)
    claims.dispatch_due(periodic(task="no.such.task", name="ghost"), sent, now=T0)
    assert [tasks.run(pk) for pk in sent] == ["failed", "failed"]
    errors = dict(Tick.objects.values_list("name", "error"))
    assert errors == {"boom": "RuntimeError: boom", "ghost": "no Celery task named no.such.task"}


def test_a_lost_message_is_sent_again_once(settings):
    sent = Outbox()
    claims.dispatch_due(periodic(), sent, now=T0, grace=60)
    later = T0 + timedelta(seconds=settings.SCHEDULE_REDISPATCH_AFTER_SECONDS + 1)
    assert claims.sweep(sent, now=later)["redispatched"] == 1
    assert claims.sweep(sent, now=later)["redispatched"] == 0  # the other scheduler's sweep
    assert Tick.objects.get().dispatches == 2 and len(sent) == 2
    assert [tasks.run(pk) for pk in sent] == ["ok", "duplicate"]


@pytest.mark.parametrize(("catch_up", "expected"), [(False, "interrupted"), (True, "ok")])
def test_a_run_whose_worker_died(settings, catch_up, expected):
    sent = Outbox()
    claims.dispatch_due(periodic(catch_up=catch_up), sent, now=T0, grace=60)
    assert tasks.start(sent[0]) is not None  # the worker took it, then died
    tick = Tick.objects.get()
    after_lease = tick.lease_expires_at + timedelta(seconds=1)
    counts = claims.sweep(sent, now=after_lease)
    if catch_up:
        assert counts["rerun"] == 1
        assert tasks.run(sent[-1]) == "ok"
    else:
        assert counts["interrupted"] == 1 and len(sent) == 1
    tick.refresh_from_db()
    assert tick.outcome == expected


def test_history_is_pruned_but_each_task_keeps_its_newest_tick(settings):
    sent = Outbox()
    for minute in range(3):
        claims.dispatch_due(periodic(), sent, now=T0 + timedelta(minutes=minute), grace=1)
    Tick.objects.update(outcome=Tick.Outcome.OK)
    newest = Tick.objects.latest("due_at").due_at
    now = T0 + timedelta(hours=settings.SCHEDULE_HISTORY_HOURS + 5)
    before = Tick.objects.count()
    assert claims.prune_history(["echo"], now=now) == before - 1
    assert list(Tick.objects.values_list("due_at", flat=True)) == [newest]


def test_the_command_runs_what_is_due_once(monkeypatch, capsys):
    monkeypatch.setitem(
        current_app.conf,
        "beat_schedule",
        {"echo": {"task": "tests.scheduled_echo", "schedule": 5.0, "kwargs": {"word": "yo"}}},
    )
    call_command("dispatch_due_ticks", "--window", "60")
    assert "echo: 1 dispatched" in capsys.readouterr().out
    tick = Tick.objects.get(name="echo")
    assert (tick.outcome, tick.result) == ("ok", {"echo": "yo"})
    call_command("dispatch_due_ticks", "--window", "60")
    assert "echo: 0 dispatched" in capsys.readouterr().out


def test_the_command_exits_1_when_a_tick_failed(monkeypatch):
    monkeypatch.setitem(
        current_app.conf,
        "beat_schedule",
        {"boom": {"task": "tests.scheduled_boom", "schedule": 5.0}},
    )
    with pytest.raises(SystemExit) as exited:
        call_command("dispatch_due_ticks")
    assert exited.value.code == 1
