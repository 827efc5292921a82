"""What happens behind the API: builds, the release phase, dynos, add-ons.

Modelled on Heroku's documented behaviour:

* A build fetches ``source_blob.url``, checks ``checksum``, unpacks the
  tarball (a single top-level directory is stripped, as for GitHub archives)
  and runs the Python buildpack's steps: Python from ``.python-version`` (or
  ``runtime.txt``), a virtualenv at ``.heroku/python`` with
  ``pip install -r requirements.txt``, Django ``collectstatic`` when Django and
  a ``manage.py`` (at most 3 levels deep) are present, then the Procfile's
  process types. Success creates a release.
* Every release runs the Procfile's ``release`` command in a one-off dyno
  (except releases made by add-ons and releases without a slug); its exit
  status decides the release's status. A succeeded release becomes current and
  restarts the dynos; a failed one leaves the current release serving.
* Dynos run the formation's process types with the release's config vars,
  ``PORT`` and ``DYNO``, each in its own process group. Stopping one is SIGTERM
  to the group, SIGKILL 30 s later. A web dyno that does not bind ``$PORT``
  within the boot timeout is killed (error R10); crashed dynos are restarted
  with a growing delay.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import model
from .backing import BackingError, Postgres, Redis, port_in_use
from .faults import Faults
from .model import Addon, App, Build, Formation, Release, Slug
from .router import Router
from .streams import Stream

INDENT = "       "
SUPPORTED_BUILDPACKS = re.compile(
    r"^(urn:buildpack:heroku/python|heroku/python|"
    r"https://github\.com/heroku/heroku-buildpack-python(\.git)?(#.*)?)$"
)
# What the Python buildpack's sub_env keeps out of the build environment.
ENV_DENYLIST = {
    "PATH",
    "GIT_DIR",
    "CPATH",
    "CPPATH",
    "LD_PRELOAD",
    "LIBRARY_PATH",
    "LD_LIBRARY_PATH",
    "PYTHONHOME",
}
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class Options:
    state_dir: Path
    public_url: str
    dyno_ports: range = range(5600, 5700)
    postgres_port: int = 25432
    redis_port: int = 26379
    addon_delay: float = 2.0
    stop_timeout: float = 30.0  # Heroku: SIGKILL 30 s after SIGTERM
    boot_timeout: float = 60.0  # Heroku: R10 after 60 s without binding $PORT
    release_timeout: float = 3600.0  # Heroku: the release phase has one hour
    pip_cache: Path | None = None
    python: str | None = None  # interpreter to build with, else found by version
    default_python: str = "3.13"  # what the buildpack picks when the app names none
    teams: tuple[str, ...] = ("double-boiler-team",)  # teams the one account belongs to
    web_url_scheme: str = "http"  # "https": web_url is the router's TLS listener
    router_timeout: float = (
        30.0  # Heroku's H12: https://devcenter.heroku.com/articles/request-timeout
    )
    # Preboot switches traffic "approximately 3 minutes after the deploy completes"
    # (https://devcenter.heroku.com/articles/preboot), once the new dynos are up.
    preboot_delay: float = 180.0


@dataclass
class Dyno:
    app_id: str
    name: str
    type: str
    port: int
    release_id: str
    proc: subprocess.Popen[bytes]
    command: str = ""
    size: str = model.DEFAULT_DYNO_SIZE
    id: str = field(default_factory=model.new_id)
    created_at: str = field(default_factory=model.now)
    started: float = field(default_factory=time.monotonic)
    state: str = "starting"
    stopping: bool = False
    # Gets traffic once up; with preboot, only from the switch on.
    held: bool = False
    retiring: bool = False  # an old dyno of a preboot rollout: runs, not in `ps`

    @property
    def pgid(self) -> int:
        return self.proc.pid


class PlatformError(Exception):
    """An API-level refusal: (status, id, message)."""

    def __init__(self, status: int, error_id: str, message: str):
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message


class Platform:
    def __init__(self, options: Options, faults: Faults):
        self.options = options
        self.faults = faults
        self.lock = threading.RLock()
        self.apps: dict[str, App] = {}
        self.blobs: dict[str, dict[str, str]] = {}
        self.streams: dict[str, Stream] = {}
        self.dynos: dict[str, dict[str, Dyno]] = {}
        self._ports_taken: set[int] = set()
        self._queues: dict[str, queue.Queue[Callable[[], None] | None]] = {}
        self._workers: list[threading.Thread] = []
        self._crashes: dict[tuple[str, str], tuple[int, float]] = {}
        self._stop = threading.Event()
        self._oneoff_groups: set[int] = set()
        self.notes: list[str] = []  # stand-in internal errors, reported by /__standin__/health
        state = options.state_dir
        for sub in ("blobs", "slugs", "streams", "logs"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        self.retiring: dict[str, list[Dyno]] = {}  # preboot: old web dynos until they stop
        self.router = Router(self, state, options.router_timeout)
        self.postgres = Postgres(state / "postgresql", options.postgres_port)
        self.redis_servers: dict[str, Redis] = {}  # add-on id -> its own redis-server
        self._monitor = threading.Thread(
            target=self._monitor_loop, name="dyno-monitor", daemon=True
        )
        self._monitor.start()

    # -- helpers ------------------------------------------------------------
    def log(self, app: App, source: str, line: str) -> None:
        path = self.options.state_dir / "logs" / app.name / "platform.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(f"{model.now()} {source}: {line}\n")

    def find_app(self, identity: str) -> App:
        with self.lock:
            for app in self.apps.values():
                if identity in (app.id, app.name):
                    return app
        raise PlatformError(404, "not_found", "Couldn't find that app.")

    def allocate_port(self) -> int:
        with self.lock:
            for port in self.options.dyno_ports:
                if port not in self._ports_taken and not port_in_use(port):
                    self._ports_taken.add(port)
                    return port
        raise PlatformError(
            503, "service_unavailable", "stand-in: no free port left in the dyno port range"
        )

    def release_port(self, port: int) -> None:
        with self.lock:
            self._ports_taken.discard(port)

    def new_stream(self, kind: str, ident: str) -> tuple[Stream, str]:
        stream = Stream(self.options.state_dir / "streams" / f"{kind}-{ident}.log")
        with self.lock:
            self.streams[f"{kind}/{ident}"] = stream
        return stream, f"{self.options.public_url}/__streams__/{kind}/{ident}"

    def enqueue(self, app: App, job: Callable[[], None]) -> None:
        """Run ``job`` after every earlier job of this app (releases apply in order)."""
        with self.lock:
            q = self._queues.get(app.id)
            if q is None:
                q = queue.Queue()
                self._queues[app.id] = q
                worker = threading.Thread(
                    target=self._drain, args=(q,), daemon=True, name=f"app-{app.name}"
                )
                self._workers.append(worker)
                worker.start()
        q.put(job)

    def _drain(self, q: queue.Queue[Callable[[], None] | None]) -> None:
        while True:
            job = q.get()
            if job is None:
                return
            try:
                job()
            except Exception as exc:  # keep the worker alive, but make the bug visible
                self.notes.append(f"app job: {type(exc).__name__}: {exc}")
            finally:
                q.task_done()

    # -- releases -----------------------------------------------------------
    def create_release(
        self,
        app: App,
        description: str,
        *,
        slug_id: str | None,
        run_phase: bool,
        config: dict[str, str] | None = None,
    ) -> Release:
        """Record a pending release and queue its release phase and deployment."""
        with self.lock:
            version = (app.releases[-1].version + 1) if app.releases else 1
            release = Release(
                id=model.new_id(),
                version=version,
                description=description,
                status="pending",
                config=dict(app.config if config is None else config),
                slug_id=slug_id,
                addon_plan_names=[f"{a.service}:{a.plan}" for a in app.addons],
            )
            slug = app.slugs.get(slug_id) if slug_id else None
            command = slug.process_types.get("release") if (slug and run_phase) else None
            if command:
                release.stream, release.stream_url = self.new_stream("releases", release.id)
            app.releases.append(release)
            app.updated_at = model.now()
        self.enqueue(app, lambda: self._deploy(app, release, command))
        return release

    def _deploy(self, app: App, release: Release, command: str | None) -> None:
        ok = True
        if command:
            assert release.stream is not None
            slug = app.slugs[release.slug_id or ""]
            if self.faults.take("release_failure"):
                command = "echo 'stand-in: injected release phase failure' >&2; exit 1"
            ok = self._run_release_phase(app, release, slug, command)
        with self.lock:
            release.status = "succeeded" if ok else "failed"
            release.updated_at = model.now()
            if ok:
                app.current_release_id = release.id
                app.released_at = release.updated_at
                self._sync_formation(app)
        if release.stream:
            release.stream.close()
        if ok:
            self.log(app, "heroku", f"Release v{release.version} created ({release.description})")
            self.restart_dynos(app)
        else:
            self.log(app, "heroku", f"Release v{release.version} failed; current release kept")

    def _run_release_phase(self, app: App, release: Release, slug: Slug, command: str) -> bool:
        stream = release.stream
        assert stream is not None
        port = self.allocate_port()
        env = self.dyno_env(
            app, release.config, slug, f"release.{release.version}", port, "basic", release=release
        )
        self.log(
            app, "heroku", f"release.{release.version}: Starting process with command `{command}`"
        )
        try:
            proc = subprocess.Popen(
                ["/bin/bash", "-c", command],
                cwd=slug.path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            with self.lock:
                self._oneoff_groups.add(proc.pid)
            self.record_processes()
            deadline = time.monotonic() + self.options.release_timeout
            assert proc.stdout is not None
            reader = threading.Thread(target=_pump, args=(proc.stdout, stream.write), daemon=True)
            reader.start()
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    _stop_group(proc, 0)
                    stream.line("stand-in: release phase timed out")
                time.sleep(0.2)
            reader.join(10)
            code = proc.returncode
            _stop_group(proc, 0)  # nothing of a one-off dyno outlives it
            with self.lock:
                self._oneoff_groups.discard(proc.pid)
            self.record_processes()
        finally:
            self.release_port(port)
        self.log(app, "heroku", f"release.{release.version}: Process exited with status {code}")
        return code == 0

    def _sync_formation(self, app: App) -> None:
        """Formation follows the current slug's process types (web starts at 1)."""
        slug = app.current_slug()
        if not slug:
            return
        types = {t: c for t, c in slug.process_types.items() if t != "release"}
        for gone in set(app.formation) - set(types):
            del app.formation[gone]
        for ptype, command in types.items():
            entry = app.formation.get(ptype)
            if entry is None:
                app.formation[ptype] = Formation(
                    id=model.new_id(),
                    type=ptype,
                    quantity=1 if ptype == "web" else 0,
                    size=model.DEFAULT_DYNO_SIZE,
                    command=command,
                )
            elif entry.command != command:
                entry.command = command
                entry.updated_at = model.now()

    # -- dynos --------------------------------------------------------------
    def dyno_env(
        self,
        app: App,
        config: dict[str, str],
        slug: Slug,
        dyno: str,
        port: int,
        size: str,
        *,
        release: Release | None = None,
        dyno_id: str | None = None,
    ) -> dict[str, str]:
        env = dict(config)
        if release is not None and app.features.get("runtime-dyno-metadata"):
            # https://devcenter.heroku.com/articles/dyno-metadata
            version = release.description.removeprefix("Deploy ")
            env.update(
                {
                    "HEROKU_APP_ID": app.id,
                    "HEROKU_APP_NAME": app.name,
                    "HEROKU_DYNO_ID": dyno_id or "",
                    "HEROKU_RELEASE_CREATED_AT": release.created_at,
                    "HEROKU_RELEASE_VERSION": f"v{release.version}",
                    "HEROKU_SLUG_COMMIT": version if version != release.description else "",
                    "HEROKU_SLUG_DESCRIPTION": release.description,
                }
            )
        # What the slug's .profile.d (Python buildpack) and the dyno manager add.
        env["PATH"] = f"{slug.path}/.heroku/python/bin:" + config.get("PATH", BASE_PATH)
        env.update(
            {
                "HOME": str(slug.path),
                "PORT": str(port),
                "DYNO": dyno,
                "PYTHONUNBUFFERED": "true",
                "LANG": config.get("LANG", "C.UTF-8"),
            }
        )
        env.setdefault("WEB_CONCURRENCY", "4" if size == "standard-2x" else "2")
        # A real dyno binds 0.0.0.0 in its own container; stand-in dynos share the test
        # machine's network, so they stay on loopback unless the config says otherwise.
        env.setdefault("BIND_HOST", "127.0.0.1")
        return env

    def _preboot_possible(self, app: App) -> bool:
        """Preboot is for standard and performance web dynos only (devcenter: preboot)."""
        web = app.formation.get("web")
        return bool(
            app.features.get("preboot")
            and web
            and web.quantity
            and web.size not in ("eco", "basic")
        )

    def _prebooting(self, app: App) -> bool:
        with self.lock:
            return bool(self.retiring.get(app.id))

    def restart_dynos(self, app: App) -> None:
        """Roll the dynos onto the current release.

        Without preboot Heroku stops the old dynos, then starts the new ones (requests
        wait in the router meanwhile). With preboot the new web dynos start first; the
        router switches to them once they are up and the preboot delay has passed,
        and only then do the old ones get SIGTERM.
        """
        with self.lock:
            running = self.dynos.get(app.id, {})
            old_web = [d for d in running.values() if d.type == "web" and not d.stopping]
            preboot = self._preboot_possible(app) and bool(old_web)
            if preboot:
                for dyno in old_web:
                    running.pop(dyno.name)
                    dyno.retiring = True
                self.retiring[app.id] = old_web
        if app.features.get("preboot") and not preboot and old_web:
            self.log(app, "heroku", "preboot: not available for Eco or Basic dynos; restarting")
        if not preboot:
            self.stop_dynos(app)
            self.apply_formation(app)
            return
        self.log(app, "heroku", "preboot: starting new web dynos before stopping the old ones")
        self.stop_dynos(app, {n for n, d in running.items() if d.type != "web"})
        self.apply_formation(app)
        began = time.monotonic()
        deadline = began + self.options.preboot_delay + self.options.boot_timeout + 5
        while time.monotonic() < deadline and not self._stop.is_set():
            with self.lock:
                new_web = [d for d in self.dynos.get(app.id, {}).values() if d.type == "web"]
                booted = new_web and all(d.state == "up" for d in new_web)
            if booted and time.monotonic() - began >= self.options.preboot_delay:
                break
            time.sleep(0.2)
        with self.lock:
            for dyno in self.dynos.get(app.id, {}).values():
                dyno.held = False  # the switch: new dynos get the traffic...
            old = self.retiring.get(app.id, [])
            for dyno in old:
                dyno.stopping = True  # ...and the old ones none
        self.log(app, "heroku", "preboot: traffic switched to the new web dynos")
        self._terminate(app, old)
        with self.lock:
            self.retiring.pop(app.id, None)

    def route_target(self, app: App) -> Dyno | None:
        """A web dyno for the router: up, not stopping, of the rollout that has traffic."""
        with self.lock:
            candidates = [
                d
                for d in list(self.dynos.get(app.id, {}).values()) + self.retiring.get(app.id, [])
                if d.type == "web" and d.state == "up" and not d.stopping and not d.held
            ]
            if not candidates:
                return None
            self._round_robin = (getattr(self, "_round_robin", 0) + 1) % len(candidates)
            return candidates[self._round_robin]

    def web_quantity(self, app: App) -> int:
        with self.lock:
            web = app.formation.get("web")
            return web.quantity if web else 0

    def serves_host(self, app: App, host: str) -> bool:
        """The router's Host check: the app's own address or one of its domains."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        with self.lock:
            return name in ("127.0.0.1", "localhost") or any(
                d.hostname == name.lower() for d in app.domains
            )

    def acm_domain(self, hostname: str) -> bool:
        with self.lock:
            return any(
                app.acm and any(d.kind == "custom" and d.hostname == hostname for d in app.domains)
                for app in self.apps.values()
            )

    def stop_dynos(self, app: App, only: set[str] | None = None) -> None:
        with self.lock:
            running = self.dynos.get(app.id, {})
            chosen = [d for n, d in running.items() if only is None or n in only]
            if only is None:
                chosen += self.retiring.pop(app.id, [])
        self._terminate(app, chosen)

    def _terminate(self, app: App, chosen: list[Dyno]) -> None:
        with self.lock:
            running = self.dynos.get(app.id, {})
            for dyno in chosen:
                dyno.stopping = True
        if not chosen:
            return
        self.log(
            app,
            "heroku",
            "Stopping all processes with SIGTERM: " + ", ".join(d.name for d in chosen),
        )
        for dyno in chosen:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(dyno.pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.options.stop_timeout
        for dyno in chosen:
            _wait_group(dyno.proc, deadline)
            if _group_alive(dyno.pgid):
                self.log(
                    app,
                    f"heroku[{dyno.name}]",
                    "Error R12 (Exit timeout) -> Process failed to exit within 30 seconds "
                    "of SIGTERM; Stopping process with SIGKILL",
                )
                _stop_group(dyno.proc, 0)
            self.log(
                app, f"heroku[{dyno.name}]", f"Process exited with status {dyno.proc.returncode}"
            )
            with self.lock:
                if running.get(dyno.name) is dyno:
                    running.pop(dyno.name, None)
            self.router.connections.forget(dyno.port)
            self.release_port(dyno.port)
        self.record_processes()

    def apply_formation(self, app: App) -> None:
        """Start or stop dynos so that the current release runs as the formation says."""
        with self.lock:
            release = app.current_release()
            slug = app.current_slug()
            running = self.dynos.setdefault(app.id, {})
            wanted: dict[str, Formation] = {}
            if release and slug:
                for entry in app.formation.values():
                    for i in range(1, entry.quantity + 1):
                        wanted[f"{entry.type}.{i}"] = entry
            extra = {
                n
                for n, d in running.items()
                if n not in wanted or d.release_id != (release.id if release else None)
            }
        self.stop_dynos(app, extra)
        for name, entry in wanted.items():
            with self.lock:
                if name in running:
                    continue
            assert release and slug
            self._start_dyno(app, release, slug, name, entry)

    def _start_dyno(
        self, app: App, release: Release, slug: Slug, name: str, entry: Formation
    ) -> None:
        # Start and register under the lock, and never once shutdown began or the app
        # was deleted: a release finishing in a queue worker meanwhile would otherwise
        # start a dyno that nothing stops (seen: one left running after the test session).
        with self.lock:
            if self._stop.is_set() or self.apps_by_id(app.id) is None:
                return
            port = self.allocate_port()  # the router forwards web traffic here
            dyno_id = model.new_id()
            env = self.dyno_env(
                app, release.config, slug, name, port, entry.size, release=release, dyno_id=dyno_id
            )
            logfile = self.options.state_dir / "logs" / app.name / f"{name}.log"
            logfile.parent.mkdir(parents=True, exist_ok=True)
            self.log(app, f"heroku[{name}]", f"Starting process with command `{entry.command}`")
            with logfile.open("ab") as out:
                proc = subprocess.Popen(
                    ["/bin/bash", "-c", entry.command],
                    cwd=slug.path,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            dyno = Dyno(
                app_id=app.id,
                name=name,
                type=entry.type,
                port=port,
                release_id=release.id,
                proc=proc,
                command=entry.command,
                size=entry.size,
                id=dyno_id,
                held=self._prebooting(app) and entry.type == "web",
            )
            if entry.type != "web":
                dyno.state = "up"
                self.log(app, f"heroku[{name}]", "State changed from starting to up")
            self.dynos.setdefault(app.id, {})[name] = dyno
        self.record_processes()

    def _monitor_loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self._monitor_once()
            except Exception as exc:  # the monitor must outlive any one bad tick
                self.notes.append(f"monitor: {type(exc).__name__}: {exc}")

    def _monitor_once(self) -> None:
        self.tick_addons()
        with self.lock:
            snapshot = [
                (self.apps_by_id(app_id), d)
                for app_id, running in self.dynos.items()
                for d in list(running.values())
            ]
        for app, dyno in snapshot:
            if app is None or dyno.stopping:
                continue
            code = dyno.proc.poll()
            if code is None and dyno.state == "starting":
                if _listening(dyno.port):
                    dyno.state = "up"
                    self.log(app, f"heroku[{dyno.name}]", "State changed from starting to up")
                elif time.monotonic() - dyno.started > self.options.boot_timeout:
                    self.log(
                        app,
                        f"heroku[{dyno.name}]",
                        f"Error R10 (Boot timeout) -> Web process failed to bind to $PORT "
                        f"within {int(self.options.boot_timeout)} seconds of launch",
                    )
                    dyno.stopping = True
                    _stop_group(dyno.proc, 0)
                    code = dyno.proc.returncode
                    dyno.stopping = False
            if code is None:
                continue
            # The dyno died on its own: crashed; restart it after a growing delay.
            _stop_group(dyno.proc, 0)
            self.log(app, f"heroku[{dyno.name}]", f"Process exited with status {code}")
            self.log(app, f"heroku[{dyno.name}]", f"State changed from {dyno.state} to crashed")
            key = (app.id, dyno.name)
            count, _ = self._crashes.get(key, (0, 0.0))
            if time.monotonic() - dyno.started > 120:
                count = 0
            delay = 0.0 if count == 0 else min(2.0**count, 60.0)
            self._crashes[key] = (count + 1, time.monotonic() + delay)
            with self.lock:
                self.dynos.get(app.id, {}).pop(dyno.name, None)
                self.release_port(dyno.port)
            self.router.connections.forget(dyno.port)
            self.record_processes()

            def restart(app: App = app, delay: float = delay) -> None:
                if delay:
                    time.sleep(delay)
                self.apply_formation(app)

            self.enqueue(app, restart)

    def record_processes(self) -> None:
        """Write the process groups we run, so `stop` can clean up even after a crash."""
        with self.lock:
            groups = [d.pgid for running in self.dynos.values() for d in running.values()]
            groups += [d.pgid for old in self.retiring.values() for d in old]
            groups += sorted(self._oneoff_groups)
            groups += [r.pid for r in self.redis_servers.values() if r.pid]
        record = self.options.state_dir / "processes.json"
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"process_groups": groups}))
        tmp.replace(record)

    def routers_json(self) -> dict[str, dict[str, int]]:
        """Each app's router listeners (web_url shows one of them)."""
        with self.lock:
            return {a.name: {"http": a.web_port, "https": a.tls_port} for a in self.apps.values()}

    def app_dynos_json(self, app: App) -> list[dict[str, Any]]:
        """GET /apps/{app}/dynos: what runs now, each with the release it runs."""
        with self.lock:
            running = sorted(self.dynos.get(app.id, {}).values(), key=lambda d: d.name)
            return [self.dyno_json(app, d) for d in running]

    def dyno_json(self, app: App, dyno: Dyno) -> dict[str, Any]:
        release = next((r for r in app.releases if r.id == dyno.release_id), None)
        return {
            "attach_url": None,
            "command": dyno.command,
            "created_at": dyno.created_at,
            "id": dyno.id,
            "name": dyno.name,
            "release": {"id": dyno.release_id, "version": release.version if release else 0},
            "app": {"name": app.name, "id": app.id},
            "size": model.DYNO_SIZES[dyno.size][0],
            # Heroku's states: crashed, down, idle, starting, up.
            "state": "down" if dyno.stopping else dyno.state,
            "type": dyno.type,
            "updated_at": dyno.created_at,
        }

    def apps_by_id(self, app_id: str) -> App | None:
        return self.apps.get(app_id)

    def dynos_json(self) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for app_id, running in self.dynos.items():
                app = self.apps.get(app_id)
                for dyno in list(running.values()) + self.retiring.get(app_id, []):
                    release = (
                        next((r for r in app.releases if r.id == dyno.release_id), None)
                        if app
                        else None
                    )
                    out.append(
                        {
                            "app": app.name if app else app_id,
                            "name": dyno.name,
                            "type": dyno.type,
                            "pid": dyno.proc.pid,
                            "pgid": dyno.pgid,
                            "port": dyno.port,
                            "state": dyno.state,
                            "release_version": release.version if release else None,
                            "retiring": dyno.retiring,
                            "routed": dyno.type == "web"
                            and dyno.state == "up"
                            and not (dyno.stopping or dyno.held),
                        }
                    )
            return out

    # -- add-ons ------------------------------------------------------------
    def provision_addon(
        self, app: App, service: str, plan: str, attachment: str | None, name: str | None
    ) -> Addon:
        with self.lock:
            taken = {a.name for other in self.apps.values() for a in other.addons}
            if name and name in taken:
                raise PlatformError(422, "invalid_params", f"Name {name} is already taken.")
            attach = attachment or model.attachment_name(service, app)
            if any(a.attachment == attach for a in app.addons):
                raise PlatformError(
                    422, "invalid_params", f"{attach} is already an attachment name on {app.name}."
                )
            slow = self.faults.take("slow_addon")
            delay = slow.seconds if slow else self.options.addon_delay
            addon = Addon(
                id=model.new_id(),
                name=name or model.addon_name(service, taken),
                service=service,
                plan=plan,
                state="provisioning",
                attachment=attach,
                provider_id="resource" + model.new_id().split("-")[0],
                ready_at=time.monotonic() + delay,
            )
            app.addons.append(addon)
            app.updated_at = model.now()
        # Bring the backing service up now so a broken machine fails the add-on early.
        threading.Thread(target=self._back_addon, args=(app, addon), daemon=True).start()
        return addon

    def _back_addon(self, app: App, addon: Addon) -> None:
        try:
            if addon.service == "heroku-postgresql":
                addon.backing = self.postgres.create_database(
                    addon.name, model.CONNECTION_LIMITS[(addon.service, addon.plan)]
                )
            else:
                server = self._redis_for(addon)
                server.ensure_started()
                self.record_processes()
                addon.backing = server
        except BackingError as exc:
            with self.lock:
                addon.state = "deprovisioned"
                addon.message = f"stand-in could not provide the backing service: {exc}"
                addon.updated_at = model.now()
            self.log(app, "heroku", f"add-on {addon.name} failed to provision: {exc}")

    def tick_addons(self) -> None:
        """Provisioning finishes after its delay: attach the config var with a release."""
        ready: list[tuple[App, Addon]] = []
        with self.lock:
            for app in self.apps.values():
                for addon in app.addons:
                    if (
                        addon.state == "provisioning"
                        and addon.backing is not None
                        and time.monotonic() >= addon.ready_at
                    ):
                        addon.state = "provisioned"
                        addon.updated_at = model.now()
                        ready.append((app, addon))
        for app, addon in ready:
            if addon.service == "heroku-postgresql":
                url = self.postgres.url(addon.backing)
            else:
                url = addon.backing.url()
            with self.lock:
                app.config[addon.config_var] = url
                addon.attached = True
                current = app.current_release()
                slug_id = current.slug_id if current else None
            self.create_release(
                app,
                f"Attach {addon.attachment} (@ref:{addon.name})",
                slug_id=slug_id,
                run_phase=False,
            )

    def destroy_addon(self, app: App, addon: Addon) -> None:
        with self.lock:
            app.addons.remove(addon)
            addon.state = "deprovisioned"
            was_attached = addon.config_var in app.config and addon.attached
            if was_attached:
                del app.config[addon.config_var]
            current = app.current_release()
            slug_id = current.slug_id if current else None
        if was_attached:
            self.create_release(
                app,
                f"Detach {addon.attachment} (@ref:{addon.name})",
                slug_id=slug_id,
                run_phase=False,
            )
        if addon.service == "heroku-postgresql" and addon.backing is not None:
            with contextlib.suppress(BackingError):
                self.postgres.drop_database(addon.backing)
        server = self.redis_servers.pop(addon.id, None)
        if server:
            server.stop()
            self.record_processes()

    def _redis_for(self, addon: Addon) -> Redis:
        """A redis-server of the add-on's own, on the first free port from --redis-port."""
        with self.lock:
            taken = {r.port for r in self.redis_servers.values()}
            for port in range(self.options.redis_port, self.options.redis_port + 50):
                if port not in taken and not port_in_use(port):
                    server = Redis(
                        self.options.state_dir / "redis" / addon.name,
                        port,
                        model.CONNECTION_LIMITS[(addon.service, addon.plan)],
                    )
                    self.redis_servers[addon.id] = server
                    return server
        raise BackingError(f"no free port for Redis in {self.options.redis_port}+50")

    def change_plan(self, addon: Addon, plan: str) -> None:
        """A plan change carries the new plan's connection limit to the backing service."""
        limit = model.CONNECTION_LIMITS[(addon.service, plan)]
        if addon.backing is None:
            return
        if addon.service == "heroku-postgresql":
            self.postgres.set_connection_limit(addon.backing, limit)
        else:
            addon.backing.set_maxclients(limit)

    # -- builds -------------------------------------------------------------
    def start_build(
        self, app: App, source_blob: dict[str, Any], buildpacks: list[dict[str, str]] | None
    ) -> Build:
        with self.lock:
            build_id = model.new_id()
            stream, url = self.new_stream("builds", build_id)
            chosen = (
                [model.buildpack_json(bp.get("url") or bp.get("name", "")) for bp in buildpacks]
                if buildpacks
                else [dict(bp) for bp in app.buildpacks]
            )
            build = Build(
                id=build_id,
                status="pending",
                source_blob=dict(source_blob),
                buildpacks=chosen,
                stack=app.build_stack,
                stream=stream,
                stream_url=url,
            )
            app.builds.append(build)
        threading.Thread(
            target=self._build, args=(app, build), daemon=True, name=f"build-{build_id[:8]}"
        ).start()
        return build

    def _build(self, app: App, build: Build) -> None:
        out = build.stream
        slug_id = model.new_id()
        slug_dir = self.options.state_dir / "slugs" / slug_id
        try:
            process_types = self._compile(app, build, slug_dir)
        except BuildFailure as exc:
            out.line(f" !     {exc}")
            out.line(" !     Push rejected, failed to compile Python app.")
            out.line(" !     Push failed")
            with self.lock:
                build.status = "failed"
                build.updated_at = model.now()
            out.close()
            shutil.rmtree(slug_dir, ignore_errors=True)
            return
        except Exception as exc:  # a stand-in bug must still end the build visibly
            out.line(f" !     stand-in internal error: {type(exc).__name__}: {exc}")
            with self.lock:
                build.status = "failed"
                build.updated_at = model.now()
            out.close()
            return
        size = sum(
            p.stat().st_size for p in slug_dir.rglob("*") if p.is_file() and not p.is_symlink()
        )
        out.line("-----> Compressing...")
        out.line(f"{INDENT}Done: {size // (1024 * 1024)}M")
        out.line("-----> Launching...")
        slug = Slug(
            id=slug_id, path=slug_dir, process_types=process_types, stack=build.stack, size=size
        )
        version = build.source_blob.get("version")
        with self.lock:
            app.slugs[slug_id] = slug
            app.stack = build.stack
            release = self.create_release(
                app,
                f"Deploy {version[:8]}" if version else "Deploy",
                slug_id=slug_id,
                run_phase=True,
            )
            build.slug_id = slug_id
            build.release_id = release.id
            build.status = "succeeded"
            build.updated_at = model.now()
        out.line(f"{INDENT}Released v{release.version}")
        out.line(f"{INDENT}{app.web_url} deployed to Heroku")
        out.close()

    def _compile(self, app: App, build: Build, slug_dir: Path) -> dict[str, str]:
        out = build.stream
        stack_title = build.stack.replace("heroku", "Heroku")
        out.line(f"-----> Building on the {stack_title} stack")
        blob = self._fetch(build.source_blob)
        if self.faults.take("build_failure"):
            raise BuildFailure("stand-in: injected build failure")
        expected = build.source_blob.get("checksum")
        if expected:
            algo, _, digest = expected.partition(":")
            if algo.upper() != "SHA256":
                raise BuildFailure(f"Unsupported checksum algorithm {algo!r}")
            actual = hashlib.sha256(blob).hexdigest()
            if actual != digest.lower():
                raise BuildFailure(f"Checksum mismatch: expected {digest}, got {actual}")
        _unpack(blob, slug_dir)
        buildpacks = build.buildpacks or [model.buildpack_json("heroku/python")]
        for bp in buildpacks:
            if not SUPPORTED_BUILDPACKS.match(bp["url"]):
                raise BuildFailure(f"stand-in: only heroku/python is supported, not {bp['url']}")
        if not build.buildpacks:
            if not any(
                (slug_dir / f).exists()
                for f in (
                    "requirements.txt",
                    "Pipfile",
                    "pyproject.toml",
                    ".python-version",
                    "runtime.txt",
                    "setup.py",
                )
            ):
                raise BuildFailure("No default language could be detected for this app.")
            build.buildpacks = buildpacks
        out.line("-----> Using buildpack: heroku/python")
        out.line("-----> Python app detected")
        python, version = self._python(slug_dir, out)
        venv = slug_dir / ".heroku" / "python"
        out.line(f"-----> Installing Python {version}")
        self._run(out, [python, "-m", "venv", str(venv)], slug_dir, self._build_env(None))
        if not (slug_dir / "requirements.txt").is_file():
            raise BuildFailure("stand-in: only requirements.txt projects are supported")
        out.line("-----> Installing requirements with pip")
        env = self._build_env(venv)
        self._run(
            out,
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--progress-bar",
                "off",
                "-r",
                "requirements.txt",
            ],
            slug_dir,
            env,
            indent=True,
            failure="pip install failed (see output above)",
        )
        self._collectstatic(app, slug_dir, venv, out)
        out.line("-----> Discovering process types")
        procfile = slug_dir / "Procfile"
        types = parse_procfile(procfile.read_text()) if procfile.is_file() else {}
        shown = ", ".join(types) if types else "(none)"
        out.line(f"{INDENT}Procfile declares types -> {shown}")
        return types

    def _fetch(self, source_blob: dict[str, Any]) -> bytes:
        url = source_blob["url"]
        if not url.startswith(("http://", "https://")):
            raise BuildFailure(f"Unable to fetch source from {url}: not an http(s) URL")
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                return resp.read()
        except Exception as exc:
            raise BuildFailure(f"Unable to fetch source: {exc}") from exc

    def _python(self, slug_dir: Path, out: Stream) -> tuple[str, str]:
        requested, origin = None, None
        pv = slug_dir / ".python-version"
        rt = slug_dir / "runtime.txt"
        if pv.is_file():
            lines = [
                ln.strip()
                for ln in pv.read_text().splitlines()
                if ln.strip() and not ln.startswith("#")
            ]
            requested, origin = (lines[0] if lines else None), ".python-version"
        elif rt.is_file():
            requested, origin = rt.read_text().strip().removeprefix("python-"), "runtime.txt"
        if not requested:
            requested, origin = self.options.default_python, "the buildpack default"
        if not re.fullmatch(r"3\.\d+(\.\d+)?", requested):
            raise BuildFailure(f"Invalid Python version in {origin}: {requested!r}")
        out.line(f"-----> Using Python {requested} specified in {origin}")
        major_minor = ".".join(requested.split(".")[:2])
        if self.options.python:
            candidates = [self.options.python]
        else:
            dirs = os.environ.get("PATH", "").split(":") + BASE_PATH.split(":")
            candidates = [str(Path(d) / f"python{major_minor}") for d in dirs if d]
            candidates = [c for c in dict.fromkeys(candidates) if os.access(c, os.X_OK)]
        for candidate in candidates:
            probe = subprocess.run(
                [
                    candidate,
                    "-c",
                    "import ensurepip, venv, sys, platform; "
                    "print(sys._base_executable); print(platform.python_version())",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode != 0:
                continue
            base, full = probe.stdout.split()
            if not full.startswith(major_minor + "."):
                continue
            if requested.count(".") == 2 and full != requested:
                out.line(f"{INDENT}stand-in: building with the machine's Python {full}")
            return base, full
        raise BuildFailure(
            f"Requested Python {requested} is not available to the stand-in (it builds with "
            "the machine's interpreters)"
        )

    def _build_env(self, venv: Path | None) -> dict[str, str]:
        env = {
            "PATH": BASE_PATH,
            "HOME": str(self.options.state_dir),
            "LANG": "C.UTF-8",
            "PIP_CACHE_DIR": str(self.options.pip_cache or self.options.state_dir / "pip"),
        }
        if venv:
            env["PATH"] = f"{venv}/bin:{BASE_PATH}"
            env["VIRTUAL_ENV"] = str(venv)
        for name in (
            "PIP_INDEX_URL",
            "PIP_EXTRA_INDEX_URL",
            "PIP_TRUSTED_HOST",
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "NO_PROXY",
            "https_proxy",
            "http_proxy",
            "no_proxy",
        ):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def _collectstatic(self, app: App, slug_dir: Path, venv: Path, out: Stream) -> None:
        with self.lock:
            config = dict(app.config)
        if config.get("DISABLE_COLLECTSTATIC", "0") != "0":
            out.line(
                "-----> Skipping Django collectstatic since the env var "
                "DISABLE_COLLECTSTATIC is set."
            )
            return
        python = str(venv / "bin" / "python")
        has_django = (
            subprocess.run(
                [python, "-c", "import django"],
                capture_output=True,
                check=False,
                cwd=slug_dir,
                env=self._build_env(venv),
            ).returncode
            == 0
        )
        if not has_django:
            return
        manage = _find_manage_py(slug_dir)
        if not manage:
            out.line("-----> Skipping Django collectstatic since no manage.py file found.")
            return
        out.line(f"-----> $ python {manage} collectstatic --noinput")
        env = {k: v for k, v in config.items() if k not in ENV_DENYLIST}
        env.update(self._build_env(venv))
        env.setdefault("PYTHONPATH", ".")
        self._run(
            out,
            [python, manage, "collectstatic", "--noinput", "--traceback"],
            slug_dir,
            env,
            indent=True,
            keep=lambda ln: not ln.startswith(("Post-processed", "Copying")) and ln.strip(),
            failure="Unable to generate Django static files (collectstatic failed)",
        )

    def _run(
        self,
        out: Stream,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        *,
        indent: bool = False,
        failure: str | None = None,
        keep: Callable[[str], Any] | None = None,
    ) -> None:
        # Its own process group, recorded, so a shutdown can end a build half-way.
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with self.lock:
            self._oneoff_groups.add(proc.pid)
        self.record_processes()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if keep and not keep(line):
                    continue
                out.line((INDENT + line) if indent else line)
            proc.wait()
        finally:
            _stop_group(proc, 0)
            with self.lock:
                self._oneoff_groups.discard(proc.pid)
            self.record_processes()
        if proc.returncode != 0:
            raise BuildFailure(
                failure or f"{Path(argv[0]).name} exited with status {proc.returncode}"
            )

    # -- shutdown -----------------------------------------------------------
    def shutdown(self) -> None:
        self._stop.set()
        self.router.close()
        with self.lock:
            apps = list(self.apps.values())
        threads = [threading.Thread(target=self.stop_dynos, args=(app,)) for app in apps]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with self.lock:
            oneoff = sorted(self._oneoff_groups)
            for q in self._queues.values():
                q.put(None)
        for pgid in oneoff:  # builds and release phases still running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        for server in list(self.redis_servers.values()):
            server.stop()
        self.postgres.stop()
        with self.lock:
            self.dynos.clear()
            self._oneoff_groups.clear()
        self.record_processes()  # nothing left for `stop` to clean up


class BuildFailure(Exception):
    pass


def parse_procfile(text: str) -> dict[str, str]:
    types: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if m:
            types[m.group(1)] = m.group(2).strip()
    return types


def _find_manage_py(root: Path) -> str | None:
    found = []
    for path in root.rglob("manage.py"):
        rel = path.relative_to(root)
        if path.is_file() and len(rel.parts) <= 3 and ".heroku" not in rel.parts:
            found.append((len(rel.parts), str(rel)))
    return min(found)[1] if found else None


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    return "" if name == "." else name


def _unpack(blob: bytes, dest: Path) -> None:
    """Extract safely; a lone top-level directory (GitHub archive style) is stripped."""
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
            members = [(m, _norm(m.name)) for m in tar.getmembers()]
            members = [(m, n) for m, n in members if n]
            tops = {n.split("/")[0] for _, n in members}
            strip = None
            if len(tops) == 1:
                top = next(iter(tops))
                if all(n != top or m.isdir() for m, n in members) and any(
                    "/" in n for _, n in members
                ):
                    strip = top
            dest.mkdir(parents=True, exist_ok=True)
            for member, name in members:
                if strip:
                    if name == strip:
                        continue
                    name = name.removeprefix(strip + "/")
                member.name = name
                tar.extract(member, dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BuildFailure(f"Unable to unpack the source tarball: {exc}") from exc


def _pump(pipe: Any, write: Callable[[bytes], None]) -> None:
    for chunk in iter(lambda: pipe.read1(4096) if hasattr(pipe, "read1") else pipe.read(4096), b""):
        write(chunk)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_group(proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        proc.poll()
        if proc.returncode is not None and not _group_alive(proc.pid):
            return
        time.sleep(0.1)


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    if grace:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        _wait_group(proc, time.monotonic() + grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False
