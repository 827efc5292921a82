"""Each module's DOCUMENTATION parses and declares exactly the options its argument_spec has."""

from __future__ import annotations

import pytest
import yaml
from conftest import APP_ROLE, HOST_ROLE, load_module

MODULES = [("app", p.stem) for p in sorted((APP_ROLE / "library").glob("*.py"))] + [
    ("host", p.stem) for p in sorted((HOST_ROLE / "library").glob("*.py"))
]


class _Captured(Exception):
    pass


def argument_spec_of(module, monkeypatch) -> dict:  # type: ignore[no-untyped-def]
    from ansible.module_utils import basic

    seen: dict = {}

    def init(self, argument_spec, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(argument_spec=argument_spec, **kwargs)
        raise _Captured

    monkeypatch.setattr(basic.AnsibleModule, "__init__", init)
    with pytest.raises(_Captured):
        module.main()
    return seen


@pytest.mark.parametrize(("role", "name"), MODULES)
def test_documentation_matches_argument_spec(role, name, monkeypatch) -> None:
    module = load_module(role, name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == name
    yaml.safe_load(module.EXAMPLES)
    returns = yaml.safe_load(module.RETURN)
    assert isinstance(returns, dict) and returns
    seen = argument_spec_of(module, monkeypatch)
    assert seen["supports_check_mode"] is True
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
