"""Load the source_archive module from the role's library/ and run it in-process."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

LIBRARY = Path(__file__).resolve().parents[3] / "roles" / "source_archive" / "library"


def _load():
    spec = importlib.util.spec_from_file_location("source_archive", LIBRARY / "source_archive.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sa():
    return _load()


@pytest.fixture
def run_module(sa, capsys):
    """Run the module's main() with args; return its JSON result (failed or not)."""

    def run(check_mode: bool = False, diff: bool = False, **args):
        args = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
        with patch_module_args(args), pytest.raises(SystemExit):
            sa.main()
        return json.loads(capsys.readouterr().out)

    return run


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small git repository with a committed tree."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.email", "test@example.invalid")
    git(root, "config", "user.name", "test")
    (root / "app").mkdir()
    (root / "app" / "main.py").write_text("print('hi')\n")
    (root / "bin").mkdir()
    (root / "bin" / "run").write_text("#!/bin/sh\necho run\n")
    (root / "bin" / "run").chmod(0o755)
    (root / "Procfile").write_text("web: bin/run\n")
    (root / "docs").mkdir()
    (root / "docs" / "big.pdf").write_bytes(b"%PDF" * 100)
    (root / "untracked.txt").write_text("not in git\n")
    git(root, "add", "app", "bin", "Procfile", "docs")
    git(root, "commit", "-q", "-m", "initial")
    return root
