from django.db import models
from django.utils import timezone


class Job(models.Model):
    """A unit of simulated work: an I/O wait (an upstream call) and a CPU step.

    The row is the source of truth; broker messages only say "look at job N".
    That is what makes redelivery safe: a worker claims a job with a
    conditional UPDATE and completes it only if its claim still holds.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    io_wait_ms = models.PositiveIntegerField(default=100)
    cpu_iterations = models.PositiveIntegerField(default=20_000)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # Deliveries that claimed the job; the claim number fences completion.
    attempts = models.PositiveIntegerField(default=0)
    # Deliveries that found the job already finished and did nothing.
    duplicate_deliveries = models.PositiveIntegerField(default=0)
    # The address of the client that created it (see jobs.clients), for the
    # per-client limits and fair dispatch.
    client = models.CharField(max_length=64, blank=True, default="")
    # Queued, but its client already ran as many jobs as it may at once: the
    # job waits without a broker message until one of them finishes.
    deferred = models.BooleanField(default=False)
    web_pid = models.IntegerField(null=True, blank=True)
    worker_pid = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["updated_at", "id"], name="job_updated_idx"),
            models.Index(fields=["status"], name="job_status_idx"),
            models.Index(fields=["client", "status"], name="job_client_status_idx"),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.status})"

    def as_dict(self) -> dict:
        def iso(value):
            return value.isoformat() if value else None

        return {
            "id": self.pk,
            "status": self.status,
            "io_wait_ms": self.io_wait_ms,
            "cpu_iterations": self.cpu_iterations,
            "result": self.result,
            "error": self.error or None,
            "attempts": self.attempts,
            "web_pid": self.web_pid,
            "worker_pid": self.worker_pid,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "updated_at": iso(self.updated_at),
        }


class WorkerHeartbeat(models.Model):
    """Written every few seconds by each Celery worker's main process.

    /healthz reads these rows instead of Celery's remote-control ping, which the
    database broker cannot broadcast (jobs.health.workers says why not on Redis).
    """

    hostname = models.CharField(max_length=255, primary_key=True)
    pid = models.IntegerField()
    pool_pids = models.JSONField(default=list)
    concurrency = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} (pid {self.pid})"


class CreationWindow(models.Model):
    """Job-creating requests a client made in one minute (the per-client rate limit).

    Only accepted requests count, and they are counted in the transaction that
    inserts their jobs: the database is the one shared counter for every
    Gunicorn worker and every dyno. jobs.retention deletes past windows.
    """

    client = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "window_start"], name="creation_window_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.client} at {self.window_start}: {self.requests}"
