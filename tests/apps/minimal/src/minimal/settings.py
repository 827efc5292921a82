"""Settings from the environment the deploy roles give: DATABASE_URL, a Redis broker
(CELERY_BROKER_URL or REDIS_URL), DJANGO_SECRET_KEY, ALLOWED_HOSTS, DEBUG, DJANGO_HTTPS_ONLY."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DEBUG = os.environ.get("DEBUG", "false").lower() == "true"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is not set.")
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost").split(",") if h]

HTTPS_ONLY = os.environ.get("DJANGO_HTTPS_ONLY", "true").lower() != "false"
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = 3600 if HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY
SILENCED_SYSTEM_CHECKS = ["security.W021"]  # HSTS preload: the site owner's one-way decision
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the platforms' checks speak plain HTTP

# staticfiles: Heroku's Python buildpack runs `manage.py collectstatic --noinput` when Django
# is installed, and fails the build if that fails (heroku/heroku-buildpack-python
# bin/steps/collectstatic); without the app the command does not exist.
INSTALLED_APPS = ["django.contrib.staticfiles", "minimal"]
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "minimal.urls"
WSGI_APPLICATION = "minimal.wsgi.application"
DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# Celery (CELERY_* names): Redis is this app's broker.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL", "")
if not CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured("Set CELERY_BROKER_URL or REDIS_URL to a redis:// URL.")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# bin/dyno resolves `auto` before it starts the worker; other processes run no pool.
CELERY_WORKER_CONCURRENCY = int(os.environ.get("CELERY_CONCURRENCY", "auto").replace("auto", "2"))
if CELERY_BROKER_URL.startswith("rediss://"):
    CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": "none"}  # Heroku Redis' self-signed certificate
