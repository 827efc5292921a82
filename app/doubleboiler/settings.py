"""Settings for double-boiler, read from the environment (twelve-factor style).

Production-safe by default: DEBUG is off, the secret key must come from the
environment, HTTPS is enforced unless DJANGO_HTTPS_ONLY=false says the
deployment serves plain HTTP (the local target, a Dokku host without TLS).
docs/architecture.md lists every variable.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
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


def env_int(name: str, default: int, auto: int | None = None) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if auto is not None and value == "auto":
        return auto
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
# An app without a domain (a Dokku host with vhosts off) is probed by Dokku's deploy checks
# at the container's own address with no Host header (dokku/dokku
# plugins/scheduler-docker-local/check-deploy), so the request names that address.
if env_bool("ALLOWED_HOSTS_OWN_ADDRESSES", False):
    import contextlib
    import socket

    with contextlib.suppress(OSError):  # no resolvable own name: nothing to add
        ALLOWED_HOSTS += socket.gethostbyname_ex(socket.gethostname())[2]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "jobs",
    "demo",
    "django_celery_beat",
    "scheduling",
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
# database itself (see doubleboiler/broker.py). DOUBLE_BOILER_BROKER=database
# picks the database even while a Redis add-on (REDIS_URL) is still attached,
# as when a deploy switches brokers; =redis requires a Redis URL.
BROKER_CHOICE = os.environ.get("DOUBLE_BOILER_BROKER", "").strip().lower()
if BROKER_CHOICE not in {"", "redis", "database"}:
    raise ImproperlyConfigured(
        f"DOUBLE_BOILER_BROKER={BROKER_CHOICE!r}: use redis or database (or leave it unset)."
    )
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or (
    os.environ.get("REDIS_URL") if BROKER_CHOICE != "database" else None
)
if BROKER_CHOICE == "redis" and not CELERY_BROKER_URL:
    raise ImproperlyConfigured(
        "DOUBLE_BOILER_BROKER=redis but neither CELERY_BROKER_URL nor REDIS_URL is set: "
        "attach a Redis add-on or set DOUBLE_BOILER_BROKER=database."
    )
if CELERY_BROKER_URL:
    BROKER_KIND = CELERY_BROKER_URL.split("://", 1)[0].split("+", 1)[0]
else:
    try:
        CELERY_BROKER_URL = broker_url(DATABASE_URL)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None
    BROKER_KIND = "database"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Connection budgets: every process keeps at most this many broker connections for
# publishing (Celery's default is 10 per process, enough to pass a small plan's
# limit); the deploy role sizes it from the add-on plan and the formation.
CELERY_BROKER_POOL_LIMIT = env_int("CELERY_BROKER_POOL_LIMIT", 10)
CELERY_BROKER_CONNECTION_TIMEOUT = 5
if BROKER_KIND in {"redis", "rediss"}:
    # A message whose worker vanished comes back after this many seconds; jobs
    # take well under it. The worker also requeues unfinished jobs when it starts.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
BROKER_DATABASE_POOL_SIZE = env_int("BROKER_DATABASE_POOL_SIZE", 0)
if (
    BROKER_KIND == "database"
    and BROKER_DATABASE_POOL_SIZE > 0
    and "postgresql" in CELERY_BROKER_URL
):
    # kombu passes transport options to SQLAlchemy's create_engine: a fixed pool
    # per process instead of its default 5 + 10 overflow.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "pool_size": BROKER_DATABASE_POOL_SIZE,
        "max_overflow": 0,
    }
if BROKER_KIND == "rediss":
    # Heroku Redis serves TLS with a self-signed certificate.
    CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": "none"}

# Job state lives in the Job table, not in a result backend.
CELERY_TASK_IGNORE_RESULT = True
# Acknowledge after the work, so a worker lost mid-job gives the message back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# `auto` (the roles' default): bin/dyno sizes it from the dyno's memory before it starts
# the worker; a process it did not start (release phase, one-off) runs no pool.
CELERY_WORKER_CONCURRENCY = env_int("CELERY_CONCURRENCY", 2, auto=2)
# Recycle children before they grow: the whole dyno must fit 512 MB.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_MAX_TASKS_PER_CHILD", 1000)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_MAX_MEMORY_PER_CHILD_KB", 150_000)
# Celery's Django fixup closes a child's database connections before and after every
# task unless this is set, then only every 2 x this many (celery/fixups/django.py,
# close_database); a new connection per job was 6% of a child's time on SQLite, and a
# TCP and TLS handshake each on PostgreSQL. jobs.worker keeps them the Django way instead:
# closed when unusable or older than their age, as after each request.
CELERY_DB_REUSE_MAX = CELERY_WORKER_MAX_TASKS_PER_CHILD or 1000
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

# --- Scheduled tasks (Celery beat) -------------------------------------------------
# The one place to add a periodic task: an entry of CELERY_BEAT_SCHEDULE, in
# Celery's format ("task" is a registered task name, "schedule" a number of
# seconds, a timedelta or a celery.schedules.crontab), plus "catch_up": run a
# tick that fell due while no scheduler ran once one is back (True), or
# record it as skipped (False, the default). README "Scheduled tasks".
SCHEDULE_DEMO_SECONDS = env_int("SCHEDULE_DEMO_SECONDS", 60)
SCHEDULE_DEMO_WORK_MS = env_int("SCHEDULE_DEMO_WORK_MS", 200)
CELERY_BEAT_SCHEDULE = {
    "demo": {
        "task": "scheduling.demo",
        "schedule": timedelta(seconds=SCHEDULE_DEMO_SECONDS),
        "catch_up": False,
    },
    "prune finished jobs": {
        "task": "jobs.prune",
        "schedule": crontab(minute="*/15"),
        "catch_up": True,
    },
}
# Beat runs inside the Celery worker (scheduling/worker.py): on in one-dyno
# mode and on split mode's worker dynos. Off when Heroku Scheduler runs
# `manage.py dispatch_due_ticks` instead (an eco dyno sleeps, and beat with it).
SCHEDULE_BEAT = env_bool("SCHEDULE_BEAT", True)
CELERY_BEAT_SCHEDULER = "scheduling.scheduler:ExactlyOnceScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 1  # seconds; also how soon a due tick is seen
CELERY_TIMEZONE = "UTC"
# A tick dispatched up to this late is on time (a restart, a deploy); one
# older fell due while no scheduler ran: caught up or skipped.
SCHEDULE_GRACE_SECONDS = env_int("SCHEDULE_GRACE_SECONDS", 60)
SCHEDULE_CATCH_UP_LIMIT = env_int("SCHEDULE_CATCH_UP_LIMIT", 100)
# A dispatched tick no worker started after this long lost its message: send it again.
SCHEDULE_REDISPATCH_AFTER_SECONDS = env_int("SCHEDULE_REDISPATCH_AFTER_SECONDS", 120)
# A run not finished after this long had its worker die (periodic tasks must be shorter).
SCHEDULE_RUN_LEASE_SECONDS = env_int("SCHEDULE_RUN_LEASE_SECONDS", 900)
SCHEDULE_HISTORY_HOURS = env_int("SCHEDULE_HISTORY_HOURS", 24)

# Task events (`celery worker -E`) feed monitors such as Flower. Events go
# through a fanout exchange, which the database broker does not have; and no
# monitor runs in the dyno. Off unless asked for, on a Redis broker.
CELERY_TASK_EVENTS = env_bool("CELERY_TASK_EVENTS", False)
if CELERY_TASK_EVENTS and BROKER_KIND == "database":
    raise ImproperlyConfigured(
        "CELERY_TASK_EVENTS=true needs a broker that can broadcast (Redis: set REDIS_URL or "
        "CELERY_BROKER_URL); the database broker cannot carry Celery's events."
    )
CELERY_WORKER_SEND_TASK_EVENTS = CELERY_TASK_EVENTS
CELERY_TASK_SEND_SENT_EVENT = CELERY_TASK_EVENTS
# --- Limits for a public app (docs/architecture.md, "Limits") ----------------------
# Backpressure: queued + running jobs, as a count and as estimated work (seconds
# the dyno's Celery children need to drain it; see jobs.admission). Past either,
# job creation answers 429. docs/benchmarks.md measured about 100 empty jobs/s
# and, for the default job (100 ms wait, 20,000 hash rounds), 2 children run
# about 15 jobs/s: 5,000 jobs and 300 s are a few minutes of work.
JOBS_MAX_BACKLOG = env_int("JOBS_MAX_BACKLOG", 5000)
JOBS_MAX_BACKLOG_SECONDS = env_int("JOBS_MAX_BACKLOG_SECONDS", 300)
# The same per client address, so one client cannot fill the whole backlog.
JOBS_CLIENT_MAX_BACKLOG = env_int("JOBS_CLIENT_MAX_BACKLOG", 1000)
JOBS_CLIENT_MAX_BACKLOG_SECONDS = env_int("JOBS_CLIENT_MAX_BACKLOG_SECONDS", 120)
# Accepted job-creating requests per client address per minute.
JOBS_CLIENT_CREATES_PER_MINUTE = env_int("JOBS_CLIENT_CREATES_PER_MINUTE", 120)
# Jobs of one client running at once, over every worker: one child is always
# left for the other clients (fair dispatch, jobs.tasks).
JOBS_CLIENT_MAX_RUNNING = env_int("JOBS_CLIENT_MAX_RUNNING", max(1, CELERY_WORKER_CONCURRENCY - 1))
# Proxies in front of the app that write the connecting address into
# X-Forwarded-For (Heroku's router appends it, Dokku's nginx sets it): the
# client's address is the entry that many places from the end, and anything
# before it is the client's own writing, never trusted (jobs.clients). 1 fits
# Heroku and Dokku; where clients connect directly (the local target) it must
# be 0, or a client could name itself.
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 1)

# Storage: finished jobs are kept this long and at most this many; delivered
# broker messages (the database broker) this long and at most this many.
# jobs.retention prunes (task `jobs.prune`, command `prune_jobs`, and at job
# creation when the job table is full). The row bounds must fit the budget
# (checked below); Heroku Postgres essential-0 holds 1 GB.
JOBS_KEEP_FINISHED = env_int("JOBS_KEEP_FINISHED", 20_000)
JOBS_KEEP_FINISHED_SECONDS = env_int("JOBS_KEEP_FINISHED_SECONDS", 24 * 3600)
BROKER_KEEP_DELIVERED = env_int("BROKER_KEEP_DELIVERED", 20_000)
BROKER_KEEP_DELIVERED_SECONDS = env_int("BROKER_KEEP_DELIVERED_SECONDS", 600)
DATABASE_BUDGET_MB = env_int("DATABASE_BUDGET_MB", 200)
# Maximum request body: a batch request is well under 1 KB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 16 * 1024)

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
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Every 4xx would be a warning line too, beside Gunicorn's access log
        # line: under a flood of 429s that doubles the log for nothing. 5xx stay.
        "django.request": {"level": "ERROR"},
    },
}
