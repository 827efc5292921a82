"""WSGI entry point, served by Gunicorn's gevent workers (see gunicorn.conf.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doubleboiler.settings")

application = get_wsgi_application()
