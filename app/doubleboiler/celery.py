"""Celery application: configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doubleboiler.settings")

app = Celery("doubleboiler")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Heartbeat rows for /healthz and the requeue of jobs whose message may be lost.
app.steps["worker"].add("jobs.worker:Heartbeat")


def waiting_messages(connection) -> int:
    """How many messages wait in the default queue; fetched ones are not counted.

    Declaring the queue also makes the transport really talk to the broker
    (the SQL one connects lazily).
    """
    _, waiting, _ = connection.default_channel.queue_declare(
        queue=app.conf.task_default_queue, durable=True, auto_delete=False
    )
    return waiting
