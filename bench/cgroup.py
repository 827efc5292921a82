"""A memory-limited cgroup for one dyno: what a platform's dyno has around it.

Heroku's dynos (cgroup v1) and Docker containers (v2 today) limit memory with a
cgroup; bin/dyno reads that limit to size itself. The benchmark makes a child of
its own cgroup with the limit and starts the dyno in it, so the dyno sees the
limit the way it would on the platform. Needs write access to the cgroup tree
(root, or a delegated v2 subtree); without it the sizing section is skipped.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path


def _own_groups() -> dict[str, str]:
    """controllers ("" for v2) -> this process's cgroup path."""
    groups = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        groups[controllers] = path
    return groups


@dataclass
class MemoryCgroup:
    path: Path
    version: int
    limit_mb: int

    @classmethod
    def create(cls, name: str, limit_mb: int) -> MemoryCgroup:
        """A new child cgroup of ours limited to limit_mb; OSError when we may not."""
        groups = _own_groups()
        limit = str(limit_mb * 2**20)
        v1 = next((path for names, path in groups.items() if "memory" in names.split(",")), None)
        if v1 is not None and Path("/sys/fs/cgroup/memory").is_dir():
            path = Path("/sys/fs/cgroup/memory" + v1.rstrip("/")) / name
            path.mkdir()
            (path / "memory.limit_in_bytes").write_text(limit)
            # No swap beyond the limit either (where swap accounting is on).
            with contextlib.suppress(OSError):
                (path / "memory.memsw.limit_in_bytes").write_text(limit)
            return cls(path, 1, limit_mb)
        if "" in groups and Path("/sys/fs/cgroup/cgroup.controllers").exists():
            path = Path("/sys/fs/cgroup" + groups[""].rstrip("/")) / name
            path.mkdir()
            (path / "memory.max").write_text(limit)
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
            return cls(path, 2, limit_mb)
        raise OSError("no cgroup memory controller found")

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def wrap(self, argv: list[str]) -> list[str]:
        """argv run inside this cgroup (the shell moves itself in, then execs)."""
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs_file), *argv]

    def peak_mb(self) -> float | None:
        """The cgroup's own peak charge (page cache included), where the kernel keeps one."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        with contextlib.suppress(OSError, ValueError):
            return int((self.path / name).read_text()) / 2**20
        return None

    def oom_kills(self) -> int:
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        with contextlib.suppress(OSError, ValueError):
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def remove(self) -> None:
        """Remove the group once its processes are gone (they are stopped first)."""
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        with contextlib.suppress(OSError):
            for pid in self.procs_file.read_text().split():
                os.kill(int(pid), 9)
            self.path.rmdir()
