"""Settings for double-boiler, read from the environment (twelve-factor style).

Production-safe by default: DEBUG is off, the secret key must come from the
environment, HTTPS is enforced unless DJANGO_HTTPS_ONLY=false says the
deployment serves plain HTTP (the local target, a Dokku host without TLS).
docs/architecture.md lists every variable.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .broker import broker_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use true or false.")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # The original project invented a key per process: sessions and signed
        # values then broke across workers and restarts. Refuse instead.
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it in the environment to a long random "
            "value (the deploy roles generate one for you; by hand: python3 -c "
            "'import secrets; print(secrets.token_urlsafe(50))'), or set DEBUG=true "
            "for local development."
        )
    SECRET_KEY = "development-only-insecure-key-never-used-when-debug-is-off"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "jobs",
    "demo",
]

MIDDLEWARE = [
    "jobs.middleware.served_by",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "doubleboiler.urls"
WSGI_APPLICATION = "doubleboiler.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    },
]

# --- Database -----------------------------------------------------------------
# CONN_MAX_AGE stays 0: under gevent every greenlet gets its own connection, and
# persistent per-greenlet connections would leak. Gunicorn's config asks for a
# small psycopg pool instead (DATABASE_POOL_SIZE) so a burst of greenlets shares
# a few PostgreSQL connections (Heroku's essential-0 allows 20).
DEFAULT_SQLITE_URL = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
DATABASE_URL = os.environ.get("DATABASE_URL") or DEFAULT_SQLITE_URL
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and one writer work at once; IMMEDIATE transactions avoid
    # the lock-upgrade deadlock between the web, the worker and the broker tables.
    _db["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif _db["ENGINE"] == "django.db.backends.postgresql":
    pool_size = env_int("DATABASE_POOL_SIZE", 0)
    if pool_size > 0:
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": pool_size,
            "timeout": 10,
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery ---------------------------------------------------------------------


# The broker: CELERY_BROKER_URL, else REDIS_URL (a Redis add-on), else the
# database itself (see doubleboiler/broker.py).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL")
if CELERY_BROKER_URL:
    BROKER_KIND = CELERY_BROKER_URL.split("://", 1)[0].split("+", 1)[0]
else:
    try:
        CELERY_BROKER_URL = broker_url(DATABASE_URL)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None
    BROKER_KIND = "database"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 5
if BROKER_KIND in {"redis", "rediss"}:
    # A message whose worker vanished comes back after this many seconds; jobs
    # take well under it. The worker also requeues unfinished jobs when it starts.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
if BROKER_KIND == "rediss":
    # Heroku Redis serves TLS with a self-signed certificate.
    CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": "none"}

# Job state lives in the Job table, not in a result backend.
CELERY_TASK_IGNORE_RESULT = True
# Acknowledge after the work, so a worker lost mid-job gives the message back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env_int("CELERY_CONCURRENCY", 2)
# Recycle children before they grow: the whole dyno must fit 512 MB.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_MAX_TASKS_PER_CHILD", 1000)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_MAX_MEMORY_PER_CHILD_KB", 150_000)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True

# A job claimed by a worker that then vanished may be claimed again after its
# expected duration plus this margin (seconds).
JOBS_LEASE_MARGIN_SECONDS = env_int("JOBS_LEASE_MARGIN_SECONDS", 15)
# A job still queued this long may have lost its message (a dyno killed
# without grace): the worker sends another. Works like a visibility timeout.
JOBS_REQUEUE_AFTER_SECONDS = env_int("JOBS_REQUEUE_AFTER_SECONDS", 60)
JOBS_MAX_BATCH = env_int("JOBS_MAX_BATCH", 1000)
WORKER_HEARTBEAT_SECONDS = 5

# --- HTTP and security --------------------------------------------------------------
HTTPS_ONLY = env_bool("DJANGO_HTTPS_ONLY", True)
# Heroku's router and Dokku's nginx terminate TLS and say so in this header.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # platform probes speak plain HTTP
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000) if HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
# HSTS preload is a one-way submission to browser vendors: the owner's decision,
# not a default. Everything else `manage.py check --deploy` asks for is on.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- Static files (WhiteNoise) ----------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve from the apps' static folders too, so a platform that skipped
# collectstatic still serves the demo.
WHITENOISE_USE_FINDERS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Logging: everything to stdout, the platform collects it ---------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s [pid %(process)d] %(message)s"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stdout"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
