from django.db import models


class Tick(models.Model):
    """One due time of one periodic task: claimed once, whatever the number of beats.

    The unique constraint on (name, due_at) is the whole coordination: every
    beat (one per dyno, old and new during a deploy) computes the same due
    times, tries to insert the row in a transaction, and only the one whose
    insert commits dispatches it. The worker then runs it under a fenced claim
    (`runs`), so a second message for the same tick does nothing.
    """

    class Outcome(models.TextChoices):
        DISPATCHED = "dispatched"  # claimed by a beat and sent to the broker; not started yet
        RUNNING = "running"
        OK = "ok"
        FAILED = "failed"
        SKIPPED = "skipped"  # fell due while no scheduler ran, and the task does not catch up
        INTERRUPTED = "interrupted"  # its worker died mid-run, and the task does not catch up

    name = models.CharField(max_length=200)  # the periodic task's name
    task = models.CharField(max_length=200)  # the Celery task it runs
    due_at = models.DateTimeField()
    arguments = models.JSONField(default=dict)  # {"args": [...], "kwargs": {...}}
    catch_up = models.BooleanField(default=False)
    late = models.BooleanField(default=False)  # dispatched after its grace, to catch up
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    claimed_at = models.DateTimeField()
    claimed_by = models.CharField(max_length=255)  # dyno or host of the beat
    claimed_pid = models.IntegerField()
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Messages sent for the tick; more than one only when one was lost (see claims.py).
    dispatches = models.PositiveIntegerField(default=0)
    # Deliveries that claimed the run; more than one only after a worker died mid-run.
    runs = models.PositiveIntegerField(default=0)
    duplicate_deliveries = models.PositiveIntegerField(default=0)
    run_by = models.CharField(max_length=255, blank=True, default="")
    run_pid = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "due_at"], name="tick_once_per_due_time"),
        ]
        indexes = [models.Index(fields=["outcome", "claimed_at"], name="tick_outcome_idx")]

    def __str__(self) -> str:
        return f"{self.name} due {self.due_at.isoformat()} ({self.outcome})"

    def as_dict(self) -> dict:
        def iso(value):
            return value.isoformat() if value else None

        return {
            "id": self.pk,
            "due_at": iso(self.due_at),
            "outcome": self.outcome,
            "late": self.late,
            "dispatched_at": iso(self.dispatched_at),
            "dispatched_by": {"dyno": self.claimed_by, "pid": self.claimed_pid},
            "dispatches": self.dispatches,
            "run_by": {"dyno": self.run_by, "pid": self.run_pid} if self.run_pid else None,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "runs": self.runs,
            "result": self.result,
            "error": self.error or None,
        }


class SchedulerHeartbeat(models.Model):
    """Written by each live beat every few seconds; /healthz and /api/schedule read it."""

    key = models.CharField(max_length=255, primary_key=True)  # "<dyno or host>:<pid>"
    dyno = models.CharField(max_length=255)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return self.key
