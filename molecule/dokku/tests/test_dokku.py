"""Verify the Dokku target on the instance: both process layers, the proxy, jobs, data,
idempotence with proof, secrets, and bad input (run as extra ansible-playbook calls).

The instance shares the machine's network, so the tests reach nginx on 127.0.0.1:80 with
the app's Host header, exactly as a browser resolving the app's domain would.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.schedule import next_demo_run

APP = "double-boiler"
VHOST = "double-boiler.dokku.test"
INSTANCE = "double-boiler-dokku-vm"

SCENARIO_DIR = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", Path(__file__).parents[1]))
PROJECT_DIR = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3]))
INVENTORY = Path(os.environ.get("MOLECULE_INVENTORY_FILE", "")).parent


def dokku(host, *args: str, check: bool = True):
    result = host.run("dokku " + " ".join(shlex.quote(a) for a in args))
    if check:
        assert result.rc == 0, f"dokku {' '.join(args)}: rc={result.rc} {result.stderr}"
    return result


def request(method: str, path: str, body: dict | None = None, host_header: str = VHOST):
    """One request through nginx on port 80; returns (status, headers, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=30)
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Host": host_header, "Content-Type": "application/json"}
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        data = json.loads(raw)
    except ValueError:
        data = raw.decode(errors="replace")
    return response.status, dict(response.getheaders()), data


def unit_name(host, dyno: str = "web.1") -> str:
    """The stand-in's unit for the dyno's current container: old and new containers run side
    by side during a deploy, so units are named after the container (CONTAINER.<dyno>)."""
    cid = host.file(f"/home/dokku/{APP}/CONTAINER.{dyno}").content_string.strip()
    return f"dokku-{APP}.{dyno}.{cid[:12]}.service"


def web_unit(host) -> dict[str, str]:
    out = host.check_output(
        f"systemctl show {unit_name(host)} -p MainPID,ExecMainStartTimestampMonotonic,"
        "NRestarts,ActiveState"
    )
    return dict(line.split("=", 1) for line in out.splitlines())


def children(host, pid: int) -> list[tuple[int, str]]:
    out = host.run(f"ps -o pid=,args= --ppid {pid}").stdout
    rows = []
    for line in out.splitlines():
        child, _, args = line.strip().partition(" ")
        rows.append((int(child), args.strip()))
    return rows


def descendants(host, pid: int) -> list[tuple[int, str, int]]:
    """(pid, args, parent pid) for the whole tree under pid."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for child, args in children(host, parent):
            found.append((child, args, parent))
            todo.append(child)
    return found


def playbook(*args: str, inventory: Path | None = None) -> subprocess.CompletedProcess:
    command = [
        shutil.which("ansible-playbook") or "ansible-playbook",
        "-i",
        str(inventory or INVENTORY),
        *args,
    ]
    return subprocess.run(
        command, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=1200, check=False
    )


def recap(output: str) -> dict[str, int]:
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)  # Molecule makes Ansible use colours
    match = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", plain)
    assert match, f"no play recap in:\n{output[-3000:]}"
    names = ["ok", "changed", "unreachable", "failed"]
    return dict(zip(names, map(int, match.groups()), strict=True))


def secret(host) -> str:
    value = dokku(host, "config:get", APP, "DJANGO_SECRET_KEY").stdout.strip()
    assert len(value) >= 32
    return value


def builds(host) -> list[str]:
    path = f"/var/lib/dokku/data/standin/apps/{APP}/builds"
    return sorted(host.run(f"ls {path}").stdout.split())


def healthy() -> dict:
    status, _, data = request("GET", "/healthz")
    assert status == 200, data
    return data


# -- the running app ------------------------------------------------------------------------


def test_dokku_is_the_installed_standin(host):
    assert re.fullmatch(r"dokku version \d+\.\d+\.\d+\n", dokku(host, "version").stdout)
    for plugin in ("postgres", "redis"):
        assert dokku(host, "plugin:installed", plugin, check=False).rc == 0
    assert dokku(host, "apps:exists", APP, check=False).rc == 0
    missing = dokku(host, "apps:exists", "no-such-app", check=False)
    assert missing.rc == 20
    assert "App no-such-app does not exist" in missing.stderr


def test_web_unit_runs_the_outer_honcho_with_both_inner_processes(host):
    unit = web_unit(host)
    assert unit["ActiveState"] == "active"
    main_pid = int(unit["MainPID"])
    assert "bin/dyno" in host.file(f"/proc/{main_pid}/cmdline").content_string.replace("\0", " ")
    tree = descendants(host, main_pid)
    masters = [(pid, args) for pid, args, _ in tree if args.startswith("gunicorn: master")]
    assert len(masters) == 1, tree
    workers = [
        pid
        for pid, args, parent in tree
        if args.startswith("gunicorn: worker") and parent == masters[0][0]
    ]
    assert len(workers) == 2, tree  # WEB_CONCURRENCY=auto, sized for dokku_app_memory_mb=512
    titled = {pid for pid, args, _ in tree if "celeryd" in args and "MainProcess" in args}
    # A pool child forked a moment ago still carries its parent's title.
    celery_main = [pid for pid, _, parent in tree if pid in titled and parent not in titled]
    assert len(celery_main) == 1, tree
    pool = [
        pid for pid, args, parent in tree if "ForkPoolWorker" in args and parent == celery_main[0]
    ]
    assert len(pool) == 2, tree  # CELERY_CONCURRENCY=auto, likewise
    # Everything runs as herokuish's unprivileged user, like a Dokku container.
    users = {host.check_output(f"ps -o user= -p {pid}") for pid, _, _ in tree}
    assert users <= {"herokuishuser", "herokuis+"}, users


def test_healthz_is_green_through_the_proxy(host):
    data = healthy()
    assert data["status"] == "ok" and data["failing"] == []
    checks = data["checks"]
    assert checks["web"]["ok"] and "GeventWorker" in checks["web"]["worker_class"]
    assert checks["database"]["ok"] and checks["database"]["vendor"] == "postgresql"
    assert checks["broker"]["ok"] and checks["broker"]["transport"] == "redis"
    assert checks["workers"]["ok"] and checks["workers"]["count"] >= 1
    # nginx routes by Host header: an unknown name gets the catch-all server (444: closed).
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        request("GET", "/healthz", host_header="unknown.example")


def test_jobs_submitted_over_http_complete():
    status, _, created = request("POST", "/api/jobs/batch", {"count": 6, "io_wait_ms": 50})
    assert status == 202, created
    ids = created["ids"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status, _, data = request("GET", "/api/jobs?ids=" + ",".join(map(str, ids)))
        assert status == 200, data
        states = {job["id"]: job["status"] for job in data["jobs"]}
        if set(states.values()) == {"done"}:
            break
        time.sleep(1)
    assert set(states.values()) == {"done"}, states


def test_scheduled_ticks_happen_once_each_in_the_dyno(host):
    """The demo task (every 60 s by default) gets its next tick from the web container's beat."""
    assert healthy()["checks"]["scheduler"]["ok"] is True
    tree = descendants(host, int(web_unit(host)["MainPID"]))
    beats = {pid for pid, args, _ in tree if args.startswith("[celery beat]")}
    assert len(beats) == 1, tree  # one-dyno mode: beat embedded in the dyno's Celery worker

    def schedule() -> dict:
        status, _, data = request("GET", "/api/schedule?runs=20")
        assert status == 200, data
        return data

    run, _ = next_demo_run(schedule)
    assert run["dispatched_by"]["pid"] in beats


def test_database_url_is_the_linked_postgres_and_migrations_ran(host):
    config = json.loads(dokku(host, "config:export", "--format", "json", APP).stdout)
    dsn = dokku(host, "postgres:info", f"{APP}-db", "--dsn").stdout.strip()
    assert config["DATABASE_URL"] == dsn
    pattern = r"postgres://\w+:[0-9a-f]{32}@dokku-postgres-double-boiler-db:5432/\w+"
    assert re.fullmatch(pattern, dsn)
    assert dokku(host, "postgres:linked", f"{APP}-db", APP, check=False).rc == 0
    assert config["REDIS_URL"] == dokku(host, "redis:info", f"{APP}-redis", "--dsn").stdout.strip()
    plan = dokku(host, "run", APP, "python", "app/manage.py", "showmigrations", "--plan").stdout
    lines = [line for line in plan.splitlines() if line.startswith("[")]
    assert lines and all(line.startswith("[X]") for line in lines), plan


# -- idempotence, with proof ----------------------------------------------------------------


def service_passwords(host) -> list[str]:
    config = json.loads(dokku(host, "config:export", "--format", "json", APP).stdout)
    found = [re.search(r"//[^:]*:([^@]+)@", config[name]) for name in ("DATABASE_URL", "REDIS_URL")]
    assert all(found), config.keys()
    return [match.group(1) for match in found]


def test_second_converge_changes_nothing_and_never_shows_the_secret(host):
    key = secret(host)
    before = (web_unit(host), builds(host), dokku(host, "git:report", APP, "--git-sha").stdout)
    result = playbook("--diff", "-vvv", str(SCENARIO_DIR / "converge.yml"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert recap(output)["changed"] == 0
    after = (web_unit(host), builds(host), dokku(host, "git:report", APP, "--git-sha").stdout)
    assert after == before  # same web process (no restart), no new build, same commit
    assert secret(host) == key
    for value in [key, *service_passwords(host)]:
        assert value not in output


def test_secret_is_not_in_process_arguments_or_logs(host):
    key = secret(host)
    assert key not in host.check_output("ps -eo args")
    assert key not in host.run(f"journalctl -u {unit_name(host)} --no-pager").stdout
    assert key not in host.run("cat /var/log/nginx/*.log").stdout
    assert host.file(f"/home/dokku/{APP}/ENV").mode == 0o600


# -- bad input: clear errors, and the running release keeps serving ------------------------


def test_invalid_app_name_is_refused_before_any_change(host):
    before = web_unit(host)
    result = playbook(str(SCENARIO_DIR / "converge.yml"), "-e", "dokku_app_name=Not_Valid")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "dokku_app_name" in output and "Not_Valid" in output
    assert dokku(host, "apps:exists", "Not_Valid", check=False).rc != 0
    assert web_unit(host) == before
    healthy()


def test_unreachable_host_fails_clearly(host, tmp_path):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "dokku:\n  hosts:\n    ghost-vm:\n"
        "      ansible_connection: community.docker.docker\n"
        "      ansible_host: double-boiler-no-such-vm\n"
    )
    result = playbook(str(SCENARIO_DIR / "converge.yml"), inventory=inventory)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "UNREACHABLE" in output or "unreachable=1" in output.replace(" ", "")
    healthy()


def test_failed_release_task_fails_the_deploy_and_the_old_release_keeps_serving(host):
    before = web_unit(host)
    sha = dokku(host, "git:report", APP, "--git-sha").stdout.strip()
    with tempfile.TemporaryDirectory(prefix="double-boiler-bad-release-") as tmp:
        source = Path(tmp) / "src"
        subprocess.run(["git", "clone", "--quiet", str(PROJECT_DIR), str(source)], check=True)
        procfile = source / "Procfile"
        procfile.write_text(
            re.sub(
                r"^release:.*$",
                # Still the contract's migrate step (dokku_app checks it), but one that fails:
                # Django's CommandError "No installed app with label", exit 1.
                "release: python app/manage.py migrate --noinput no_such_app",
                procfile.read_text(),
                flags=re.MULTILINE,
            )
        )
        git = ["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@example.org"]
        subprocess.run([*git, "commit", "--quiet", "-am", "break the release task"], check=True)
        result = playbook(
            str(SCENARIO_DIR / "converge.yml"),
            "-e",
            f"dokku_app_source_dir={source}",
            "-e",
            f"dokku_app_archive_controller_path={tmp}/source.tar.gz",
            # Its own upload and deploy record on the host: the good ones stay as they are.
            "-e",
            "dokku_app_state_dir=/var/lib/double-boiler/dokku-bad-release",
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Execution of release task failed" in output, output[-5000:]
    assert recap(output)["failed"] == 1
    # Dokku moved its branch back and kept the running release.
    assert dokku(host, "git:report", APP, "--git-sha").stdout.strip() == sha
    assert web_unit(host) == before
    healthy()


# -- last: it restarts the dyno ---------------------------------------------------------------


def test_a_dying_inner_process_restarts_the_dyno_on_failure(host):
    # bin/dyno exits non-zero when an inner process dies; the unit's Restart=on-failure
    # (Docker's on-failure policy on Dokku) starts the dyno again.
    unit = web_unit(host)
    tree = descendants(host, int(unit["MainPID"]))
    master = next(pid for pid, args, _ in tree if args.startswith("gunicorn: master"))
    host.run(f"kill -KILL {master}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = web_unit(host)
        if now["ActiveState"] == "active" and int(now["NRestarts"]) > int(unit["NRestarts"]):
            break
        time.sleep(1)
    assert int(now["NRestarts"]) == int(unit["NRestarts"]) + 1, now
    assert now["MainPID"] != unit["MainPID"]
    while time.monotonic() < deadline:
        status, _, data = request("GET", "/healthz")
        if status == 200:
            break
        time.sleep(2)
    assert status == 200, data
