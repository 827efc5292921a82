"""The real Heroku CLI (npm package `heroku`, pinned in tests/tooling/heroku-cli) as a client.

`heroku_cli()` installs it once (tests/tooling/heroku-cli/install) and returns a runner
that points it at an API with HEROKU_HOST (the CLI takes an http:// URL on localhost or
127.0.0.1: @heroku-cli/command lib/vars.js `isValidHerokuHost`, LOCALHOST_DOMAINS) and
HEROKU_API_KEY (any token the API accepts; the CLI sends it as a Bearer token).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL = REPO_ROOT / "tests" / "tooling" / "heroku-cli" / "install"


@dataclass
class HerokuCLI:
    executable: str
    api_url: str
    token: str
    home: Path

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),  # the CLI's config and cache, kept out of the user's
            "HEROKU_HOST": self.api_url,
            "HEROKU_API_KEY": self.token,
            "HEROKU_SKIP_NEW_VERSION_CHECK": "true",
            "HEROKU_DISABLE_AUTOUPDATE": "1",
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "LANG": "C.UTF-8",
        }
        return subprocess.run(
            [self.executable, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        if done.returncode != 0:
            raise AssertionError(
                f"heroku {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


def heroku_cli(api_url: str, token: str) -> HerokuCLI:
    """Install the pinned CLI if needed (npm ci, about a minute the first time)."""
    done = subprocess.run(
        ["bash", str(INSTALL)], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"installing the Heroku CLI failed:\n{done.stdout}\n{done.stderr}")
    home = Path(tempfile.mkdtemp(prefix="heroku-cli-home-"))
    return HerokuCLI(done.stdout.strip().splitlines()[-1], api_url, token, home)
