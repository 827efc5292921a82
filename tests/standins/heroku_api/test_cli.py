"""`stop` cleans up only what the stand-in started."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.standins.heroku_api.client import REPO_ROOT


def test_stop_kills_recorded_leftovers_inside_the_state_dir_only() -> None:
    state = Path(tempfile.mkdtemp(prefix="heroku-standin-cli-", dir="/tmp"))
    elsewhere = Path(tempfile.mkdtemp(prefix="heroku-standin-cli-other-", dir="/tmp"))
    ours = subprocess.Popen(["sleep", "300"], cwd=state, start_new_session=True)
    theirs = subprocess.Popen(["sleep", "300"], cwd=elsewhere, start_new_session=True)
    try:
        (state / "processes.json").write_text(
            json.dumps({"process_groups": [ours.pid, theirs.pid]})
        )
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.standins.heroku_api",
                "stop",
                "--state-dir",
                str(state),
                "--remove",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert f"killed leftovers: [{ours.pid}]" in done.stdout
        assert ours.wait(10) == -9
        assert theirs.poll() is None  # a recorded number that is not ours: left alone
        assert not state.exists()
    finally:
        theirs.kill()
        theirs.wait()
        ours.kill()
        subprocess.run(["rm", "-rf", str(elsewhere)], check=False)
