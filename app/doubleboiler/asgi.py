"""ASGI entry point, used only by the benchmark's uvicorn comparison."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doubleboiler.settings")

application = get_asgi_application()
