"""What several of these test files share: the role's Heroku inputs, a module run as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.unit.conftest import COLLECTIONS_PATH, PLUGINS

LIBRARY = PLUGINS / "modules"

PLANS = ["heroku-postgresql:essential-0", "heroku-redis:mini"]
CONFIG = {"DOUBLE_BOILER_MODE": "one-dyno", "WEB_CONCURRENCY": "2", "ALLOWED_HOSTS": "x.test"}


def run_module(name: str, args: dict, check_mode: bool = False) -> dict:
    """Run a module the way Ansible does: a process reading its arguments as JSON.

    Not conftest's ``run_module`` fixture (main() in this process, for the heroku_* modules).
    """
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}
    result = subprocess.run(
        [sys.executable, str(LIBRARY / f"{name}.py")],
        # What AnsiballZ gives a module: its collection importable.
        env={**os.environ, "PYTHONPATH": str(COLLECTIONS_PATH)},
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(result.stdout)
