"""heroku_app: creation, stack and region, inputs, the token, team apps, and creation retried
only after reading back (issue 10 item 6)."""

from __future__ import annotations

import pytest

from tests.support.fake_heroku import TOKEN, Fault


def test_an_app_is_created_in_its_team(run_module, heroku):
    result, _ = run_module("heroku_app", team="my-team")
    assert result["changed"] is True
    assert heroku.api_writes() == ["POST /teams/apps"]
    assert heroku.writes()[0].json["team"] == "my-team"
    assert heroku.apps["double-boiler"]["team"]["name"] == "my-team"
    heroku.calls.clear()
    again, _ = run_module("heroku_app", team="my-team")
    assert again["changed"] is False and heroku.writes() == []


def test_an_app_owned_elsewhere_is_an_error_not_a_move(run_module, heroku):
    heroku.add_app()
    result, _ = run_module("heroku_app", team="my-team")
    assert result["failed"] is True and "apps:transfer" in result["msg"]
    assert heroku.writes() == []


def test_a_create_answered_503_after_the_work_is_read_back_not_repeated(run_module, heroku):
    heroku.faults.append(Fault("POST", "/apps$", 503, after=True))
    result, _ = run_module("heroku_app")
    assert result.get("failed") is not True, result.get("msg")
    assert [c.method for c in heroku.calls] == ["GET", "POST", "GET"]


def test_app_is_created_when_absent_then_left_alone(run_module, heroku):
    result, _ = run_module("heroku_app", region="eu", stack="heroku-24")
    assert result["changed"] is True
    assert heroku.api_writes() == ["POST /apps"]
    assert heroku.writes()[0].json == {
        "name": "double-boiler",
        "region": "eu",
        "stack": "heroku-24",
    }
    assert result["web_url"].startswith("https://double-boiler")
    heroku.calls.clear()
    again, _ = run_module("heroku_app", region="eu", stack="heroku-24")
    assert again["changed"] is False
    assert heroku.writes() == []


def test_app_stack_is_patched_when_it_differs(run_module, heroku):
    heroku.add_app(stack="heroku-22")
    result, _ = run_module("heroku_app", stack="heroku-24")
    assert result["changed"] is True
    assert heroku.api_writes() == ["PATCH /apps/double-boiler"]
    assert heroku.writes()[0].json == {"build_stack": "heroku-24"}
    assert result["diff"]["before"]["stack"] == "heroku-22"


def test_app_in_another_region_fails_without_writing(run_module, heroku):
    heroku.add_app(region="eu")
    result, _ = run_module("heroku_app", region="us")
    assert result["failed"] is True
    assert "heroku_app_region: eu" in result["msg"]
    assert heroku.writes() == []


def test_app_check_mode_reports_creation_without_writing(run_module, heroku):
    result, _ = run_module("heroku_app", check_mode=True)
    assert result["changed"] is True and result["exists"] is False
    assert heroku.writes() == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"app": "Bad_Name"}, "not valid on Heroku"),
        ({"api_key": ""}, "HEROKU_API_KEY"),
        ({"region": "US East"}, "region"),
        ({"stack": "heroku 24"}, "stack"),
        ({"api_url": "api.heroku.com"}, "api_url"),
    ],
)
def test_bad_inputs_fail_before_any_request(run_module, heroku, args, fragment):
    result, _ = run_module("heroku_app", **args)
    assert result["failed"] is True and fragment in result["msg"]
    assert heroku.calls == []


def test_token_from_environment_and_never_in_output(run_module, heroku, monkeypatch):
    monkeypatch.setenv("HEROKU_API_KEY", TOKEN)
    result, raw = run_module("heroku_app", api_key=None)
    assert result["changed"] is True
    assert TOKEN not in raw
