"""Dispatch the scheduled ticks that are due, once, and exit: for Heroku Scheduler.

On a dyno size that sleeps (Heroku's eco), beat sleeps with the dyno, and so
does its worker. Heroku Scheduler starts a one-off dyno every 10 minutes, hour
or day; this command, run there, claims the due ticks with the same
exactly-once claims as beat (it can run beside beats: each tick still goes
once) and, by default, runs them in its own process, since the sleeping
worker would not. A tick due within --window seconds is on time; an older
one is caught up or recorded as skipped, as its task says.

Exit status: 0 when every tick it ran succeeded (or none was due), 1 when a
tick it ran failed, 2 on bad usage.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from scheduling import claims
from scheduling.models import Tick
from scheduling.scheduler import ensure_schedule_loaded, periodics, send_to_worker
from scheduling.tasks import run

# Heroku Scheduler's shortest frequency: every 10 minutes.
DEFAULT_WINDOW_SECONDS = 600


class Command(BaseCommand):
    help = "Dispatch the scheduled ticks that are due (exactly once), then exit."

    def add_arguments(self, parser):
        parser.add_argument(
            "--window",
            type=int,
            default=DEFAULT_WINDOW_SECONDS,
            help="seconds a tick may be late and still count as on time; set it to how "
            "often this command runs (default %(default)s: Heroku Scheduler's 10 minutes)",
        )
        parser.add_argument(
            "--send",
            action="store_true",
            help="send the ticks to the Celery worker through the broker instead of running "
            "them in this process (for a worker that does not sleep)",
        )

    def handle(self, *args, window: int, send: bool, **options):
        if window < 1:
            raise CommandError("--window must be a whole number of seconds, at least 1")
        ensure_schedule_loaded()
        outcomes: list[str] = []

        def run_here(tick: Tick) -> None:
            outcomes.append(run(tick.pk))

        deliver = send_to_worker if send else run_here
        for periodic in periodics():
            result = claims.dispatch_due(periodic, deliver, grace=window)
            self.stdout.write(
                f"{periodic.name}: {len(result.dispatched)} dispatched, {result.skipped} skipped, "
                f"{result.lost_to_others} taken by another scheduler; next due "
                f"{result.next_due.isoformat() if result.next_due else '-'}"
            )
        swept = claims.sweep(deliver)
        if any(swept.values()):
            self.stdout.write(f"sweep: {swept}")
        if Tick.Outcome.FAILED in outcomes:
            self.stderr.write(f"{outcomes.count(Tick.Outcome.FAILED)} tick(s) failed")
            raise SystemExit(1)
