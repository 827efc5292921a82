"""Load the Dokku roles' modules the way Ansible does, with a fake `dokku` behind them."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
APP_ROLE = ROOT / "roles" / "dokku_app"
HOST_ROLE = ROOT / "roles" / "dokku_host"

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _load(name: str, path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# Ansible ships a role's module_utils/<name>.py to the host as ansible.module_utils.<name>.
import ansible.module_utils  # noqa: E402

dokku_cli = _load("ansible.module_utils.dokku_cli", APP_ROLE / "module_utils" / "dokku_cli.py")
ansible.module_utils.dokku_cli = dokku_cli  # type: ignore[attr-defined]


def load_module(role: str, name: str):  # type: ignore[no-untyped-def]
    base = APP_ROLE if role == "app" else HOST_ROLE
    return _load(f"dokku_test_{name}", base / "library" / f"{name}.py")


from fake_dokku import FakeDokku  # noqa: E402


@pytest.fixture
def fake() -> FakeDokku:
    return FakeDokku()


@pytest.fixture
def cli(fake: FakeDokku):  # type: ignore[no-untyped-def]
    return dokku_cli.DokkuCli(fake, "dokku")


@pytest.fixture
def run_main(monkeypatch, capsys):  # type: ignore[no-untyped-def]
    """Run a module's main() against a FakeDokku; return (exit code, parsed JSON output)."""
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    def runner(module, args: dict, fake: FakeDokku | None, check_mode: bool = False):  # type: ignore[no-untyped-def]
        def get_bin_path(self, arg, required=False, opt_dirs=None):  # type: ignore[no-untyped-def]
            return "/usr/bin/dokku" if fake is not None else None

        def run_command(self, argv, data=None, binary_data=False, check_rc=False, **kw):  # type: ignore[no-untyped-def]
            assert isinstance(argv, list), "dokku must be run without a shell"
            return fake(argv, data)

        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        if check_mode:
            args = {**args, "_ansible_check_mode": True}
        with patch_module_args(args), pytest.raises(SystemExit) as exc:
            module.main()
        out = capsys.readouterr().out
        return exc.value.code, out, json.loads(out)

    return runner
