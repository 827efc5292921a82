"""Load the heroku_app role's module_utils and modules, and run them against a fake API."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args

ROLE = Path(__file__).resolve().parents[3] / "roles" / "heroku_app"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# Ansible puts a role's module_utils/ under ansible.module_utils at run time; do the same.
heroku_api = _load("ansible.module_utils.heroku_api", ROLE / "module_utils" / "heroku_api.py")
import ansible.module_utils as _mu  # noqa: E402

_mu.heroku_api = heroku_api

from fake_heroku import API, TOKEN, FakeHeroku  # noqa: E402


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def api():
    return heroku_api


@pytest.fixture
def fake_time(monkeypatch):
    t = FakeTime()
    monkeypatch.setattr(heroku_api, "SLEEP", t.sleep)
    monkeypatch.setattr(heroku_api, "CLOCK", t.clock)
    return t


@pytest.fixture
def fake(monkeypatch, fake_time):
    f = FakeHeroku()
    monkeypatch.setattr(heroku_api, "TRANSPORT", f)
    return f


@pytest.fixture
def client(fake, fake_time):
    return heroku_api.HerokuClient(
        api_url=API,
        token=TOKEN,
        transport=fake,
        sleep=fake_time.sleep,
        wall_clock=fake_time.clock,
    )


_modules: dict[str, object] = {}


def load_module(name: str):
    if name not in _modules:
        _modules[name] = _load(f"heroku_role_{name}", ROLE / "library" / f"{name}.py")
    return _modules[name]


@pytest.fixture
def run_module(fake, capsys, monkeypatch):
    """Run library/<name>.py's main() with args; return (parsed result, raw stdout)."""
    monkeypatch.delenv("HEROKU_API_KEY", raising=False)

    def run(name: str, check_mode: bool = False, diff: bool = True, **args):
        args.setdefault("api_url", API)
        args.setdefault("api_key", TOKEN)
        if args["api_key"] is None:  # None: leave it out, as a play relying on the env would
            del args["api_key"]
        args.setdefault("app", "double-boiler")
        args = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
        module = load_module(name)
        with patch_module_args(args), pytest.raises(SystemExit):
            module.main()
        out = capsys.readouterr().out
        return json.loads(out), out

    return run
