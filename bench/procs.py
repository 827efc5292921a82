"""Processes the benchmark starts: free ports, start/stop, health waits, memory.

Memory is the proportional set size (PSS) of a whole process tree, read from
/proc/<pid>/smaps_rollup: shared pages (the Python interpreter, forked
children sharing the parent's heap) are split between the processes that map
them, so the sum is what the tree really costs. Where smaps_rollup is missing
(old kernels, other systems) RSS stands in, which over-counts shared pages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PORT_RANGE = range(7000, 8000)
_taken: set[int] = set()
_lock = threading.Lock()


def free_port(start: int | None = None) -> int:
    """A loopback port in 7000-7999 nobody listens on (and we did not hand out)."""
    ports = list(PORT_RANGE)
    offset = (start if start is not None else os.getpid()) % len(ports)
    for port in ports[offset:] + ports[:offset]:
        with _lock:
            if port in _taken:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _taken.add(port)
            return port
    raise RuntimeError("no free port in 7000-7999")


def http_status(url: str, timeout: float = 5.0) -> int:
    """Status of a GET, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URLs we built)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return 0


class Process:
    """A server in its own session, with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_http(self, url: str, timeout: float, interval: float = 0.05) -> float:
        """Seconds from start until url answers 200; raises if it never does."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if not self.alive():
                raise RuntimeError(
                    f"{self.name} exited with {self.popen.returncode}; log: {self.log_path}\n"
                    + self.log_tail()
                )
            if http_status(url, timeout=2.0) == 200:
                return time.perf_counter() - self.started
            time.sleep(interval)
        raise RuntimeError(
            f"{self.name}: {url} not healthy after {timeout:.0f} s; log: {self.log_path}\n"
            + self.log_tail()
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL to the whole session if it will not go."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        # Anything the session left behind (a stray grandchild) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._log.close()
        return self.popen.returncode


# ---- memory ---------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                # The command name may hold spaces and parentheses: split after the last ')'.
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    children = _children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def process_memory_kb(pid: int) -> tuple[int, str] | None:
    """(kB, "pss" or "rss") of one process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]), "pss"
    except (FileNotFoundError, ProcessLookupError):
        if not os.path.exists(f"/proc/{pid}"):
            return None
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]), "rss"
    except OSError:
        return None
    return None


@dataclass
class TreeMemory:
    kb: int
    processes: int
    kind: str

    @property
    def mb(self) -> float:
        return self.kb / 1024


def tree_memory(root: int) -> TreeMemory:
    total, count, kinds = 0, 0, set()
    for pid in process_tree(root):
        measured = process_memory_kb(pid)
        if measured is None:
            continue
        total += measured[0]
        count += 1
        kinds.add(measured[1])
    return TreeMemory(total, count, "pss" if kinds == {"pss"} else "rss" if kinds else "none")


@dataclass
class MemorySampler:
    """Samples a process tree's memory in a thread; marks say which phase is on."""

    root: int
    interval: float = 0.25
    samples: list[tuple[float, float, int, str]] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    origin: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"mem-{self.root}")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            memory = tree_memory(self.root)
            if memory.processes:
                self.samples.append(
                    (time.perf_counter() - self.origin, memory.mb, memory.processes, memory.kind)
                )
            self._stop.wait(self.interval)

    def mark(self, label: str) -> float:
        moment = time.perf_counter() - self.origin
        self.marks.append((moment, label))
        return moment

    def peak_between(self, start: float, end: float) -> float | None:
        values = [mb for t, mb, _, _ in self.samples if start <= t <= end]
        return max(values) if values else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def kind(self) -> str:
        kinds = {kind for *_, kind in self.samples}
        return kinds.pop() if len(kinds) == 1 else "mixed" if kinds else "none"


def listener_pid(port: int) -> int | None:
    """The pid of a process listening on a TCP port, from /proc (no lsof needed)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows)
            for row in rows:
                cols = row.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    if not inodes:
        return None
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path) in inodes:
                        return int(entry.name)
    return None


def parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as raw:
            return raw.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def find_dyno_root(port: int) -> int | None:
    """The outer bin/dyno of the app listening on a port, if it runs on this machine."""
    pid = listener_pid(port)
    found = None
    while pid and pid > 1:
        if "bin/dyno" in cmdline(pid):
            found = pid
        pid = parent_pid(pid)
    return found
