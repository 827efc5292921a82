"""local_secret: a private secret file, created once, never returned."""

import json
import os
import stat

from tests.unit.plugins.modules._helpers import run_module


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
