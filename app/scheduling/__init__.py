"""Scheduled tasks: Celery beat with django-celery-beat's schedules, one dispatch per tick."""
