"""Gunicorn for the minimal app: gevent workers on the platform's PORT."""

import os

bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"  # noqa: S104
pythonpath = "src"
wsgi_app = "minimal.wsgi:application"
worker_class = "gevent"
workers = int(os.environ.get("WEB_CONCURRENCY", "auto").replace("auto", "2"))  # bin/dyno sizes it
graceful_timeout = 20
accesslog = "-"
control_socket_disable = True


def post_fork(server, worker):
    os.environ["WEB_WORKER_CLASS"] = f"{type(worker).__module__}.{type(worker).__name__}"
