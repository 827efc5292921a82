"""Command line of the Heroku Platform API stand-in.

    python -m tests.standins.heroku_api serve --port 5500 --state-dir DIR   # foreground
    python -m tests.standins.heroku_api start --port 5500 --state-dir DIR   # background, waits
    python -m tests.standins.heroku_api stop --state-dir DIR                # stop and clean up

The API token the stand-in accepts is read from the environment variable named
by ``--api-key-env`` (default ``HEROKU_API_KEY``) or from ``--api-key-file``,
never from the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from .schema import HyperSchema, SchemaUnavailable, load_schema


def _port_range(text: str) -> range:
    low, _, high = text.partition("-")
    return range(int(low), int(high or low) + 1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.standins.heroku_api",
        description="Stand-in for the Heroku Platform API (tests only; not Heroku).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "start"):
        p = sub.add_parser(name, help=f"{name} the stand-in")
        p.add_argument("--port", type=int, default=5500)
        p.add_argument("--state-dir", type=Path, required=True)
        p.add_argument(
            "--schema",
            type=Path,
            help="Platform API schema (default: "
            "$HEROKU_API_SCHEMA or ../shared/heroku/platform-api.schema.json)",
        )
        p.add_argument(
            "--api-key-env",
            default="HEROKU_API_KEY",
            help="environment variable holding the accepted API token",
        )
        p.add_argument("--api-key-file", type=Path, help="file holding the accepted API token")
        p.add_argument("--dyno-ports", type=_port_range, default=range(5600, 5700))
        p.add_argument("--postgres-port", type=int, default=25432)
        p.add_argument("--redis-port", type=int, default=26379)
        p.add_argument(
            "--addon-delay", type=float, default=2.0, help="seconds an add-on stays 'provisioning'"
        )
        p.add_argument(
            "--stop-timeout",
            type=float,
            default=30.0,
            help="seconds between SIGTERM and SIGKILL when dynos stop",
        )
        p.add_argument(
            "--boot-timeout",
            type=float,
            default=60.0,
            help="seconds a web dyno has to bind $PORT (error R10)",
        )
        p.add_argument(
            "--pip-cache",
            type=Path,
            default=Path.home() / ".cache" / "double-boiler-heroku-standin" / "pip",
        )
        p.add_argument("--python", help="interpreter to build with (default: found by version)")
        p.add_argument("--rate-limit", type=int, default=4500, help="API tokens per hour")
        p.add_argument(
            "--web-url-scheme",
            choices=("http", "https"),
            default="http",
            help="web_url on the router's HTTPS listener (test CA: <state>/router/ca.pem, "
            "with the system CAs: <state>/router/ca-bundle.pem) or its plain HTTP one",
        )
        p.add_argument(
            "--router-timeout",
            type=float,
            default=30.0,
            help="seconds a dyno has to start answering (Heroku: 30, error H12)",
        )
        p.add_argument(
            "--preboot-delay",
            type=float,
            default=180.0,
            help="preboot: seconds from a rollout's start to the traffic switch (Heroku: ~180)",
        )
        p.add_argument(
            "--team",
            action="append",
            dest="teams",
            help="a team the account belongs to, for POST /teams/apps (repeatable; "
            "default: double-boiler-team)",
        )
        p.add_argument("--fail-builds", type=int, default=0, help="fail the next N builds")
        p.add_argument(
            "--fail-releases", type=int, default=0, help="fail the next N release phases"
        )
        p.add_argument(
            "--inject-429",
            type=int,
            default=0,
            help="answer the next N API requests with 429 rate_limit",
        )
        p.add_argument(
            "--inject-503", type=int, default=0, help="answer the next N API requests with 503"
        )
        p.add_argument(
            "--slow-addon",
            type=float,
            default=0.0,
            help="the next add-on takes this many seconds to provision",
        )
        if name == "start":
            p.add_argument("--wait", type=float, default=30.0, help="seconds to wait for health")
    stop = sub.add_parser("stop", help="stop a stand-in started with 'start' and its processes")
    stop.add_argument("--state-dir", type=Path, required=True)
    stop.add_argument("--remove", action="store_true", help="also delete the state dir")
    stop.add_argument(
        "--keep-logs", type=Path, help="copy the logs, request log and output streams here first"
    )
    stop.add_argument("--timeout", type=float, default=60.0)
    return parser


def _api_keys(args: argparse.Namespace) -> list[str]:
    keys = []
    value = os.environ.pop(args.api_key_env, None)  # children must not inherit it
    if value:
        keys.append(value.strip())
    if args.api_key_file:
        keys.append(args.api_key_file.read_text().strip())
    return [k for k in keys if k]


def serve(args: argparse.Namespace) -> int:
    from .faults import Faults  # noqa: F401  (imported for side-effect free typing)
    from .platform import Options
    from .server import Server, StandIn, make_handler

    try:
        schema = HyperSchema(load_schema(args.schema))
    except SchemaUnavailable as exc:
        print(f"heroku stand-in: {exc}", file=sys.stderr)
        return 2
    keys = _api_keys(args)
    if not keys:
        print(
            f"heroku stand-in: no API token to accept: set ${args.api_key_env} or --api-key-file",
            file=sys.stderr,
        )
        return 2
    state = args.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    args.pip_cache.mkdir(parents=True, exist_ok=True)
    options = Options(
        state_dir=state,
        public_url=f"http://127.0.0.1:{args.port}",
        dyno_ports=args.dyno_ports,
        postgres_port=args.postgres_port,
        redis_port=args.redis_port,
        addon_delay=args.addon_delay,
        stop_timeout=args.stop_timeout,
        boot_timeout=args.boot_timeout,
        pip_cache=args.pip_cache,
        python=args.python,
        teams=tuple(args.teams or ["double-boiler-team"]),
        web_url_scheme=args.web_url_scheme,
        router_timeout=args.router_timeout,
        preboot_delay=args.preboot_delay,
    )
    try:
        httpd = Server(("127.0.0.1", args.port), None)  # type: ignore[arg-type]
    except OSError as exc:
        print(f"heroku stand-in: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2
    standin = StandIn(schema, options, keys, rate_limit=args.rate_limit)
    httpd.RequestHandlerClass = make_handler(standin)
    for kind, count in (
        ("build_failure", args.fail_builds),
        ("release_failure", args.fail_releases),
        ("rate_limit", args.inject_429),
        ("unavailable", args.inject_503),
    ):
        if count:
            spec = {"kind": kind, "count": count}
            if kind in ("rate_limit", "unavailable"):
                spec["retry_after"] = 1
            standin.faults.add(spec)
    if args.slow_addon:
        standin.faults.add({"kind": "slow_addon", "seconds": args.slow_addon})

    (state / "standin.pid").write_text(f"{os.getpid()}\n")
    (state / "standin.json").write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "url": options.public_url,
                "port": args.port,
                "postgres_port": args.postgres_port,
                "redis_port": args.redis_port,
                "dyno_ports": [args.dyno_ports.start, args.dyno_ports.stop - 1],
                "router_ca": str(state / "router" / "ca.pem"),
                "router_ca_bundle": str(state / "router" / "ca-bundle.pem"),
            }
        )
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: standin.shutdown_requested.set())
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
    )
    thread.start()
    print(f"heroku stand-in listening on {options.public_url} (state {state})", flush=True)
    standin.shutdown_requested.wait()
    print("heroku stand-in stopping dynos and backing services", flush=True)
    standin.platform.shutdown()
    httpd.shutdown()
    httpd.server_close()
    (state / "standin.pid").unlink(missing_ok=True)
    print("heroku stand-in stopped", flush=True)
    return 0


def start(args: argparse.Namespace, argv: list[str]) -> int:
    from .backing import preflight

    missing = preflight()
    if missing:
        print(
            "heroku stand-in: this machine lacks what add-ons need: " + "; ".join(missing),
            file=sys.stderr,
        )
        return 2
    state = args.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    log = (state / "standin.log").open("ab")
    serve_argv = [
        sys.executable,
        "-m",
        "tests.standins.heroku_api",
        "serve",
        *_strip_start_only(argv[1:]),
    ]
    proc = subprocess.Popen(
        serve_argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    url = f"http://127.0.0.1:{args.port}/__standin__/health"
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(
                f"heroku stand-in exited with status {proc.returncode}; see "
                f"{state / 'standin.log'}",
                file=sys.stderr,
            )
            print((state / "standin.log").read_text()[-2000:], file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                health = json.load(resp)
        except OSError:
            time.sleep(0.2)
            continue
        if health.get("pid") != proc.pid:
            # Someone else answers on that port (ours will fail to bind and exit).
            time.sleep(0.2)
            continue
        if health.get("ok"):
            print(f"heroku stand-in up on 127.0.0.1:{args.port} (pid {proc.pid})")
            return 0
    print("heroku stand-in did not become healthy in time", file=sys.stderr)
    return 1


def _strip_start_only(argv: list[str]) -> list[str]:
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        if item == "--wait":
            skip = True
            continue
        if item.startswith("--wait="):
            continue
        out.append(item)
    return out


def stop(args: argparse.Namespace) -> int:
    state = args.state_dir.resolve()
    pidfile = state / "standin.pid"
    info = state / "standin.json"
    if pidfile.exists():
        pid = int(pidfile.read_text())
        port = json.loads(info.read_text())["port"] if info.exists() else None
        asked = False
        if not _is_standin(pid):
            print(f"pid {pid} in {pidfile} is not a stand-in (any more); not touching it")
            port, pid = None, None
        if port:
            try:
                req = urllib.request.Request(
                    f"http://127.0.0.1:{port}/__standin__/shutdown", method="POST", data=b""
                )
                urllib.request.urlopen(req, timeout=5).close()
                asked = True
            except OSError:
                pass
        if not asked and pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + args.timeout
        while pid and time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if pid and _alive(pid) and _is_standin(pid):
            print(f"heroku stand-in (pid {pid}) did not stop; killing it", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    leftovers = _kill_leftovers(state)
    if args.keep_logs and state.exists():
        _keep_logs(state, args.keep_logs)
    if args.remove and state.exists():
        shutil.rmtree(state, ignore_errors=True)
    print("heroku stand-in stopped" + (f" (killed leftovers: {leftovers})" if leftovers else ""))
    return 0


def _keep_logs(state: Path, dest: Path) -> None:
    """What one needs to understand a run, without slugs, blobs or databases."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name in ("standin.log", "requests.jsonl"):
        if (state / name).exists():
            shutil.copy2(state / name, dest / name)
    for sub in ("logs", "streams"):
        if (state / sub).is_dir():
            shutil.copytree(state / sub, dest / sub)


def _is_standin(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"tests.standins.heroku_api" in cmdline


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return False
    return True


def _cwd_inside(pid: int, root: Path) -> bool:
    """Whether process ``pid`` works inside ``root`` (so it is one we started)."""
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return cwd == root or root in cwd.parents


def _kill_leftovers(state: Path) -> list[int]:
    """Process groups the stand-in recorded and that outlived it (it crashed, say).

    Only groups whose leader still works inside the state dir are ours: a recorded
    number may have been reused by someone else's process since.
    """
    record = state / "processes.json"
    killed = []
    if record.exists():
        for pgid in json.loads(record.read_text()).get("process_groups", []):
            if not _cwd_inside(pgid, state):
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
                killed.append(pgid)
    pg_data = state / "postgresql" / "data"
    if (pg_data / "postmaster.pid").exists():
        pid = int((pg_data / "postmaster.pid").read_text().split()[0])
        if _cwd_inside(pid, pg_data):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown of a postmaster
                killed.append(pid)
    return killed


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "start":
        return start(args, argv)
    return stop(args)


if __name__ == "__main__":
    sys.exit(main())
