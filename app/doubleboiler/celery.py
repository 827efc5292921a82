"""Celery application: configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doubleboiler.settings")

app = Celery("doubleboiler")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Heartbeat rows for /healthz and the requeue-on-start of unfinished jobs.
app.steps["worker"].add("jobs.worker:Heartbeat")
