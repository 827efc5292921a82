"""The mini benchmark: one command, a table on stdout, JSON and PNGs in a folder.

    python -m bench                  # full run (about 15 minutes on 2 cores)
    python -m bench --smoke          # tiny sizes: checks that it all works, measures nothing
    python -m bench --url http://127.0.0.1:5000 --sections jobs

Sections (--sections io,jobs,cold,sizing):
  io    the same I/O-bound Django view (one 100 ms upstream call) on Gunicorn gevent (the
        dyno itself: bin/dyno with this project's gunicorn.conf.py), Gunicorn sync and
        uvicorn (async view), same worker count, interleaved runs at 50/200/500 clients
  jobs  N jobs created over HTTP, time until all are done, with the database broker and a
        Redis broker (private dynos), each on SQLite and on PostgreSQL (a private server,
        --databases), and on the app at --url when it answers
  cold  bin/dyno start to /healthz 200
  sizing  a dyno left to size itself (WEB_CONCURRENCY=auto, CELERY_CONCURRENCY=auto) in a
        cgroup limited to each of --memory-limits: the counts it chose, its peak memory
        under the io load and a jobs load against the limit, and the throughput of both
Memory (PSS of each dyno's process tree) is sampled throughout io and jobs.
Every server runs on 127.0.0.1 on ports 7000-7999; the benchmark's own redis-server on the
first free port from 6380 (or --redis-url).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from . import report
from .app import BIN_DIR, ROOT, AppInstance, Server
from .ceiling import database_broker_url, run_ceiling
from .cgroup import MemoryCgroup
from .jobs import run_jobs
from .loadgen import have_wrk, run_load
from .postgres_server import binaries as postgres_binaries
from .postgres_server import create_database, postgres_server
from .procs import MemorySampler, Process, find_dyno_root, free_port, http_status, tree_memory
from .profile import classify, have_py_spy, start_recording
from .redis_server import start_redis

DEFAULT_OUT = ROOT / "bench" / "results"
SMOKE = {
    "runs": 1,
    "duration": 1.0,
    "clients": "4,8",
    "jobs": 20,
    "job_clients": 4,
    "cold_runs": 1,
    "settle": 0.5,
    "memory_limits": "512",
    "sizing_jobs": 20,
    "sizing_clients": 8,
    "held_clients": 8,
    "held_wait": 0.5,
}
# Redis databases: 0 and 12 for the jobs section's redis and pg+redis dynos (both run at
# once), 1 to 11 for cold starts, 13 and 14 for sizing, 15 for bare Celery's ceiling.
JOBS_PG_REDIS_DB = 12
SIZING_REDIS_DB = 13
CEILING_REDIS_DB = 15


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class LiveLine:
    """One status line rewritten in place on a terminal, throttled lines otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def update(self, text: str) -> None:
        now = time.monotonic()
        if self.tty:
            print(f"\r\033[K  {text}", end="", file=sys.stderr, flush=True)
        elif now - self.last >= 2:
            print(f"  {text}", file=sys.stderr, flush=True)
            self.last = now

    def end(self) -> None:
        if self.tty:
            print(file=sys.stderr, flush=True)


# ---- environment facts -------------------------------------------------------------


def machine() -> dict:
    meminfo = Path("/proc/meminfo")
    memory_kb = None
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    model = None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            None,
        )
    versions = {}
    for package in ("Django", "gunicorn", "gevent", "uvicorn", "uvloop", "celery", "kombu"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    for tool, argv in {"wrk": ["wrk", "--version"], "redis": ["redis-server", "--version"]}.items():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
            versions[tool] = (out.stdout or out.stderr).splitlines()[0].strip()[:80]
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory_kb / 1024 / 1024, 1) if memory_kb else None,
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "commit": commit,
    }


# ---- section 1: I/O-bound web throughput ---------------------------------------------


def wait_quiet(url: str, limit_ms: float, timeout: float = 90.0) -> None:
    """Wait until a single request is answered promptly again.

    A sync server keeps serving the connections a finished load run left in
    its accept queue (each costs a full upstream call); the next run must not
    start until that backlog is gone.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = time.perf_counter()
        status = http_status(url, timeout=timeout)
        if status == 200 and (time.perf_counter() - started) * 1000 < limit_ms:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{url} still slow after {timeout:.0f} s")


def start_upstream(args, work: Path) -> tuple[Process, int]:
    port = free_port()
    upstream = Process(
        "upstream",
        [sys.executable, "-m", "bench.upstream", "--port", str(port),
         "--delay-ms", str(args.upstream_ms)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        log_path=work / f"upstream-{port}.log",
    )  # fmt: skip
    return upstream, port


def section_io(args, work: Path, results: dict, samplers: dict) -> None:
    upstream, upstream_port = start_upstream(args, work)
    instance = AppInstance(
        "io",
        web_concurrency=args.workers,
        celery_concurrency=args.celery_concurrency,
        extra_env={
            # The held-requests runs create a few long jobs from the one benchmark client.
            **job_limits(args),
            "BENCH_UPSTREAM_URL": f"http://127.0.0.1:{upstream_port}/",
            # /bench/io is routed by the benchmark's settings only (bench/urls.py).
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "PYTHONPATH": str(ROOT),
        },
        workdir=work / "io",
    )
    servers: dict[str, Server] = {}
    paths = {
        "gevent": "/bench/io",
        "sync": "/bench/io",
        "asgi": "/bench/io-async",
        "asgi-lean": "/bench/io-async",
        "granian-asgi": "/bench/io-async",
        "granian-wsgi": "/bench/io",
    }
    try:
        progress(f"io: starting the upstream and the servers: {', '.join(args.servers)}")
        instance.prepare(collectstatic=False)
        uvicorn = [
            str(BIN_DIR / "uvicorn"), "doubleboiler.asgi:application", "--app-dir", "app",
            "--host", "127.0.0.1", "--port", "{port}", "--workers", str(args.workers),
            "--no-access-log",  # none of the servers logs each request (gunicorn.conf.py)
        ]  # fmt: skip
        granian = [
            str(BIN_DIR / "granian"), "--working-dir", "app", "--host", "127.0.0.1",
            "--port", "{port}", "--workers", str(args.workers), "--no-access-log",
        ]  # fmt: skip
        for name in args.servers:
            if name == "granian-asgi":
                servers[name] = instance.start(
                    name, [*granian, "--interface", "asgi", "doubleboiler.asgi:application"]
                )
            elif name == "granian-wsgi":
                # WSGI runs in granian's blocking threads, each holding one request while
                # it waits on the upstream: enough that 200 clients are not capped by them.
                servers[name] = instance.start(
                    name,
                    [*granian, "--interface", "wsgi", "--blocking-threads",
                     str(args.granian_threads), "doubleboiler.wsgi:application"],
                )  # fmt: skip
            elif name == "gevent":
                servers[name] = instance.start_dyno("gevent-dyno")
            elif name == "sync":
                servers[name] = instance.start(
                    "gunicorn-sync",
                    [str(BIN_DIR / "gunicorn"), "--config", "gunicorn.conf.py",
                     "--worker-class", "sync"],
                )  # fmt: skip
            elif name == "asgi":
                servers[name] = instance.start("uvicorn", uvicorn)
            elif name == "asgi-lean":
                servers[name] = instance.start(
                    "uvicorn-lean",
                    uvicorn,
                    DJANGO_SETTINGS_MODULE="bench.asgi_lean_settings",
                    PYTHONPATH=str(ROOT),
                )
        if "gevent" in servers:
            samplers["gevent dyno (io)"] = MemorySampler(servers["gevent"].pid)
            servers["gevent"].wait_healthy(timeout=90)
        for name, server in servers.items():
            server.process.wait_http(server.url + paths[name], timeout=60)
        for name, server in servers.items():
            progress(f"io: {name} ready on {server.url} (pid {server.pid})")
        # Warm each server (imports, first connections), untimed.
        for name, server in servers.items():
            run_load(server.url + paths[name], min(50, max(args.clients)), 1, 30, work, args.tool)
        runs = []
        order = list(servers)
        total = len(args.clients) * args.runs * len(order)
        step = 0
        memory_mark = samplers.get("gevent dyno (io)")
        if memory_mark:
            memory_mark.mark("io load")
        for clients in args.clients:
            for rep in range(args.runs):
                # Rotate who goes first so no server always runs right after another.
                rotated = order[rep % len(order) :] + order[: rep % len(order)]
                for name in rotated:
                    step += 1
                    url = servers[name].url + paths[name]
                    wait_quiet(url, limit_ms=args.upstream_ms * 3 + 200)
                    before = tree_memory(servers[name].pid).mb
                    result = run_load(url, clients, args.duration, args.timeout, work, args.tool)
                    after = tree_memory(servers[name].pid).mb
                    record = {
                        "server": name,
                        "rep": rep,
                        **result.as_dict(),
                        "tree_mb_before": round(before, 1),
                        "tree_mb_after": round(after, 1),
                    }
                    runs.append(record)
                    progress(
                        f"io [{step}/{total}] {name:6} c={clients:<4} rep {rep + 1}/{args.runs}: "
                        f"{result.rps:8,.0f} req/s  p50 {report.fmt(result.p50_ms)} ms  "
                        f"p99 {report.fmt(result.p99_ms)} ms  errors {result.errors}"
                    )
        if memory_mark:
            memory_mark.mark("io done")
        held = held_requests(args, servers, paths, order, work) if args.held_clients else []
        summary, ratios = report.summarize_io(runs)
        results["io"] = {
            "tool": runs[0]["tool"] if runs else None,
            "runs": runs,
            "summary": summary,
            "ratios": ratios,
            "held": held,
            "held_clients": args.held_clients,
            "held_wait_s": args.held_wait,
            "servers": {
                name: {"pid": s.pid, "port": s.port, "path": paths[name]}
                for name, s in servers.items()
            },
        }
    finally:
        for name, server in servers.items():
            code = server.stop()
            if name == "gevent" and "gevent dyno (io)" in samplers:
                samplers["gevent dyno (io)"].stop()
            progress(f"io: stopped {name} (exit {code})")
        upstream.stop()
        instance.cleanup()


def create_job(url: str, io_wait_ms: int) -> int:
    request = urllib.request.Request(  # noqa: S310 (loopback URLs we built)
        url + "/api/jobs",
        data=json.dumps({"io_wait_ms": io_wait_ms}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        return json.load(response)["id"]


def held_requests(
    args, servers: dict[str, Server], paths: dict[str, str], order: list[str], work: Path
) -> list[dict]:
    """Long-polls: each client holds `GET /api/jobs/<id>?wait=N` on a job still running.

    The same closed loop as the I/O runs, but what each request waits for is the app's
    own long-poll (app/jobs/waiting.py), not an upstream: a server holds as many at once
    as it has greenlets (gevent), threads (granian WSGI, and asgiref's for the sync view
    under ASGI) or processes (sync). The gevent dyno's Celery runs the jobs; the other
    servers read the same database.
    """
    rows = []
    for name in order:
        # A sync server still serves the connections the last io run left queued.
        wait_quiet(servers[name].url + paths[name], args.upstream_ms * 3 + 200)
        # 30 s of work: still running when this 10 s run ends.
        job = create_job(servers["gevent"].url, io_wait_ms=30_000)
        url = f"{servers[name].url}/api/jobs/{job}?wait={args.held_wait:g}"
        result = run_load(url, args.held_clients, args.duration, args.timeout, work, args.tool)
        rows.append({"server": name, **result.as_dict()})
        progress(
            f"io held requests {name:6} c={args.held_clients}: {result.rps:,.1f} answered/s "
            f"(at most {args.held_clients / args.held_wait:,.0f}), p50 "
            f"{report.fmt(result.p50_ms)} ms, p99 {report.fmt(result.p99_ms)} ms, "
            f"errors {result.errors}"
        )
    return rows


# ---- section 2: jobs end to end -------------------------------------------------------


def job_limits(args) -> dict[str, str]:
    """Per-client limits that let the benchmark's one client do its run.

    The app limits each client address (docs/architecture.md, "Limits"): its
    creation rate, its backlog and its running jobs. The benchmark is one
    client creating --jobs jobs as fast as it can, to measure the pipeline,
    so its private dynos get limits above what it sends. An app at --url keeps
    its own limits: its jobs row counts the 429s as create errors.
    """
    jobs = str(max(args.jobs, 1000))
    return {
        "JOBS_CLIENT_CREATES_PER_MINUTE": str(max(args.jobs * 10, 1000)),
        "JOBS_CLIENT_MAX_BACKLOG": jobs,
        "JOBS_MAX_BACKLOG": jobs,
        "JOBS_CLIENT_MAX_BACKLOG_SECONDS": "100000",
        "JOBS_MAX_BACKLOG_SECONDS": "100000",
        "JOBS_CLIENT_MAX_RUNNING": str(args.celery_concurrency),
    }


def one_jobs_run(args, url: str, label: str) -> dict:
    line = LiveLine()

    def show(created: int, finished: int, total: int) -> None:
        line.update(f"{label}: created {created}/{total}, finished {finished}")

    try:
        result = asyncio.run(
            run_jobs(
                url,
                jobs=args.jobs,
                clients=args.job_clients,
                batch=args.job_batch,
                io_wait_ms=args.job_io_ms,
                cpu_iterations=args.job_cpu,
                timeout=args.job_timeout,
                progress=show,
            )
        )
    finally:
        line.end()
    return result.as_dict()


def settle_then_measure(pid: int, settle: float) -> tuple[float, int]:
    """Idle memory: median of a few samples after the dyno has settled."""
    time.sleep(settle)
    samples = []
    for _ in range(4):
        memory = tree_memory(pid)
        samples.append((memory.mb, memory.processes))
        time.sleep(0.25)
    return statistics.median(mb for mb, _ in samples), max(n for _, n in samples)


def jobs_targets(
    args, redis_url: str | None, postgres_url: str | None, notes: list[str]
) -> dict[str, tuple[str | None, str | None]]:
    """Target key -> (database URL, broker URL); None: SQLite, and the database as broker.

    Creates each PostgreSQL target's own database on the server at postgres_url.
    Keys: db and redis (a SQLite database, its own or a Redis broker), pg and
    pg+redis (the same on PostgreSQL, what Heroku and Dokku run).
    """
    if "redis" in args.brokers and not redis_url:
        notes.append("no Redis available: the Redis broker was skipped")
    if "postgresql" in args.databases and not postgres_url:
        notes.append("PostgreSQL is not installed (apt-get install postgresql): skipped")
    targets: dict[str, tuple[str | None, str | None]] = {}
    for database, prefix in (("sqlite", ""), ("postgresql", "pg")):
        if database not in args.databases or (prefix and not postgres_url):
            continue
        if "db" in args.brokers:
            name = prefix or "db"
            targets[name] = (create_database(postgres_url, "jobs_pg") if prefix else None, None)
        if "redis" in args.brokers and redis_url:
            name = f"{prefix}+redis" if prefix else "redis"
            number = JOBS_PG_REDIS_DB if prefix else 0
            database_url = create_database(postgres_url, "jobs_pg_redis") if prefix else None
            targets[name] = (database_url, redis_db(redis_url, number))
    return targets


def section_jobs(
    args, work: Path, results: dict, samplers: dict, redis_url: str | None,
    postgres_url: str | None,
) -> None:  # fmt: skip
    notes: list[str] = []
    targets_urls = jobs_targets(args, redis_url, postgres_url, notes)
    instances: list[AppInstance] = []
    dynos: dict[str, Server] = {}
    idle: dict[str, tuple[float, int]] = {}
    runs: list[dict] = []
    try:
        for broker, (database_url, broker_url) in targets_urls.items():
            instance = AppInstance(
                f"jobs-{broker}",
                broker_url=broker_url,
                web_concurrency=args.workers,
                celery_concurrency=args.celery_concurrency,
                extra_env=job_limits(args),
                workdir=work / f"jobs-{broker.replace('+', '-')}",
                database_url=database_url,
            )
            instances.append(instance)
            instance.prepare(collectstatic=False)
            dyno = instance.start_dyno(f"dyno-{broker}")
            label = f"dyno, {broker} broker"
            samplers[label] = MemorySampler(dyno.pid)
            seconds = dyno.wait_healthy(timeout=90)
            progress(f"jobs: {label} healthy after {seconds:.2f} s on {dyno.url}")
            dynos[broker] = dyno
        for broker, dyno in dynos.items():
            idle[broker] = settle_then_measure(dyno.pid, args.settle)
            samplers[f"dyno, {broker} broker"].mark("idle")

        deployed = None
        if args.url and http_status(args.url.rstrip("/") + "/healthz") == 200:
            deployed = args.url.rstrip("/")
            progress(f"jobs: the app at {deployed} is healthy: it gets runs too")
            port = urlsplit(deployed).port or 80
            root = (
                find_dyno_root(port)
                if urlsplit(deployed).hostname in ("127.0.0.1", "localhost")
                else None
            )
            if root:
                samplers["deployed app"] = MemorySampler(root)
                idle["deployed"] = settle_then_measure(root, 0)
            else:
                notes.append(
                    f"memory of the app at {deployed} not measured: no bin/dyno found for it"
                )
        elif args.url:
            notes.append(f"the app at {args.url} did not answer /healthz 200: not measured")

        targets = {f"dyno, {b} broker": d.url for b, d in dynos.items()}
        if deployed:
            targets[f"deployed ({deployed})"] = deployed
        for rep in range(args.runs):
            for label, url in list(targets.items()):
                deployed_target = label.startswith("deployed")
                sampler = samplers.get("deployed app" if deployed_target else label)
                if sampler:
                    sampler.mark(f"run {rep + 1}")
                try:
                    result = one_jobs_run(args, url, f"jobs {label} rep {rep + 1}/{args.runs}")
                except Exception as exc:
                    if not deployed_target:
                        raise
                    # Someone else's app may be redeployed under us: note it, go on.
                    notes.append(f"{label}: run {rep + 1} failed ({exc}); no more runs on it")
                    progress(notes[-1])
                    del targets[label]
                    continue
                runs.append({"target": label, "rep": rep, **result})
                progress(
                    f"jobs {label} rep {rep + 1}/{args.runs}: "
                    f"{result['jobs_per_s']:,.0f} jobs/s done, "
                    f"{result['created_per_s']:,.0f} created/s, p50 {result['p50_ms']:,.0f} ms, "
                    f"p99 {result['p99_ms']:,.0f} ms, {result['failed']} failed"
                )
        profiles = {}
        if args.profile and have_py_spy():
            for broker, dyno in dynos.items():
                profiles[broker] = profiled_run(args, dyno, broker, Path(args.out))
        elif args.profile:
            notes.append("py-spy is not installed: no profile (pip install py-spy)")
        # The ceilings run alone: four idle dynos polling their brokers took about half of it.
        stop_jobs_dynos(dynos, samplers)
        ceiling = []
        # Bare Celery on each broker, same settings, an empty task (bench/ceiling.py);
        # pg+redis shares the redis one.
        ceiling_urls = {}
        if "db" in targets_urls:
            ceiling_urls["db"] = database_broker_url(f"sqlite:///{work / 'ceiling-db.sqlite3'}")
        if "redis" in targets_urls or "pg+redis" in targets_urls:
            ceiling_urls["redis"] = redis_db(redis_url, CEILING_REDIS_DB)
        if "pg" in targets_urls:
            ceiling_urls["pg"] = database_broker_url(create_database(postgres_url, "ceiling_pg"))
        for broker, url in ceiling_urls.items():
            for rep in range(args.runs):
                result = run_ceiling(url, args.jobs, args.celery_concurrency, work)
                ceiling.append({"broker": broker, "rep": rep, **result})
                progress(
                    f"jobs: bare Celery on the {broker} broker drained {args.jobs} empty tasks "
                    f"at {result['tasks_per_s']:,.0f}/s (rep {rep + 1}/{args.runs})"
                )
        results["jobs"] = {
            "runs": runs,
            "summary": report.summarize_jobs(runs),
            "ceiling": report.summarize_ceiling(ceiling),
            "ceiling_runs": ceiling,
            "profiles": profiles,
            "notes": notes,
        }
        results.setdefault("memory_idle", {}).update(
            {k: {"mb": round(mb, 1), "processes": n} for k, (mb, n) in idle.items()}
        )
    finally:
        stop_jobs_dynos(dynos, samplers)
        if "deployed app" in samplers:
            samplers["deployed app"].stop()
        for instance in instances:
            instance.cleanup()


def stop_jobs_dynos(dynos: dict[str, Server], samplers: dict) -> None:
    while dynos:
        broker, dyno = dynos.popitem()
        code = dyno.stop()
        samplers[f"dyno, {broker} broker"].stop()
        progress(f"jobs: stopped the {broker}-broker dyno (exit {code})")


def profiled_run(args, dyno: Server, broker: str, out: Path) -> dict:
    """One more jobs run, not counted above, with py-spy sampling the dyno's whole tree.

    The raw stacks stay in the results folder (`profile-<broker>.raw`, py-spy's
    collapsed format: one stack and its sample count a line) for a closer look.
    """
    raw = out / f"profile-{broker}.raw"
    # Stopped with SIGINT (py-spy then writes what it sampled) when the run is over.
    spy = start_recording(dyno.pid, args.job_timeout, raw)
    try:
        time.sleep(1)  # py-spy attaches to every process first
        sampling = time.perf_counter()
        result = one_jobs_run(args, dyno.url, f"jobs profiled run, {broker} broker")
        run_seconds = time.perf_counter() - sampling
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
        sampled = time.perf_counter() - sampling + 1
    profile = classify(raw.read_text()) if raw.exists() else {"samples": 0, "stages": []}
    if not profile["samples"]:
        progress(f"jobs: py-spy sampled nothing of the {broker}-broker dyno (may it ptrace?)")
    profile.update(
        jobs_per_s=result["jobs_per_s"],
        sampled_seconds=round(sampled, 1),
        run_seconds=round(run_seconds, 1),
    )
    progress(
        f"jobs: profiled run on the {broker} broker, {result['jobs_per_s']:,.0f} jobs/s, "
        f"{profile['samples']:,} samples"
    )
    return profile


def redis_db(url: str, number: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{number}"))


# ---- section 4: cold start ----------------------------------------------------------------


def section_cold(args, work: Path, results: dict, redis_url: str | None) -> None:
    brokers = {"db": None}
    if "redis" in args.brokers and redis_url:
        brokers["redis"] = redis_url
    if "db" not in args.brokers:
        brokers.pop("db")
    runs = []
    for rep in range(args.cold_runs):
        for broker, broker_url in brokers.items():
            instance = AppInstance(
                f"cold-{broker}",
                # A Redis database per cold start: no message left by an earlier
                # dyno reaches this one.
                broker_url=redis_db(broker_url, 1 + rep) if broker_url else None,
                web_concurrency=args.workers,
                celery_concurrency=args.celery_concurrency,
                workdir=work / f"cold-{broker}-{rep}",
            )
            try:
                instance.prepare(collectstatic=False)
                dyno = instance.start_dyno(f"cold-{broker}")
                seconds = dyno.wait_healthy(timeout=120)
                mb, processes = settle_then_measure(dyno.pid, args.settle)
                runs.append(
                    {"broker": broker, "rep": rep, "seconds": round(seconds, 3),
                     "idle_mb": round(mb, 1), "processes": processes}
                )  # fmt: skip
                progress(
                    f"cold [{broker} rep {rep + 1}/{args.cold_runs}]: "
                    f"healthy after {seconds:.2f} s, "
                    f"idle {mb:.0f} MB in {processes} processes"
                )
            finally:
                instance.cleanup()
    summary = []
    for broker in brokers:
        values = [r["seconds"] for r in runs if r["broker"] == broker]
        if values:
            summary.append(
                {
                    "broker": broker,
                    "median_s": statistics.median(values),
                    "min_s": min(values),
                    "max_s": max(values),
                    "idle_mb": statistics.median(
                        r["idle_mb"] for r in runs if r["broker"] == broker
                    ),
                }
            )
    results["cold_start"] = {"runs": runs, "summary": summary}


# ---- section 5: sizing from the memory limit ------------------------------------------------


def healthz(url: str) -> dict:
    with urllib.request.urlopen(url + "/healthz", timeout=10) as response:  # noqa: S310 (loopback)
        return json.load(response)


def recycled(log: Path) -> dict[str, int]:
    """How many web workers and Celery children were replaced over their memory caps."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return {
        "web": text.count("(GUNICORN_MAX_WORKER_MEMORY_MB): recycling it"),
        # billiard's MAXMEM_USED_FMT
        "celery": text.count("child process exiting after exceeding memory limit"),
    }


def section_sizing(args, work: Path, results: dict, redis_url: str | None) -> None:
    rows: list[dict] = []
    notes: list[str] = []
    upstream, upstream_port = start_upstream(args, work)
    jobs_args = argparse.Namespace(
        **{**vars(args), "jobs": args.sizing_jobs, "job_io_ms": args.sizing_job_io_ms,
           "job_cpu": 0, "job_batch": 1}
    )  # fmt: skip
    try:
        for index, limit_mb in enumerate(args.memory_limits):
            try:
                group = MemoryCgroup.create(
                    f"double-boiler-bench-{os.getpid()}-{limit_mb}", limit_mb
                )
            except OSError as exc:
                notes.append(f"no {limit_mb} MB cgroup ({exc}): the sizing section was skipped")
                progress(notes[-1])
                break
            instance = AppInstance(
                f"sizing-{limit_mb}",
                broker_url=redis_db(redis_url, SIZING_REDIS_DB + index) if redis_url else None,
                extra_env={
                    **job_limits(jobs_args),
                    # Whatever the dyno sized: the benchmark is one client.
                    "JOBS_CLIENT_MAX_RUNNING": "1000",
                    "BENCH_UPSTREAM_URL": f"http://127.0.0.1:{upstream_port}/",
                    "DJANGO_SETTINGS_MODULE": "bench.settings",
                    "PYTHONPATH": str(ROOT),
                },
                workdir=work / f"sizing-{limit_mb}",
            )
            dyno = None
            sampler = None
            try:
                instance.prepare(collectstatic=False)
                dyno = instance.start(
                    f"sizing-{limit_mb}",
                    group.wrap([sys.executable, str(ROOT / "bin" / "dyno")]),
                    WEB_CONCURRENCY="auto",
                    CELERY_CONCURRENCY="auto",
                )
                sampler = MemorySampler(dyno.pid)
                dyno.wait_healthy(timeout=120)
                sizing = healthz(dyno.url)["checks"]["web"]["sizing"]
                idle_mb, processes = settle_then_measure(dyno.pid, args.settle)
                load_started = sampler.mark("load")
                io = run_load(
                    dyno.url + "/bench/io", args.sizing_clients, args.duration, args.timeout,
                    work, args.tool,
                )  # fmt: skip
                jobs = one_jobs_run(jobs_args, dyno.url, f"sizing {limit_mb} MB jobs")
                peak = sampler.peak_between(load_started, float("inf"))
                row = {
                    "limit_mb": limit_mb,
                    "broker": "redis" if redis_url else "db",
                    "web": sizing["web"],
                    "celery": sizing["celery"],
                    "memory_source": sizing["memory_source"],
                    "web_cap_mb": sizing["web_worker_cap_mb"],
                    "celery_cap_mb": sizing["celery_child_cap_mb"],
                    "idle_mb": round(idle_mb, 1),
                    "peak_mb": round(peak, 1) if peak else None,
                    "processes": max(processes, max(n for _, _, n, _ in sampler.samples)),
                    "cgroup_peak_mb": group.peak_mb(),
                    "oom_kills": group.oom_kills(),
                    "io_rps": io.rps,
                    "io_p99_ms": io.p99_ms,
                    "io_errors": io.errors,
                    "jobs_per_s": jobs["jobs_per_s"],
                    "jobs_failed": jobs["failed"],
                    "recycled": recycled(dyno.process.log_path),
                }
                rows.append(row)
                progress(
                    f"sizing {limit_mb} MB: {row['web']} web + {row['celery']} Celery, "
                    f"peak {report.fmt(row['peak_mb'])} MB "
                    f"({100 * (row['peak_mb'] or 0) / limit_mb:.0f}%), "
                    f"io {io.rps:,.0f} req/s, jobs {jobs['jobs_per_s']:,.1f}/s"
                )
            finally:
                if dyno is not None:
                    dyno.stop()
                if sampler is not None:
                    sampler.stop()
                instance.cleanup()
                group.remove()
    finally:
        upstream.stop()
    results["sizing"] = {
        "rows": rows,
        "notes": notes,
        "clients": args.sizing_clients,
        "jobs": args.sizing_jobs,
        "job_io_ms": args.sizing_job_io_ms,
        "target": 0.8,
    }


# ---- memory summary -----------------------------------------------------------------------


def memory_summary(results: dict, samplers: dict[str, MemorySampler]) -> None:
    rows = []
    timelines = []
    kinds = set()
    idle = results.get("memory_idle", {})
    cold_runs = results.get("cold_start", {}).get("runs", [])
    for cold in results.get("cold_start", {}).get("summary", []):
        processes = max(r["processes"] for r in cold_runs if r["broker"] == cold["broker"])
        rows.append(
            {"dyno": f"dyno, {cold['broker']} broker", "phase": "idle after cold start",
             "mb": cold["idle_mb"], "processes": processes}
        )  # fmt: skip
    for label, sampler in samplers.items():
        if not sampler.samples:
            continue
        kinds.add(sampler.kind)
        key = label.removeprefix("dyno, ").removesuffix(" broker")
        if key in idle:
            rows.append({"dyno": label, "phase": "idle before load", **idle[key]})
        if label == "deployed app" and "deployed" in idle:
            rows.append({"dyno": label, "phase": "idle before load", **idle["deployed"]})
        start = next((t for t, m in sampler.marks if m in ("io load", "run 1")), 0.0)
        peak = sampler.peak_between(start, float("inf"))
        processes = max(n for _, _, n, _ in sampler.samples)
        phase = (
            "peak under I/O load (section 1)"
            if "(io)" in label
            else "peak during jobs runs (section 2)"
        )
        rows.append({"dyno": label, "phase": phase, "mb": round(peak, 1) if peak else None,
                     "processes": processes})  # fmt: skip
        timelines.append(
            {
                "dyno": label,
                "t": [round(t, 2) for t, *_ in sampler.samples],
                "mb": [round(mb, 1) for _, mb, _, _ in sampler.samples],
                "marks": sampler.marks,
            }
        )
    results["memory"] = {
        "kind": kinds.pop() if len(kinds) == 1 else "pss/rss",
        "limit_mb": report.DYNO_LIMIT_MB,
        "rows": rows,
        "timelines": timelines,
    }


# ---- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes for CI (numbers mean nothing)"
    )
    parser.add_argument("--url", default="http://127.0.0.1:5000",
                        help="the deployed app, also measured in the jobs section if it answers "
                             "(default %(default)s; '' to skip)")  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results folder (%(default)s)"
    )
    parser.add_argument("--sections", default="io,jobs,cold,sizing")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; figures are medians")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument(
        "--clients", default="50,200,500", help="concurrent clients, comma-separated"
    )
    parser.add_argument(
        "--servers",
        default="gevent,sync,asgi,asgi-lean,granian-asgi,granian-wsgi",
        help="web servers compared in the io section (%(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")
    parser.add_argument(
        "--held-clients",
        type=int,
        default=200,
        help="long-poll clients in the io section (0: none)",
    )
    parser.add_argument("--held-wait", type=float, default=2.0, help="each long-poll's ?wait=")
    parser.add_argument("--workers", type=int, default=2, help="web worker processes per server")
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--upstream-ms", type=float, default=100.0)
    parser.add_argument(
        "--granian-threads", type=int, default=100, help="blocking threads per granian WSGI worker"
    )
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="skip the jobs section's profiled run (py-spy)",
    )
    parser.add_argument("--job-clients", type=int, default=50)
    parser.add_argument("--job-batch", type=int, default=1, help="jobs per create request")
    parser.add_argument("--job-io-ms", type=int, default=0, help="each job's I/O wait")
    parser.add_argument("--job-cpu", type=int, default=0, help="each job's sha256 rounds")
    parser.add_argument("--job-timeout", type=float, default=600.0)
    parser.add_argument("--brokers", default="db,redis")
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="the jobs section's databases: sqlite (the local default) and postgresql (a "
        "private server from Debian's package, as Heroku and Dokku run)",
    )
    parser.add_argument(
        "--redis-url",
        default="",
        help="a Redis to use as broker (its database 0 and up; nothing else may consume from "
        "them); default: start a private redis-server on the first free port from 6380",
    )
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument(
        "--memory-limits", default="512,1024", help="MB, comma-separated, for the sizing section"
    )
    parser.add_argument("--sizing-clients", type=int, default=200, help="io clients (sizing)")
    parser.add_argument("--sizing-jobs", type=int, default=500, help="jobs per run (sizing)")
    parser.add_argument(
        "--sizing-job-io-ms",
        type=int,
        default=100,
        help="each sizing job's I/O wait: jobs that wait, so more Celery children do more",
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before idle memory")
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    raw = list(sys.argv[1:] if argv is None else argv)
    if "--smoke" in raw:
        parser.set_defaults(**SMOKE)
    args = parser.parse_args(raw)
    args.clients = [int(c) for c in str(args.clients).split(",") if c.strip()]
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if set(args.servers) - set(report.SERVER_LABELS):
        parser.error(f"--servers: choose from {', '.join(report.SERVER_LABELS)}")
    args.brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    if set(args.databases) - {"sqlite", "postgresql"}:
        parser.error("--databases: sqlite, postgresql or both")
    if not 1 <= args.cold_runs <= JOBS_PG_REDIS_DB - 1:
        parser.error(
            f"--cold-runs: from 1 to {JOBS_PG_REDIS_DB - 1} (one Redis database per cold start)"
        )
    args.memory_limits = [int(m) for m in str(args.memory_limits).split(",") if m.strip()]
    if len(args.memory_limits) > CEILING_REDIS_DB - SIZING_REDIS_DB or any(
        m < 256 for m in args.memory_limits
    ):
        parser.error(
            f"--memory-limits: up to {CEILING_REDIS_DB - SIZING_REDIS_DB} limits of 256 MB or more"
        )
    unknown = set(args.sections) - {"io", "jobs", "cold", "sizing"}
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    args.raw = raw
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="double-boiler-bench-"))
    tool = args.tool if args.tool != "auto" else ("wrk" if have_wrk() else "python")
    results: dict = {
        "meta": {
            "command": shlex.join(["python", "-m", "bench", *args.raw]),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "load_tool": tool,
            "smoke": args.smoke,
            # Other work on the machine skews everything: say how busy it was.
            "load_average_at_start": os.getloadavg(),
            "options": {k: v for k, v in vars(args).items() if k not in {"raw", "out"}},
        }
    }
    m = results["meta"]["machine"]
    progress(
        f"{m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}; load by {tool}; work dir {work}"
    )
    samplers: dict[str, MemorySampler] = {}
    redis_process = None
    started = time.perf_counter()
    failure = None
    try:
        redis_url = None
        if "redis" in args.brokers and {"jobs", "cold", "sizing"} & set(args.sections):
            if args.redis_url:
                redis_url, note = args.redis_url, f"Redis at {args.redis_url} (--redis-url)"
            else:
                redis_url, redis_process, note = start_redis(work)
            progress(note)
            results["meta"]["redis"] = note
        if "io" in args.sections:
            section_io(args, work, results, samplers)
        if "jobs" in args.sections:
            with contextlib.ExitStack() as stack:
                postgres_url = None
                if "postgresql" in args.databases and postgres_binaries():
                    postgres_url = stack.enter_context(postgres_server())
                    progress(f"own PostgreSQL at {postgres_url}")
                section_jobs(args, work, results, samplers, redis_url, postgres_url)
        if "cold" in args.sections:
            section_cold(args, work, results, redis_url)
        if "sizing" in args.sections:
            section_sizing(args, work, results, redis_url)
    except Exception as exc:
        # Keep what the finished sections measured; say what broke.
        failure = f"{type(exc).__name__}: {exc}"
        results["meta"]["failed"] = failure
        progress(f"FAILED: {failure} (writing the sections that finished)")
    finally:
        for sampler in samplers.values():
            sampler.stop()
        if redis_process is not None:
            redis_process.stop()
    memory_summary(results, samplers)
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    results["meta"]["load_average_at_end"] = os.getloadavg()
    text, plots = report.render_all(results, out)
    print(text)
    m = results["meta"]
    print(
        f"Machine: {m['machine']['cores']} cores, {m['machine']['memory_gib']} GiB "
        f"({m['machine']['cpu']}); load average {m['load_average_at_start'][0]:.1f} at start, "
        f"{m['load_average_at_end'][0]:.1f} at end; command: {m['command']}; "
        f"took {m['seconds']:.0f} s"
    )
    print(f"Results: {out / 'results.json'}; plots: {', '.join(str(p) for p in plots)}")
    if failure:
        print(f"The benchmark failed: {failure}; server logs kept in {work}", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
