"""Unit tests of the double_boiler.paas collection, imported the way Ansible imports it.

Ansible's collection loader is installed on the collections path that ansible.cfg names
(as ansible-test does for a collection's unit tests), so a test imports
``ansible_collections.double_boiler.paas.plugins.modules.<name>`` and the modules' own
``ansible_collections...module_utils`` imports resolve as on a controller.
"""

from __future__ import annotations

import configparser
import importlib
import json
from pathlib import Path
from types import ModuleType

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

ROOT = Path(__file__).resolve().parents[2]
_cfg = configparser.ConfigParser()
_cfg.read(ROOT / "ansible.cfg")
COLLECTIONS_PATH = ROOT / _cfg["defaults"]["collections_path"]
COLLECTION = "ansible_collections.double_boiler.paas"
PLUGINS = COLLECTIONS_PATH / "ansible_collections" / "double_boiler" / "paas" / "plugins"

_AnsibleCollectionFinder(paths=[str(COLLECTIONS_PATH)])._install()


def load_module(name: str) -> ModuleType:
    """A module of the collection: ``load_module("heroku_app")``."""
    return importlib.import_module(f"{COLLECTION}.plugins.modules.{name}")


def load_module_utils(name: str) -> ModuleType:
    return importlib.import_module(f"{COLLECTION}.plugins.module_utils.{name}")


@pytest.fixture(autouse=True)
def as_on_a_target(monkeypatch):
    """Run modules as Ansible runs them: on a target, not in the controller's process.

    Importing any controller code (ansible._internal: the CLI, the plugin loader...) in the
    same pytest process flags it as the controller, and AnsibleModule.warn() then prints
    through Display instead of returning the warning in the module's result.
    """
    import ansible.module_utils._internal as internal
    from ansible.module_utils.common import warnings

    monkeypatch.setattr(internal, "is_controller", False)
    warnings._global_warnings.clear()


MODULE_NAMES = sorted(p.stem for p in (PLUGINS / "modules").glob("*.py"))

heroku_api = load_module_utils("heroku_api")
dokku_cli = load_module_utils("dokku_cli")


# -- Heroku: a fake Platform API and a clock that only moves when the code sleeps ----------


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def api() -> ModuleType:
    return heroku_api


@pytest.fixture
def fake_time(monkeypatch):
    t = FakeTime()
    monkeypatch.setattr(heroku_api, "SLEEP", t.sleep)
    monkeypatch.setattr(heroku_api, "CLOCK", t.clock)
    return t


@pytest.fixture
def heroku(monkeypatch, fake_time):
    from tests.support.fake_heroku import FakeHeroku

    f = FakeHeroku()
    monkeypatch.setattr(heroku_api, "TRANSPORT", f)
    return f


@pytest.fixture
def client(heroku, fake_time):
    from tests.support.fake_heroku import API, TOKEN

    return heroku_api.HerokuClient(
        api_url=API,
        token=TOKEN,
        transport=heroku,
        sleep=fake_time.sleep,
        wall_clock=fake_time.clock,
    )


@pytest.fixture
def run_module(heroku, capsys, monkeypatch):
    """Run a heroku_* module's main() with args; return (parsed result, raw stdout)."""
    from tests.support.fake_heroku import API, TOKEN

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


# -- Dokku: a fake `dokku` command behind the modules' run_command -------------------------


@pytest.fixture
def dokku():
    from tests.support.fake_dokku import FakeDokku

    return FakeDokku()


@pytest.fixture
def cli(dokku):
    return dokku_cli.DokkuCli(dokku, "dokku")


@pytest.fixture
def run_main(monkeypatch, capsys):
    """Run a module's main() against a FakeDokku; return (exit code, stdout, parsed JSON)."""
    from ansible.module_utils import basic

    def runner(module, args: dict, fake, check_mode: bool = False):
        def get_bin_path(self, arg, required=False, opt_dirs=None):
            return "/usr/bin/dokku" if fake is not None else None

        def run_command(self, argv, data=None, binary_data=False, check_rc=False, **kw):
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
