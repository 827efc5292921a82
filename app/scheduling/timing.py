"""Due times every beat agrees on, whatever it started or last ran.

Celery's own schedules count an interval from the last run *this* beat saw,
so two beats (two dynos, or the old and new one during a deploy) would fire at
different moments and no database constraint could tell they mean the same
tick. Here the due times are a property of the schedule alone:

- an interval of N seconds falls due at every multiple of N seconds since the
  Unix epoch (every 60 s: on the minute; every 5 s: at :00, :05, ...);
- a crontab falls due at each minute it matches, in its time zone.

Only these two kinds are supported (solar and clocked schedules are refused
by the scheduler, with a log line).
"""

from collections import deque
from datetime import UTC, datetime, timedelta

from celery import schedules

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A crontab can be far between matches; searching further than this for the
# ticks of a long outage is pointless (they are capped anyway).
MAX_STEPS = 100_000


class UnsupportedSchedule(ValueError):
    pass


def interval_of(schedule) -> timedelta | None:
    if isinstance(schedule, schedules.crontab):
        return None
    if isinstance(schedule, schedules.schedule):
        return schedule.run_every
    raise UnsupportedSchedule(f"{schedule!r}: only intervals and crontabs have agreed due times")


def next_due(schedule, after: datetime) -> datetime:
    """The first due time strictly after `after` (aware, UTC)."""
    every = interval_of(schedule)
    if every is not None:
        step = every // timedelta(microseconds=1)
        if step <= 0:
            raise UnsupportedSchedule(f"{schedule!r}: the interval must be positive")
        elapsed = (after - EPOCH) // timedelta(microseconds=1)
        return EPOCH + timedelta(microseconds=(elapsed // step + 1) * step)
    local_after, delta, _ = schedule.remaining_delta(after, tz=getattr(schedule, "tz", None))
    found = (local_after + delta).astimezone(UTC)
    if found <= after:  # remaining_delta works in whole minutes
        found = next_due(schedule, after + timedelta(minutes=1))
    return found


def describe(schedule) -> dict:
    every = interval_of(schedule)
    if every is not None:
        return {"kind": "interval", "every_seconds": every.total_seconds()}
    return {
        "kind": "crontab",
        "crontab": " ".join(
            str(getattr(schedule, f"_orig_{part}"))
            for part in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
        ),
        "timezone": str(getattr(schedule, "tz", "UTC")),
    }


def due_between(schedule, after: datetime, until: datetime, keep: int) -> tuple[list, int]:
    """Due times in (after, until], oldest first: the newest `keep` of them and
    how many older ones were left out."""
    found: deque[datetime] = deque(maxlen=keep)
    total = 0
    due = next_due(schedule, after)
    every = interval_of(schedule)
    if every is not None and due <= until:
        # Arithmetic, not a walk: an outage of a day on a 5 s interval is 17280 ticks.
        total = (until - due) // every + 1
        first_kept = due + every * max(0, total - keep)
        found.extend(first_kept + every * n for n in range(min(total, keep)))
        return list(found), total - len(found)
    for _ in range(MAX_STEPS):
        if due > until:
            break
        found.append(due)
        total += 1
        due = next_due(schedule, due)
    return list(found), total - len(found)
