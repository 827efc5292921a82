"""Gunicorn settings for the inner `web` process (see LocalProcfile).

gevent workers serve many requests each: while one request waits on I/O (the
database, the broker, an upstream) the worker serves others. Gunicorn's gevent
worker monkey-patches the standard library when it starts, before the app is
imported, so nothing in the app patches again.

GUNICORN_WORKER_CLASS=sync or gthread is the way out for an app whose packages
do not agree with gevent's patching (README: "When gevent does not fit").
"""

import os

bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"  # noqa: S104
pythonpath = "app"
wsgi_app = "doubleboiler.wsgi:application"

# gevent: many requests per worker; sync: one at a time; gthread: GUNICORN_THREADS at once.
WORKER_CLASSES = ("gevent", "sync", "gthread")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
if worker_class not in WORKER_CLASSES:
    raise SystemExit(
        f"GUNICORN_WORKER_CLASS is {worker_class!r}: set it to one of {', '.join(WORKER_CLASSES)}"
    )
# gthread: by default one thread per connection of the worker's database pool (below).
threads = 1
if worker_class == "gthread":
    threads = int(os.environ.get("GUNICORN_THREADS", os.environ.get("DATABASE_POOL_SIZE", "4")))
# bin/dyno resolves `auto` (sized from the dyno's memory) before it starts Gunicorn.
workers = int(os.environ.get("WEB_CONCURRENCY", "auto").replace("auto", "2"))
# Requests one worker holds open at once. Database work is bounded separately
# by the connection pool below.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "500"))
# A worker is recycled when it grows over its share of the dyno's memory (bin/dyno
# sets the cap from the memory limit): it finishes the requests it holds and exits,
# and the master starts a fresh one. 0: no cap.
max_worker_memory_mb = int(os.environ.get("GUNICORN_MAX_WORKER_MEMORY_MB", "0"))
# Not after a number of requests, unless asked (Gunicorn's own default, 0): the memory
# cap is the guard against a leak, and each recycle stalled the connections of the
# worker it replaced for about a second: recycling every 5,000 requests put 1.1 s in
# the p99 of the run it fell in, every 400 requests in every run (docs/benchmarks.md).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
MEMORY_CHECK_EVERY = 16  # requests; reading /proc/self/statm costs a few microseconds
# Platforms send SIGTERM and SIGKILL 30 s later; finish in-flight requests
# well inside that (bin/dyno waits DYNO_GRACE_SECONDS=25 before its own SIGKILL).
graceful_timeout = 20
timeout = 30
# Heroku's Router 2.0 keeps idle connections to dynos open 90 s
# (https://devcenter.heroku.com/articles/http-routing#keepalives): Gunicorn must
# keep them longer, so that the router, not Gunicorn, closes an idle one; else a
# request sent just as Gunicorn closes it fails (H13/H18). heroku/python-getting-started
# PR 261 chose 100 s for the same reason.
keepalive = 100

# No access log by default, as in Gunicorn's own default: Heroku's router logs every
# request (https://devcenter.heroku.com/articles/http-routing#heroku-router-log-format)
# and so does Dokku's nginx, into /var/log/nginx/<app>-access.log (dokku/dokku
# plugins/nginx-vhosts/nginx_vhosts.go, ComputedAccessLogPath). Formatting each line,
# and bin/dyno relaying it, took 13% of a gevent worker's time and 7% of the I/O-bound
# throughput (docs/benchmarks.md). GUNICORN_ACCESS_LOG=true logs them to stdout.
ACCESS_LOG_CHOICES = {"true": "-", "1": "-", "yes": "-", "false": None, "0": None, "no": None}
access_log_setting = os.environ.get("GUNICORN_ACCESS_LOG", "").strip().lower() or "false"
if access_log_setting not in ACCESS_LOG_CHOICES:
    raise SystemExit(f"GUNICORN_ACCESS_LOG is {access_log_setting!r}: set it to true or false")
accesslog = ACCESS_LOG_CHOICES[access_log_setting]
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms pid=%(p)s'

# Under gevent each greenlet would open its own PostgreSQL connection; a small
# psycopg pool per worker process bounds them (ignored for SQLite).
os.environ.setdefault("DATABASE_POOL_SIZE", "4")


def post_request(worker, req, environ, resp):
    if not max_worker_memory_mb or not worker.alive or worker.nr % MEMORY_CHECK_EVERY:
        return
    with open("/proc/self/statm") as statm:
        rss_mb = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20
    if rss_mb > max_worker_memory_mb:
        worker.log.warning(
            "Worker %s uses %s MB, over its %s MB (GUNICORN_MAX_WORKER_MEMORY_MB): recycling it",
            worker.pid,
            rss_mb,
            max_worker_memory_mb,
        )
        worker.alive = False


def post_fork(server, worker):
    # /healthz reports which worker class serves it.
    os.environ["WEB_WORKER_CLASS"] = f"{type(worker).__module__}.{type(worker).__name__}"


# Gunicorn's runtime control socket defaults to one path per user
# ($HOME/.gunicorn/gunicorn.ctl): several Gunicorns of one user on a host (a
# Dokku host's apps, local runs beside tests) would fight over it, and nothing
# in a dyno uses it.
control_socket_disable = True
