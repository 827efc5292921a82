"""Unit tests for the local_app role's modules (local_secret, local_dyno)."""

import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[3] / "roles" / "local_app" / "library"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, LIBRARY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_module(name: str, args: dict, check_mode: bool = False) -> dict:
    """Run a module the way Ansible does: a process reading its arguments as JSON."""
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}
    result = subprocess.run(
        [sys.executable, str(LIBRARY / f"{name}.py")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(result.stdout)


def test_secret_is_created_once_private_and_never_returned(tmp_path):
    path = tmp_path / "secret_key"
    first = run_module("local_secret", {"path": str(path)})
    assert first["changed"] is True
    value = path.read_text().strip()
    assert len(value) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert value not in json.dumps(first)
    second = run_module("local_secret", {"path": str(path)})
    assert second["changed"] is False
    assert path.read_text().strip() == value


def test_secret_check_mode_writes_nothing(tmp_path):
    path = tmp_path / "secret_key"
    result = run_module("local_secret", {"path": str(path)}, check_mode=True)
    assert result["changed"] is True
    assert not path.exists()


def test_secret_rotates_only_when_asked(tmp_path):
    path = tmp_path / "secret_key"
    run_module("local_secret", {"path": str(path)})
    before = path.read_text()
    assert run_module("local_secret", {"path": str(path), "rotate": True})["changed"] is True
    assert path.read_text() != before


def test_secret_readable_by_others_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("x" * 60)
    os.chmod(path, 0o644)
    result = run_module("local_secret", {"path": str(path)})
    assert result["failed"] is True
    assert "chmod 600" in result["msg"]


def test_env_file_parsing_and_errors(tmp_path):
    dyno = load("local_dyno")
    env = tmp_path / "env"
    env.write_text("# comment\n\nPORT=5000\nALLOWED_HOSTS=a,b\nURL=postgres://u:p@h/d?x=1\n")
    assert dyno.read_env_file(str(env)) == {
        "PORT": "5000",
        "ALLOWED_HOSTS": "a,b",
        "URL": "postgres://u:p@h/d?x=1",
    }
    env.write_text("NOT AN ASSIGNMENT\n")
    with pytest.raises(ValueError, match="env:1 is not KEY=VALUE"):
        dyno.read_env_file(str(env))


def test_fingerprint_follows_the_app_and_its_config(tmp_path):
    dyno = load("local_dyno")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "views.py").write_text("a = 1\n")
    (tmp_path / "Procfile").write_text("web: bin/dyno\n")
    config = tmp_path / "env"
    config.write_text("PORT=5000\n")
    first = dyno.fingerprint(str(tmp_path), [str(config)])
    (tmp_path / "app" / "db.sqlite3").write_text("data changes all the time")
    assert dyno.fingerprint(str(tmp_path), [str(config)]) == first
    (tmp_path / "app" / "views.py").write_text("a = 2\n")
    second = dyno.fingerprint(str(tmp_path), [str(config)])
    assert second != first
    config.write_text("PORT=5001\n")
    assert dyno.fingerprint(str(tmp_path), [str(config)]) != second


def test_stopped_with_nothing_running_changes_nothing(tmp_path):
    result = run_module(
        "local_dyno",
        {
            "source_dir": str(tmp_path),
            "state_dir": str(tmp_path),
            "venv_dir": str(tmp_path / "venv"),
            "state": "stopped",
        },
    )
    assert (result["changed"], result["action"]) == (False, "unchanged")


def test_a_stale_pid_file_is_not_trusted(tmp_path):
    dyno = load("local_dyno")
    (tmp_path / "dyno.pid").write_text(json.dumps({"pid": os.getpid(), "start_time": "1"}))
    result = run_module(
        "local_dyno",
        {
            "source_dir": str(tmp_path),
            "state_dir": str(tmp_path),
            "venv_dir": str(tmp_path / "venv"),
            "state": "stopped",
        },
    )
    # The pid is alive (it is this test) but started at another time: not ours.
    assert result["action"] == "unchanged"
    assert dyno.start_time(os.getpid()) is not None
