"""Another app through the same role: both layers up and a job run by its Celery worker."""

import json
import time
import urllib.error
import urllib.request

STATE_DIR = "/tmp/double-boiler-molecule-own-app"
URL = "http://127.0.0.1:5002/"


def call(path: str, data: dict | None = None) -> tuple[int, dict]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(URL + path, data=body, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def tree(host, pid: int) -> list[tuple[int, int, str]]:
    rows = [
        line.split(None, 2)
        for line in host.check_output("ps -ww -eo pid=,ppid=,args=").splitlines()
    ]
    processes = [(int(p), int(pp), args) for p, pp, args in rows]
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        for process in processes:
            if process[1] == parent:
                found.append(process)
                queue.append(process[0])
    return found


def outer_pid(host) -> int:
    return json.loads(host.file(f"{STATE_DIR}/dyno.pid").content_string)["pid"]


def test_it_is_the_minimal_app_that_runs(host):
    args = host.check_output(f"ps -o args= -p {outer_pid(host)}")
    assert args.endswith("bin/dyno")
    cwd = host.check_output(f"readlink /proc/{outer_pid(host)}/cwd")
    assert cwd.endswith("tests/apps/minimal")


def test_both_layers_are_up(host):
    processes = tree(host, outer_pid(host))
    # A master and WEB_CONCURRENCY=2 workers; a Celery main process and 2 pool children.
    assert len([args for _, _, args in processes if "gunicorn" in args]) == 3, processes
    assert len([args for _, _, args in processes if "celery" in args]) == 3, processes
    status, report = call("healthz")
    assert status == 200, report
    assert report["status"] == "ok"
    assert report["checks"]["web"]["worker_class"].endswith("GeventWorker")
    assert report["checks"]["workers"]["count"] == 1
    assert report["checks"]["broker"]["transport"] == "redis"


def test_a_job_runs_in_the_celery_worker(host):
    status, created = call("jobs", {"numbers": [1, 2, 39]})
    assert status == 202, created
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, job = call(f"jobs/{created['id']}")
        if job["done"]:
            break
        time.sleep(0.5)
    assert job["done"] and job["total"] == 42, job
    celery = [p for p, _, args in tree(host, outer_pid(host)) if "celery" in args]
    assert job["worker_pid"] in celery
