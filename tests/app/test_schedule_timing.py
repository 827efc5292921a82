"""Due times are a property of the schedule: every beat computes the same ones."""

from datetime import UTC, datetime, timedelta

import pytest
from celery import schedules
from django_celery_beat.clockedschedule import clocked
from django_celery_beat.tzcrontab import TzAwareCrontab

from scheduling import timing


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_an_interval_falls_due_on_multiples_of_itself_since_the_epoch():
    every5 = schedules.schedule(timedelta(seconds=5))
    assert timing.next_due(every5, at("2026-12-01 10:00:03")) == at("2026-12-01 10:00:05")
    # Strictly after: a due time is never its own successor.
    assert timing.next_due(every5, at("2026-12-01 10:00:05")) == at("2026-12-01 10:00:10")
    every_minute = schedules.schedule(timedelta(minutes=1))
    assert timing.next_due(every_minute, at("2026-12-01 10:00:59.999")) == at("2026-12-01 10:01")


def test_a_crontab_falls_due_on_its_minutes():
    quarter = TzAwareCrontab(minute="*/15")
    assert timing.next_due(quarter, at("2026-12-01 10:07:30")) == at("2026-12-01 10:15")
    assert timing.next_due(quarter, at("2026-12-01 10:15")) == at("2026-12-01 10:30")
    assert timing.next_due(schedules.crontab(minute=0, hour=4), at("2026-12-01 05:00")) == at(
        "2026-12-02 04:00"
    )


def test_due_between_keeps_the_newest_and_counts_the_rest():
    every5 = schedules.schedule(timedelta(seconds=5))
    kept, older = timing.due_between(every5, at("2026-12-01 10:00"), at("2026-12-01 10:01"), 3)
    assert kept == [at("2026-12-01 10:00:50"), at("2026-12-01 10:00:55"), at("2026-12-01 10:01")]
    assert older == 9
    quarter = TzAwareCrontab(minute="*/15")
    kept, older = timing.due_between(quarter, at("2026-12-01 10:00"), at("2026-12-01 11:00"), 10)
    assert kept == [at("2026-12-01 10:15"), at("2026-12-01 10:30"), at("2026-12-01 10:45"),
                    at("2026-12-01 11:00")]  # fmt: skip
    assert older == 0
    assert timing.due_between(every5, at("2026-12-01 10:00"), at("2026-12-01 10:00:04"), 3) == (
        [],
        0,
    )


def test_schedules_without_agreed_due_times_are_refused():
    once = clocked(at("2026-12-01 12:00"))
    with pytest.raises(timing.UnsupportedSchedule):
        timing.next_due(once, at("2026-12-01 10:00"))
    with pytest.raises(timing.UnsupportedSchedule):
        timing.next_due(schedules.schedule(timedelta(0)), at("2026-12-01 10:00"))


def test_describe():
    assert timing.describe(schedules.schedule(timedelta(seconds=5))) == {
        "kind": "interval",
        "every_seconds": 5.0,
    }
    described = timing.describe(TzAwareCrontab(minute="*/15"))
    assert described["kind"] == "crontab" and described["crontab"] == "*/15 * * * *"
