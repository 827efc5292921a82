"""tests/apps/minimal: a second app that follows the contract (molecule/own_app deploys it)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.unit.conftest import load_module

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = ROOT / "tests" / "apps" / "minimal"


def test_it_carries_the_outer_layer_as_copied_not_a_variant():
    assert (MINIMAL / "bin" / "dyno").read_bytes() == (ROOT / "bin" / "dyno").read_bytes()
    assert os.access(MINIMAL / "bin" / "dyno", os.X_OK)


def test_its_pins_are_a_subset_of_this_repositorys():
    def pins(path: Path) -> set[str]:
        return {line for line in path.read_text().splitlines() if "==" in line}

    assert pins(MINIMAL / "requirements.txt") <= pins(ROOT / "requirements.txt")


def test_it_follows_the_contract_git_tracked_files_included(capsys):
    import json

    import pytest
    from ansible.module_utils.testing import patch_module_args

    module = load_module("app_contract")
    with patch_module_args({"path": str(MINIMAL), "mode": "split"}), pytest.raises(SystemExit):
        module.main()
    result = json.loads(capsys.readouterr().out)
    assert result["problems"] == []
    assert result["manage_py"] == "src/manage.py"


def test_django_deploy_checks_pass_with_what_the_roles_set(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "ALLOWED_HOSTS": "example.org",
    }
    run = subprocess.run(
        [sys.executable, "src/manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=MINIMAL,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
