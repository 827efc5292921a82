"""A minimal Django + Celery project that follows double-boiler's two-Procfile contract."""

from .celery import app as celery_app

__all__ = ["celery_app"]
