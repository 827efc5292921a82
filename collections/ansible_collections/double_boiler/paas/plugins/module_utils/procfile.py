# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Reading a Procfile the way the platforms and honcho do (app_contract, local_dyno)."""

from __future__ import annotations

import os
import re
import shlex

# Heroku's Procfile format, as honcho parses it: `<process type>: <command>`.
PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def read_procfile(path: str) -> dict[str, str] | None:
    """Process type -> command; None when the file cannot be read as text."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    processes = {}
    for line in lines:
        match = PROCFILE_LINE.match(line.strip())
        if match:
            processes[match.group(1)] = match.group(2).strip()
    return processes


def command_words(command: str) -> list[str]:
    """The command's words without a leading `exec`; [] when it does not parse."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return []
    return argv[1:] if argv[:1] == ["exec"] else argv


def manage_py(release_command: str) -> str | None:
    """The manage.py a release command runs (relative to the checkout), if any."""
    return next(
        (w for w in command_words(release_command) if os.path.basename(w) == "manage.py"), None
    )
