"""Run app processes the way Dokku's docker-local scheduler runs containers.

Each process instance (``<app>.<type>.<n>``, like Dokku's container names) is one
"container": a script written at deploy time, with the app's config as its environment
(from a 0600 file, never on a command line), restarted on a non-zero exit up to 10 times:
Docker's ``on-failure:10`` restart policy, Dokku's default (dokku/dokku
plugins/ps/functions.go, DefaultProperties restart-policy). Old and new containers of a
dyno run side by side during a deploy, so the supervisor knows each one by its container
key (``<app>.<type>.<n>.<cid[:12]>``), and each runs in its own UTS namespace with the
container ID's first 12 characters as host name, as Docker names a container's host.

Two back ends: systemd units (the VM) and, for machines without systemd (the stand-in's own
tests), a small detached supervisor process per instance.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .state import read_file, write_file

MAX_RESTARTS = 10  # on-failure:10


@dataclass
class Instance:
    app: str
    process_type: str
    index: int
    script: str  # executable to run
    env_file: str  # KEY=value lines, 0600
    cwd: str
    user: str
    stop_timeout: int
    description: str
    # The container: its ID, and the address its web process listens on (Dokku: the
    # container's IP on the bridge network and PORT; here a loopback address per container).
    cid: str = ""
    ip: str = "127.0.0.1"
    port: int = 0

    @property
    def name(self) -> str:
        """The dyno's name (Dokku's container name once deployed): <app>.<type>.<n>."""
        return f"{self.app}.{self.process_type}.{self.index}"

    @property
    def container(self) -> str:
        """The supervisor's key for this container (old and new share the dyno name)."""
        return f"{self.name}.{self.cid[:12]}" if self.cid else self.name

    @property
    def hostname(self) -> str:
        # Docker's default container host name: the first 12 characters of its ID.
        return self.cid[:12] if self.cid else self.name


@dataclass
class Status:
    active: bool
    pid: int | None
    restarts: int
    state: str  # running, restarting, exited, missing


LAUNCH = Path(__file__).resolve().with_name("launch.py")


def launch_argv(inst: Instance) -> list[str]:
    """The command a supervisor runs: the launcher sets the host name, drops to the app's
    user and execs the instance script (run with -I: the app's config does not steer it)."""
    argv = [sys.executable, "-I", str(LAUNCH), "--hostname", inst.hostname]
    if inst.user:
        argv += ["--user", inst.user]
    return [*argv, "--", inst.script]


class Supervisor:
    def start(self, inst: Instance) -> None:
        raise NotImplementedError

    def kill(self, name: str, signum: int) -> None:
        """docker container kill --signal: the signal to the container's main process."""
        raise NotImplementedError

    def retire(self, names: list[str], delay: int) -> None:
        """After `delay` seconds stop (SIGTERM, SIGKILL at the stop timeout) and remove
        the containers, in the background (scheduler-deploy's retire block)."""
        raise NotImplementedError

    def names(self) -> list[str]:
        """Every container key this supervisor knows."""
        raise NotImplementedError

    def stop(self, name: str, timeout: int) -> None:
        raise NotImplementedError

    def status(self, name: str) -> Status:
        raise NotImplementedError

    def remove(self, name: str) -> None:
        raise NotImplementedError

    def log_lines(self, name: str, count: int) -> list[tuple[float, str]]:
        raise NotImplementedError


def env_file_text(env: dict[str, str]) -> str:
    """systemd EnvironmentFile syntax: double-quoted values, backslash escapes."""
    lines = []
    for key in sorted(env):
        value = env[key].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'{key}="{value}"')
    return "\n".join(lines) + "\n"


def read_env_file(path: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in read_file(Path(path)).splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
            out, chars = [], iter(value)
            for ch in chars:
                if ch == "\\":
                    nxt = next(chars, "")
                    out.append("\n" if nxt == "n" else nxt)
                else:
                    out.append(ch)
            value = "".join(out)
        env[key] = value
    return env


# -- systemd -------------------------------------------------------------------------------


class SystemdSupervisor(Supervisor):
    def __init__(self, unit_dir: str) -> None:
        self.unit_dir = Path(unit_dir)

    @staticmethod
    def unit(name: str) -> str:
        return f"dokku-{name}.service"

    def _systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["systemctl", *args], capture_output=True, text=True, check=check)

    def start(self, inst: Instance) -> None:
        exec_start = " ".join(_systemd_quote(arg) for arg in launch_argv(inst))
        text = (
            "# Written by the Dokku STAND-IN (double-boiler tests): not a real Dokku container.\n"
            "[Unit]\n"
            f"Description={inst.description}\n"
            "After=network.target postgresql.service redis-server.service\n"
            # on-failure:10: the first start and 10 restarts, then the unit stays failed
            # (start-limit-hit). Docker counts restarts; it does not forgive them with time.
            f"StartLimitBurst={MAX_RESTARTS + 1}\n"
            "StartLimitIntervalSec=infinity\n"
            "\n[Service]\n"
            "Type=simple\n"
            f"WorkingDirectory={inst.cwd}\n"
            f"EnvironmentFile={inst.env_file}\n"
            f"Environment=HOSTNAME={inst.hostname}\n"
            f"ExecStart={exec_start}\n"
            "Restart=on-failure\n"
            "RestartSec=1\n"
            # docker stop: SIGTERM to the main process, SIGKILL to everything at the timeout.
            "KillMode=mixed\n"
            f"TimeoutStopSec={inst.stop_timeout}\n"
            f"SyslogIdentifier={inst.name}\n"
        )
        unit = self.unit(inst.container)
        write_file(self.unit_dir / unit, text)
        self._systemctl("daemon-reload")
        self._systemctl("reset-failed", unit, check=False)
        self._systemctl("restart", unit)

    def kill(self, name: str, signum: int) -> None:
        if (self.unit_dir / self.unit(name)).exists():
            self._systemctl(
                "kill",
                "--kill-who=main",
                f"--signal={signal.Signals(signum).name}",
                self.unit(name),
                check=False,
            )

    def retire(self, names: list[str], delay: int) -> None:
        # A transient timer: the retirement outlives the `dokku` command (and its SSH session).
        package_parent = str(Path(__file__).resolve().parent.parent)
        config = os.environ.get("DOKKU_STANDIN_CONFIG", "")
        for name in names:
            args = [
                "systemd-run",
                "--quiet",
                "--collect",
                f"--unit=dokku-retire-{name}-{os.getpid()}",
                f"--on-active={max(delay, 1)}s",
                "--timer-property=AccuracySec=1s",
                f"--setenv=PYTHONPATH={package_parent}",
            ]
            if config:
                args.append(f"--setenv=DOKKU_STANDIN_CONFIG={config}")
            args += [sys.executable, "-m", "dokku_standin.supervisor", "--remove", name]
            subprocess.run(args, capture_output=True, check=False)

    def names(self) -> list[str]:
        return sorted(
            p.name[len("dokku-") : -len(".service")]
            for p in self.unit_dir.glob("dokku-*.service")
            if not p.name.startswith("dokku-retire-")
        )

    def stop(self, name: str, timeout: int) -> None:
        if (self.unit_dir / self.unit(name)).exists():
            self._systemctl("stop", self.unit(name), check=False)

    def remove(self, name: str) -> None:
        self.stop(name, 0)
        path = self.unit_dir / self.unit(name)
        if path.exists():
            path.unlink()
            self._systemctl("daemon-reload")
            self._systemctl("reset-failed", self.unit(name), check=False)

    def status(self, name: str) -> Status:
        if not (self.unit_dir / self.unit(name)).exists():
            return Status(False, None, 0, "missing")
        result = self._systemctl(
            "show", self.unit(name), "-p", "ActiveState,SubState,MainPID,NRestarts", check=False
        )
        props = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        active = props.get("ActiveState") == "active" and props.get("SubState") == "running"
        pid = int(props.get("MainPID", "0") or 0) or None
        restarts = int(props.get("NRestarts", "0") or 0)
        if active:
            state = "running"
        elif props.get("ActiveState") in ("activating",) or props.get("SubState") == "auto-restart":
            state = "restarting"
        else:
            state = "exited"
        return Status(active, pid, restarts, state)

    def log_lines(self, name: str, count: int) -> list[tuple[float, str]]:
        args = ["journalctl", "-u", self.unit(name), "-o", "json", "--no-pager"]
        if count > 0:
            args += ["-n", str(count)]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        lines = []
        for raw in result.stdout.splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if entry.get("_PID") == "1" or entry.get("SYSLOG_IDENTIFIER") == "systemd":
                continue  # systemd's own "Started ..." lines are not the container's output
            message = entry.get("MESSAGE", "")
            if isinstance(message, list):
                message = bytes(message).decode("utf-8", "replace")
            stamp = int(entry.get("__REALTIME_TIMESTAMP", "0")) / 1e6
            lines.append((stamp, message))
        return lines


# -- detached processes (no systemd) -----------------------------------------------------


class ProcessSupervisor(Supervisor):
    """One `python -m dokku_standin.supervisor <spec>` per instance, detached."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def _files(self, name: str) -> tuple[Path, Path, Path]:
        # Instance names contain dots (app.web.1): append, never replace, suffixes.
        return tuple(self.run_dir / f"{name}.{kind}" for kind in ("spec.json", "state.json", "log"))

    def start(self, inst: Instance) -> None:
        self.stop(inst.container, inst.stop_timeout)
        spec, state, log = self._files(inst.container)
        write_file(spec, json.dumps({**asdict(inst), "argv": launch_argv(inst)}), 0o600)
        state.unlink(missing_ok=True)
        package_parent = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": package_parent}
        with open(log, "ab") as handle:
            subprocess.Popen(
                [sys.executable, "-m", "dokku_standin.supervisor", str(spec)],
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                close_fds=True,
            )
        for _ in range(100):
            if state.exists():
                return
            time.sleep(0.05)

    def _state(self, name: str) -> dict:
        _, state, _ = self._files(name)
        try:
            return json.loads(read_file(state) or "{}")
        except ValueError:
            return {}

    def kill(self, name: str, signum: int) -> None:
        child = self._state(name).get("child_pid")
        if child and _alive(child):
            os.kill(child, signum)

    def retire(self, names: list[str], delay: int) -> None:
        package_parent = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": package_parent}
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dokku_standin.supervisor",
                "--remove",
                *names,
                "--delay",
                str(delay),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            close_fds=True,
        )

    def names(self) -> list[str]:
        if not self.run_dir.is_dir():
            return []
        return sorted(p.name[: -len(".spec.json")] for p in self.run_dir.glob("*.spec.json"))

    def stop(self, name: str, timeout: int) -> None:
        data = self._state(name)
        pid = data.get("supervisor_pid")
        if not pid or not _alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def remove(self, name: str) -> None:
        self.stop(name, 0)
        for path in self._files(name):
            path.unlink(missing_ok=True)

    def status(self, name: str) -> Status:
        data = self._state(name)
        if not data:
            return Status(False, None, 0, "missing")
        sup = data.get("supervisor_pid")
        child = data.get("child_pid")
        running = bool(sup and _alive(sup) and child and _alive(child))
        state = data.get("state", "exited")
        if not (sup and _alive(sup)):
            state = "exited"
        return Status(running and state == "running", child, data.get("restarts", 0), state)

    def log_lines(self, name: str, count: int) -> list[tuple[float, str]]:
        _, _, log = self._files(name)
        lines = [
            (log.stat().st_mtime if log.exists() else 0.0, line)
            for line in read_file(log).splitlines()
        ]
        return lines[-count:] if count > 0 else lines


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _supervise(spec_path: str) -> int:
    """Body of the detached supervisor: run, restart on failure, stop on SIGTERM."""
    spec = json.loads(Path(spec_path).read_text())
    state_path = Path(spec_path).with_name(
        Path(spec_path).name.replace(".spec.json", ".state.json")
    )
    stopping = False
    child: subprocess.Popen | None = None
    restarts = 0

    def save(state: str) -> None:
        write_file(
            state_path,
            json.dumps(
                {
                    "supervisor_pid": os.getpid(),
                    "child_pid": child.pid if child else None,
                    "restarts": restarts,
                    "state": state,
                }
            ),
        )

    def on_term(signum, frame):  # type: ignore[no-untyped-def]
        nonlocal stopping
        stopping = True
        if child and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    env = {
        **read_env_file(spec["env_file"]),
        "HOSTNAME": Instance(**{k: v for k, v in spec.items() if k != "argv"}).hostname,
    }
    while True:
        child = subprocess.Popen(spec["argv"], cwd=spec["cwd"], env=env, start_new_session=True)
        save("running")
        deadline = None
        while child.poll() is None:
            if stopping and deadline is None:
                deadline = time.monotonic() + spec["stop_timeout"]
            if deadline is not None and time.monotonic() > deadline:
                os.killpg(child.pid, signal.SIGKILL)
            time.sleep(0.1)
        code = child.returncode
        if stopping or code == 0 or restarts >= MAX_RESTARTS:
            save("exited")
            return 0
        restarts += 1
        save("restarting")
        time.sleep(1)


def _systemd_quote(arg: str) -> str:
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def _remove_later(argv: list[str]) -> int:
    """`--remove NAME... [--delay S]`: the retirement of old containers, detached."""
    delay = 0
    if "--delay" in argv:
        at = argv.index("--delay")
        delay = int(argv[at + 1])
        argv = argv[:at] + argv[at + 2 :]
    time.sleep(delay)
    from .core import Context
    from .deploy import supervisor

    sup = supervisor(Context())
    for name in argv:
        sup.remove(name)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--remove"]:
        sys.exit(_remove_later(sys.argv[2:]))
    sys.exit(_supervise(sys.argv[1]))
