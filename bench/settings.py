"""The app's settings plus the benchmark's routes (bench/urls.py).

The servers the benchmark loads run with DJANGO_SETTINGS_MODULE=bench.settings and the
repository root on PYTHONPATH; the shipped app never routes /bench/io.
"""

from doubleboiler.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
