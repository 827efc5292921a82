"""heroku_features: preboot and runtime-dyno-metadata as a variable."""

from __future__ import annotations


def test_features_are_switched_only_when_they_differ(run_module, heroku):
    heroku.add_app()
    result, _ = run_module(
        "heroku_features", features={"preboot": True, "runtime-dyno-metadata": False}
    )
    assert result["changed"] is True and result["updated"] == ["preboot"]
    assert heroku.api_writes() == ["PATCH /apps/double-boiler/features/preboot"]
    assert heroku.writes()[0].json == {"enabled": True}
    heroku.calls.clear()
    again, _ = run_module("heroku_features", features={"preboot": "yes"})
    assert again["changed"] is False and heroku.writes() == []


def test_an_unknown_feature_fails_before_any_change(run_module, heroku):
    heroku.add_app()
    result, _ = run_module("heroku_features", features={"preboot": True, "warp-drive": True})
    assert result["failed"] is True and "warp-drive" in result["msg"]
    assert heroku.writes() == []


def test_check_mode_writes_nothing(run_module, heroku):
    heroku.add_app()
    result, _ = run_module("heroku_features", check_mode=True, features={"preboot": True})
    assert result["changed"] is True and heroku.writes() == []
