"""heroku_config_vars: one PATCH of what changed, the secret key generated and never shown."""

from __future__ import annotations

import pytest
from ansible_collections.double_boiler.paas.plugins.module_utils.common import MASK

from tests.unit.plugins.modules._helpers import CONFIG


def test_config_vars_one_patch_with_only_what_changed(run_module, heroku):
    heroku.add_app()
    heroku.config["double-boiler"].update(
        {
            "WEB_CONCURRENCY": "2",
            "DATABASE_URL": "postgres://u:pw@db/x",
            "DJANGO_SECRET_KEY": "k" * 60,
        }
    )
    result, raw = run_module("heroku_config_vars", config=CONFIG)
    assert result["changed"] is True
    assert heroku.api_writes() == ["PATCH /apps/double-boiler/config-vars"]
    assert heroku.writes()[0].json == {
        "DOUBLE_BOILER_MODE": "one-dyno",
        "ALLOWED_HOSTS": "x.test",
    }
    assert result["changed_keys"] == ["ALLOWED_HOSTS", "DOUBLE_BOILER_MODE"]
    assert result["secret_generated"] is False
    assert "pw@db" not in raw and "k" * 60 not in raw
    assert result["release"]["status"] == "succeeded"


def test_secret_key_generated_once_never_shown_never_rotated(run_module, heroku):
    heroku.add_app()
    first, raw = run_module("heroku_config_vars", config=CONFIG)
    secret = heroku.config["double-boiler"]["DJANGO_SECRET_KEY"]
    assert len(secret) >= 50 and first["secret_generated"] is True
    assert secret not in raw
    assert first["diff"]["after"]["DJANGO_SECRET_KEY"] == MASK
    assert first["diff"]["after"]["WEB_CONCURRENCY"] == "2"
    heroku.calls.clear()
    second, _ = run_module("heroku_config_vars", config=CONFIG)
    assert second["changed"] is False and heroku.writes() == []
    assert heroku.config["double-boiler"]["DJANGO_SECRET_KEY"] == secret


def test_secret_key_rotates_only_when_asked(run_module, heroku):
    heroku.add_app()
    heroku.config["double-boiler"]["DJANGO_SECRET_KEY"] = "old" * 20
    result, raw = run_module("heroku_config_vars", config={}, rotate_secret_key=True)
    new = heroku.config["double-boiler"]["DJANGO_SECRET_KEY"]
    assert result["changed"] is True and new != "old" * 20
    assert new not in raw and "old" * 20 not in raw
    assert result["diff"]["before"] == {"DJANGO_SECRET_KEY": MASK}


def test_secret_config_values_never_appear(run_module, heroku):
    heroku.add_app()
    result, raw = run_module(
        "heroku_config_vars", config={}, secret_config={"SMTP_PASS": "hunter2-very-secret"}
    )
    assert result["changed"] is True
    assert heroku.config["double-boiler"]["SMTP_PASS"] == "hunter2-very-secret"
    assert "hunter2-very-secret" not in raw


def test_config_check_mode_reports_without_writing(run_module, heroku):
    heroku.add_app()
    result, _ = run_module("heroku_config_vars", check_mode=True, config=CONFIG)
    assert result["changed"] is True and heroku.writes() == []
    assert "DJANGO_SECRET_KEY" in result["changed_keys"]
    assert "DJANGO_SECRET_KEY" not in heroku.config["double-boiler"]


def test_config_absent_keys_are_removed_only_if_present(run_module, heroku):
    heroku.add_app()
    heroku.config["double-boiler"].update({"OLD": "1", "DJANGO_SECRET_KEY": "s" * 60})
    result, _ = run_module("heroku_config_vars", config={}, absent=["OLD", "NEVER_SET"])
    assert heroku.writes()[0].json == {"OLD": None}
    assert result["changed_keys"] == ["OLD"]


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"DJANGO_HTTPS_ONLY": False}, "quote it"),
        ({"BAD-KEY": "x"}, "not a config var name"),
        ({"DJANGO_SECRET_KEY": "x" * 60}, "generated here"),
    ],
)
def test_config_bad_inputs_fail_before_any_request(run_module, heroku, config, fragment):
    result, _ = run_module("heroku_config_vars", config=config)
    assert result["failed"] is True and fragment in result["msg"]
    assert heroku.calls == []


def test_config_change_whose_release_fails_fails_the_task(run_module, heroku, monkeypatch):
    heroku.add_app()
    heroku.config["double-boiler"]["DJANGO_SECRET_KEY"] = "s" * 60
    original = heroku._new_release

    def failing(name, description, status, slug=None):
        release = original(name, description, "failed" if "config" in description else status)
        release["output_stream_url"] = "https://streams.fake-heroku.test/rel"
        heroku.streams["https://streams.fake-heroku.test/rel"] = b"migrate: boom\n"
        return release

    monkeypatch.setattr(heroku, "_new_release", failing)
    result, _ = run_module("heroku_config_vars", config={"A": "1"})
    assert result["failed"] is True
    assert "previous release keeps serving" in result["msg"] and "migrate: boom" in result["msg"]
