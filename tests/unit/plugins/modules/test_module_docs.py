"""Every module of the collection: ansible-doc renders it (doc fragments merged), its
documented options are exactly its argument_spec, it has EXAMPLES and RETURN, and its
check_mode / diff_mode attributes say what the code does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.conftest import COLLECTIONS_PATH, MODULE_NAMES, ROOT, load_module

FQCN = "double_boiler.paas."


@pytest.fixture(scope="module")
def docs() -> dict:
    """What `ansible-doc --json` says of every module, in one run."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-doc")), "--json", "-t", "module"]
        + [FQCN + name for name in MODULE_NAMES],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH)},
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    return json.loads(result.stdout)


class _Captured(Exception):
    pass


def argument_spec_of(module, monkeypatch) -> dict:
    from ansible.module_utils import basic

    seen: dict = {}

    def init(self, argument_spec, **kwargs):
        seen.update(argument_spec=argument_spec, **kwargs)
        raise _Captured

    monkeypatch.setattr(basic.AnsibleModule, "__init__", init)
    with pytest.raises(_Captured):
        module.main()
    return seen


def test_the_collection_has_every_module_the_roles_call() -> None:
    called = set()
    for tasks in (ROOT / "roles").glob("*/tasks/*.yml"):
        for line in tasks.read_text().splitlines():
            word = line.strip().removeprefix("- ").rstrip(":")
            if word.startswith(FQCN):
                called.add(word.removeprefix(FQCN))
    assert called and called <= set(MODULE_NAMES)


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_documentation_matches_argument_spec(name, docs, monkeypatch) -> None:
    doc = docs[FQCN + name]["doc"]
    assert doc["module"] == name
    assert docs[FQCN + name]["examples"].strip(), f"{name} has no EXAMPLES"
    examples = yaml.safe_load(docs[FQCN + name]["examples"])
    used = json.dumps(examples)
    assert FQCN + name in used, f"{name}'s EXAMPLES do not call it by its FQCN"
    assert docs[FQCN + name]["return"], f"{name} has no RETURN"
    seen = argument_spec_of(load_module(name), monkeypatch)
    spec = seen["argument_spec"]
    assert set(doc["options"]) == set(spec)
    for option, declared in spec.items():
        documented = doc["options"][option]
        assert documented["type"] == declared.get("type", "str"), option
        assert documented.get("required", False) == declared.get("required", False), option
        if "default" in declared:
            assert documented.get("default") == declared["default"], option
        if "choices" in declared:
            assert documented["choices"] == declared["choices"], option
        if declared.get("no_log"):
            assert option in ("api_key", "secrets", "secret_config"), option


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_attributes_say_what_the_module_supports(name, docs, monkeypatch) -> None:
    attributes = docs[FQCN + name]["doc"]["attributes"]
    assert set(attributes) >= {"check_mode", "diff_mode"}
    seen = argument_spec_of(load_module(name), monkeypatch)
    check = attributes["check_mode"]["support"]
    assert (check != "none") == bool(seen.get("supports_check_mode")), name
    source = (
        COLLECTIONS_PATH / "ansible_collections/double_boiler/paas/plugins/modules" / f"{name}.py"
    ).read_text()
    returns_diff = "diff=" in source or '"diff"' in source or "'diff'" in source
    if attributes["diff_mode"]["support"] == "full":
        assert returns_diff, f"{name} claims diff_mode but never returns a diff"
