"""The local target, as a user sees it: both process layers, health, jobs, secret."""

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.schedule import next_demo_run

STATE_DIR = "/tmp/double-boiler-molecule-local"
URL = "http://127.0.0.1:5001/"
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3]))


def get_json(path: str, data: dict | None = None) -> tuple[int, dict, dict]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(URL + path, data=body, method="POST" if body else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.load(exc)


class Proc:
    def __init__(self, line: str) -> None:
        pid, ppid, self.args = line.split(None, 2)
        self.pid, self.ppid = int(pid), int(ppid)


def descendants(host, pid: int) -> list[Proc]:
    listing = host.check_output("ps -eo pid=,ppid=,args=")
    processes = [Proc(line) for line in listing.splitlines() if line.strip()]
    children: dict[int, list[Proc]] = {}
    for process in processes:
        children.setdefault(process.ppid, []).append(process)
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child.pid)
    return found


def command_line(host, pid: int) -> str:
    return host.check_output(f"ps -o args= -p {pid}")


@pytest.fixture(scope="module")
def outer_pid(host) -> int:
    return json.loads(host.file(f"{STATE_DIR}/dyno.pid").content_string)["pid"]


@pytest.fixture(scope="module")
def secret(host) -> str:
    return host.file(f"{STATE_DIR}/secret_key").content_string.strip()


def test_outer_layer_is_bin_dyno_running_honcho(host, outer_pid):
    assert command_line(host, outer_pid).endswith("bin/dyno")
    # honcho's manager gives each inner process a supervising child of its own
    assert len([p for p in descendants(host, outer_pid) if p.ppid == outer_pid]) == 2


def test_inner_web_is_gunicorn_master_with_gevent_workers(host, outer_pid):
    tree = descendants(host, outer_pid)
    masters = [p for p in tree if p.args.startswith("gunicorn: master")]
    assert len(masters) == 1
    workers = [
        p for p in tree if p.ppid == masters[0].pid and p.args.startswith("gunicorn: worker")
    ]
    # WEB_CONCURRENCY=auto: bin/dyno sized it for local_app_memory_mb, 512 MB by default.
    sizing = get_json("healthz")[2]["checks"]["web"]["sizing"]
    assert (sizing["memory_mb"], sizing["memory_source"], sizing["sized"]) == (
        512,
        "DYNO_MEMORY_MB",
        ["web", "celery"],
    )
    assert len(workers) == sizing["web"] == 2
    seen = set()
    for _ in range(20):
        status, headers, report = get_json("healthz")
        assert status == 200
        assert report["checks"]["web"]["worker_class"].endswith("GeventWorker")
        assert report["checks"]["web"]["gevent_patched"] is True
        seen.add(int(headers["X-Web-Pid"]))
    assert seen <= {w.pid for w in workers}


def test_inner_worker_is_celery_main_with_pool_children(host, outer_pid):
    tree = descendants(host, outer_pid)
    titled = {p.pid for p in tree if "MainProcess" in p.args and "celeryd" in p.args}
    # A pool child forked a moment ago still carries its parent's title.
    mains = [p for p in tree if p.pid in titled and p.ppid not in titled]
    assert len(mains) == 1
    pool = [p for p in tree if p.ppid == mains[0].pid and "ForkPoolWorker" in p.args]
    _, _, report = get_json("healthz")
    assert len(pool) == report["checks"]["web"]["sizing"]["celery"] == 2  # CELERY_CONCURRENCY=auto
    workers = report["checks"]["workers"]
    assert workers["count"] == 1
    assert sorted(next(iter(workers["pids"].values()))["pool"]) == sorted(p.pid for p in pool)


def test_healthz_green_on_every_layer():
    status, _, report = get_json("healthz")
    assert status == 200, report
    assert report["status"] == "ok"
    assert all(check["ok"] for check in report["checks"].values())
    assert report["checks"]["database"]["vendor"] == "sqlite"
    assert report["checks"]["broker"]["transport"] == "dbsql"  # the database as broker


def test_a_batch_of_jobs_completes(host, outer_pid):
    status, _, created = get_json("api/jobs/batch", {"count": 60, "io_wait_ms": 50})
    assert status == 202
    ids = created["ids"]
    assert len(ids) == 60
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, _, answer = get_json("api/jobs?ids=" + ",".join(map(str, ids)))
        if all(job["status"] == "done" for job in answer["jobs"]):
            break
        time.sleep(0.5)
    jobs = answer["jobs"]
    assert [job["status"] for job in jobs] == ["done"] * 60
    pool = {p.pid for p in descendants(host, outer_pid) if "ForkPoolWorker" in p.args}
    assert {job["worker_pid"] for job in jobs} <= pool
    assert all(job["attempts"] == 1 for job in jobs)


def test_secret_is_long_private_and_out_of_process_arguments(host, secret):
    secret_file = host.file(f"{STATE_DIR}/secret_key")
    assert secret_file.mode == 0o600
    assert len(secret) >= 50
    assert secret not in host.check_output("ps -eo args=")
    assert secret not in host.file(f"{STATE_DIR}/dyno.log").content_string


CANARY = "canary-7c1e0f3b9a"  # molecule.yml's local_app_secret_config


def environment_of(host, pid: int) -> dict[str, str]:
    raw = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def test_config_and_secret_config_reach_the_app_privately(host, outer_pid):
    env = environment_of(host, outer_pid)
    assert env["LOG_LEVEL"] == "INFO"
    assert env["MOLECULE_SECRET_CANARY"] == CANARY
    assert host.file(f"{STATE_DIR}/secret_env").mode == 0o600
    assert CANARY not in host.file(f"{STATE_DIR}/env").content_string
    assert CANARY not in host.check_output("ps -eo args=")


def converge(*extra: str) -> subprocess.CompletedProcess:
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            f"{ephemeral}/inventory",
            str(PROJECT / "deploy.yml"),
            "-vvv",
            "--diff",
            *extra,
        ],
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            "ANSIBLE_ROLES_PATH": str(PROJECT / "roles"),
        },
        timeout=300,
    )


def test_reconverge_changes_nothing_keeps_the_secret_and_never_prints_it(host, secret):
    run = converge()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "changed=0" in output
    assert secret not in output and CANARY not in output
    assert host.file(f"{STATE_DIR}/secret_key").content_string.strip() == secret


def test_rotating_the_secret_key_replaces_it_and_restarts_the_dyno(host, secret, outer_pid):
    run = converge("-e", "local_app_rotate_secret_key=true")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    rotated = host.file(f"{STATE_DIR}/secret_key").content_string.strip()
    assert rotated != secret and len(rotated) >= 50
    assert rotated not in output and secret not in output
    new_pid = json.loads(host.file(f"{STATE_DIR}/dyno.pid").content_string)["pid"]
    assert new_pid != outer_pid
    assert environment_of(host, new_pid)["DJANGO_SECRET_KEY"] == rotated
    status, _, report = get_json("healthz")
    assert status == 200, report


def schedule() -> dict:
    status, _, answer = get_json("api/schedule?runs=20")
    assert status == 200, answer
    return answer


def test_scheduled_ticks_happen_once_each_by_the_dynos_embedded_beat(host):
    """The demo task (every 60 s by default) gets its next tick, once, from this dyno."""
    # Read now: an earlier test (the secret rotation) restarts the dyno.
    outer_pid = json.loads(host.file(f"{STATE_DIR}/dyno.pid").content_string)["pid"]
    _, _, report = get_json("healthz")
    assert report["checks"]["scheduler"]["ok"] is True, report["checks"]["scheduler"]
    beat_pids = {p.pid for p in descendants(host, outer_pid) if p.args.startswith("[celery beat]")}
    assert len(beat_pids) == 1  # embedded in the Celery worker (SCHEDULE_BEAT)
    run, _ = next_demo_run(schedule)
    assert run["dispatched_by"]["pid"] in beat_pids
