"""heroku_formation: one batch of what differs; the deploy-time warning when Eco dynos sleep."""

from __future__ import annotations

import pytest
from ansible.module_utils.common import warnings


@pytest.fixture(autouse=True)
def no_warnings_from_earlier_tests():
    # AnsibleModule.warn() collects into one list per process
    warnings._global_warnings.clear()


def _app(heroku):
    heroku.add_app()
    heroku.formation["double-boiler"]["web"] = {
        "type": "web",
        "quantity": 1,
        "size": "Basic",
        "dyno_size": {"id": None, "name": "Basic"},
    }


def test_eco_web_dynos_warn_that_jobs_stop_while_they_sleep(run_module, heroku):
    _app(heroku)
    result, _ = run_module(
        "heroku_formation", formation=[{"type": "web", "quantity": 1, "size": "Eco"}]
    )
    assert "eco-dyno-hours" in str(result["warnings"])
    # the warning comes on every run, not only when the size changes
    again, _ = run_module(
        "heroku_formation", formation=[{"type": "web", "quantity": 1, "size": "eco"}]
    )
    assert again["changed"] is False and "sleep" in str(again["warnings"])


def test_basic_dynos_do_not_warn(run_module, heroku):
    _app(heroku)
    result, _ = run_module(
        "heroku_formation", formation=[{"type": "web", "quantity": 1, "size": "Basic"}]
    )
    assert not result.get("warnings")


def _released_app(heroku):
    heroku.add_app()
    for ptype, qty in (("web", 1), ("worker", 1)):
        heroku.formation["double-boiler"][ptype] = {
            "type": ptype,
            "quantity": qty,
            "size": "Basic",
            "dyno_size": {"id": None, "name": "Basic"},
        }


def test_formation_one_batch_of_what_differs(run_module, heroku):
    _released_app(heroku)
    result, _ = run_module(
        "heroku_formation",
        formation=[
            {"type": "web", "quantity": 2, "size": "Basic"},
            {"type": "worker", "quantity": 0},
        ],
    )
    assert result["changed"] is True
    assert heroku.api_writes() == ["PATCH /apps/double-boiler/formation"]
    assert heroku.writes()[0].json == {
        "updates": [{"type": "web", "quantity": 2}, {"type": "worker", "quantity": 0}]
    }
    heroku.calls.clear()
    again, _ = run_module(
        "heroku_formation",
        formation=[
            {"type": "web", "quantity": 2, "size": "basic"},
            {"type": "worker", "quantity": 0},
        ],
    )
    assert again["changed"] is False and heroku.writes() == []


def test_formation_size_change_uses_dyno_size(run_module, heroku):
    _released_app(heroku)
    run_module(
        "heroku_formation", formation=[{"type": "web", "quantity": 1, "size": "Standard-1X"}]
    )
    assert heroku.writes()[0].json == {
        "updates": [{"type": "web", "dyno_size": {"name": "Standard-1X"}}]
    }


def test_formation_undeclared_type(run_module, heroku):
    heroku.add_app()
    heroku.formation["double-boiler"]["web"] = {"type": "web", "quantity": 1, "size": "Basic"}
    ok, _ = run_module("heroku_formation", formation=[{"type": "worker", "quantity": 0}])
    assert ok["changed"] is False
    bad, _ = run_module("heroku_formation", formation=[{"type": "worker", "quantity": 1}])
    assert bad["failed"] is True and "Procfile" in bad["msg"]
    assert heroku.writes() == []


def test_formation_check_mode(run_module, heroku):
    _released_app(heroku)
    result, _ = run_module(
        "heroku_formation", check_mode=True, formation=[{"type": "web", "quantity": 3}]
    )
    assert result["changed"] is True and heroku.writes() == []
    assert result["updates"] == [{"type": "web", "quantity": 3}]
