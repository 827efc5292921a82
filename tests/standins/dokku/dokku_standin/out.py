"""Dokku's output conventions (plugins/common/log.go and plugins/common/functions).

Dokku prints headings as `=====> `, steps as `-----> `, details indented by seven spaces,
and warnings/errors on stderr as ` !     `. The `*_quiet` variants print nothing when quiet
output is on: with `--quiet` anywhere on the command line or DOKKU_QUIET_OUTPUT in the
environment. Note that a missing terminal does NOT quiet the subcommands: the `dokku`
script sets DOKKU_QUIET_OUTPUT=1 without exporting it when `tty` says "not a tty", so only
its own help text is affected; `config:set` run by Ansible still echoes the values it sets.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


class DokkuExit(Exception):
    """Stop the command with an exit code (messages are printed before raising)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def quiet() -> bool:
    return bool(os.environ.get("DOKKU_QUIET_OUTPUT"))


@contextlib.contextmanager
def quieted() -> Iterator[None]:
    """`DOKKU_QUIET_OUTPUT=1 <function>` for one call, as Dokku's bash does."""
    before = os.environ.get("DOKKU_QUIET_OUTPUT")
    os.environ["DOKKU_QUIET_OUTPUT"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["DOKKU_QUIET_OUTPUT"]
        else:
            os.environ["DOKKU_QUIET_OUTPUT"] = before


def _print(text: str, stream=None) -> None:  # type: ignore[no-untyped-def]
    stream = stream or sys.stdout
    stream.write(text + "\n")
    stream.flush()


def log(text: str) -> None:
    _print(text)


def log_quiet(text: str) -> None:
    if not quiet():
        _print(text)


def info1(text: str) -> None:
    _print(f"-----> {text}")


def info1_quiet(text: str) -> None:
    if not quiet():
        info1(text)


def info2(text: str) -> None:
    _print(f"=====> {text}")


def info2_quiet(text: str) -> None:
    if not quiet():
        info2(text)


def verbose(text: str) -> None:
    _print(f"       {text}")


def verbose_quiet(text: str) -> None:
    if not quiet():
        verbose(text)


def exclaim(text: str) -> None:
    """` !     ` on stdout (LogExclaim)."""
    _print(f" !     {text}")


def warn(text: str) -> None:
    _print(f" !     {text}", sys.stderr)


def warn_quiet(text: str) -> None:
    if not quiet():
        warn(text)


def stderr(text: str) -> None:
    _print(text, sys.stderr)


def fail(text: str, code: int = 1) -> DokkuExit:
    """Print ` !     <text>` on stderr and return the exit to raise (dokku_log_fail)."""
    warn(text)
    return DokkuExit(code)


def fail_quiet(text: str, code: int = 1) -> DokkuExit:
    if not quiet():
        warn(text)
    return DokkuExit(code)


def right_pad(text: str, length: int) -> str:
    return text.ljust(length)


def stream_verbose(lines: str | bytes) -> None:
    """Indent a child process's output the way Dokku shows build output."""
    if isinstance(lines, bytes):
        lines = lines.decode("utf-8", "replace")
    for line in lines.splitlines():
        if line.strip():
            verbose(line.rstrip())
