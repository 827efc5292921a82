"""Celery application: configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doubleboiler.settings")

app = Celery("doubleboiler")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Heartbeat rows for /healthz and the requeue of jobs whose message may be lost.
app.steps["worker"].add("jobs.worker:Heartbeat")
# Celery beat in a process forked by the worker, when SCHEDULE_BEAT is on.
app.steps["worker"].add("scheduling.worker:EmbeddedBeat")


def waiting_messages(connection) -> int:
    """How many messages wait in the default queue; fetched ones are not counted.

    Declaring the queue also makes the transport really talk to the broker
    (the SQL one connects lazily).
    """
    channel = connection.default_channel
    _, waiting, _ = channel.queue_declare(
        queue=app.conf.task_default_queue, durable=True, auto_delete=False
    )
    # kombu's SQL transport counts in its channel's session and never ends that
    # transaction (kombu/transport/sqlalchemy _size): the session keeps its pooled
    # connection until the channel next commits. With the connection budget's pool
    # of one (BROKER_DATABASE_POOL_SIZE) every other publish or fetch of the process
    # then waited the pool's 30 s timeout.
    session = getattr(channel, "_session", None)
    if session is not None:
        session.commit()
    return waiting
