"""heroku_addons: creating and waiting for add-ons, removing the add-on a broker switch leaves
unused (issue 10 item 4) and creating without duplicates when a POST fails (item 6)."""

from __future__ import annotations

from tests.support.fake_heroku import Fault
from tests.unit.plugins.modules._helpers import PLANS

PG, REDIS = PLANS


def test_an_absent_service_is_deleted_with_its_config_vars(run_module, heroku):
    heroku.add_app()
    run_module("heroku_addons", plans=[PG, REDIS])
    redis = next(a for a in heroku.addons["double-boiler"] if "redis" in a["name"])
    heroku.config["double-boiler"]["REDIS_URL"] = "rediss://fake"
    heroku.calls.clear()
    result, _ = run_module("heroku_addons", plans=[PG], absent=["heroku-redis"])
    assert result["changed"] is True and result["removed"] == [redis["name"]]
    assert heroku.api_writes() == [f"DELETE /apps/double-boiler/addons/{redis['id']}"]
    assert "REDIS_URL" not in heroku.config["double-boiler"]
    assert result["diff"]["after"]["addons"] == [f"heroku-postgresql: {PG}"]
    heroku.calls.clear()
    again, _ = run_module("heroku_addons", plans=[PG], absent=["heroku-redis"])
    assert again["changed"] is False and heroku.writes() == []


def test_removal_in_check_mode_writes_nothing(run_module, heroku):
    heroku.add_app()
    run_module("heroku_addons", plans=[PG, REDIS])
    heroku.calls.clear()
    result, _ = run_module("heroku_addons", check_mode=True, plans=[PG], absent=["heroku-redis"])
    assert result["changed"] is True and len(result["removed"]) == 1
    assert heroku.writes() == []


def test_an_add_on_owned_by_another_app_is_left_alone(run_module, heroku):
    heroku.add_app()
    run_module("heroku_addons", plans=[REDIS])
    heroku.addons["double-boiler"][0]["app"] = {"id": "x", "name": "other-app"}
    heroku.calls.clear()
    result, _ = run_module("heroku_addons", plans=[], absent=["heroku-redis"])
    assert result["changed"] is False and heroku.writes() == []
    assert "other-app" in str(result["warnings"])


def test_wanted_and_absent_at_once_is_refused(run_module, heroku):
    result, _ = run_module("heroku_addons", plans=[REDIS], absent=["heroku-redis"])
    assert result["failed"] is True and "both wanted" in result["msg"]
    assert heroku.calls == []


def test_a_create_answered_503_after_the_work_makes_one_add_on(run_module, heroku):
    heroku.add_app()
    heroku.faults.append(Fault("POST", "/addons$", 503, after=True))
    result, _ = run_module("heroku_addons", plans=[PG])
    assert result.get("failed") is not True, result.get("msg")
    assert len(heroku.addons["double-boiler"]) == 1
    assert [c.method for c in heroku.calls if c.path.endswith("/addons")] == ["GET", "POST", "GET"]


def test_a_delete_answered_503_after_deleting_is_done_not_an_error(run_module, heroku):
    heroku.add_app()
    run_module("heroku_addons", plans=[PG, REDIS])
    heroku.faults.append(Fault("DELETE", "/addons/", 503, after=True))
    result, _ = run_module("heroku_addons", plans=[PG], absent=["heroku-redis"])
    assert result.get("failed") is not True, result.get("msg")
    assert [a["addon_service"]["name"] for a in heroku.addons["double-boiler"]] == [
        "heroku-postgresql"
    ]


def test_addons_created_when_absent_and_waited_for(run_module, heroku, fake_time):
    heroku.add_app()
    heroku.addon_polls_to_provision = 3
    result, _ = run_module("heroku_addons", plans=PLANS, poll_interval=2)
    assert result["changed"] is True
    assert heroku.api_writes() == ["POST /apps/double-boiler/addons"] * 2
    assert [w.json for w in heroku.writes()] == [{"plan": p} for p in PLANS]
    assert [a["state"] for a in result["addons"]] == ["provisioned", "provisioned"]
    assert fake_time.sleeps == [2, 2, 2, 2]
    heroku.calls.clear()
    again, _ = run_module("heroku_addons", plans=PLANS)
    assert again["changed"] is False and heroku.writes() == []


def test_addon_matched_by_service_not_name_and_plan_left_alone(run_module, heroku):
    heroku.add_app()
    heroku._create_addon("double-boiler", {"plan": "heroku-postgresql:standard-0"})
    heroku.addons["double-boiler"][0]["name"] = "postgresql-curved-12345"
    heroku.addons["double-boiler"][0]["state"] = "provisioned"
    result, _ = run_module("heroku_addons", plans=["heroku-postgresql:essential-0"])
    assert result["changed"] is False and heroku.writes() == []
    # ansible-core 2.19 returns warnings as structured summaries: look at their text
    assert "heroku-postgresql:standard-0" in str(result["warnings"])


def test_addon_deprovisioned_fails_clearly(run_module, heroku):
    heroku.add_app()
    heroku.addon_final_state = "deprovisioned"
    result, _ = run_module("heroku_addons", plans=PLANS[:1])
    assert result["failed"] is True and "deprovisioned" in result["msg"]


def test_addon_timeout_fails_clearly(run_module, heroku, fake_time):
    heroku.add_app()
    heroku.addon_polls_to_provision = 10**6
    result, _ = run_module("heroku_addons", plans=PLANS[:1], timeout=30, poll_interval=5)
    assert result["failed"] is True and "still provisioning after 30 s" in result["msg"]
    assert sum(fake_time.sleeps) <= 35


def test_addons_check_mode_on_a_missing_app(run_module, heroku):
    result, _ = run_module("heroku_addons", plans=PLANS, check_mode=True)
    assert result["changed"] is True and heroku.writes() == []
    assert result["created"] == PLANS


def test_addon_plan_must_name_service_and_plan(run_module, heroku):
    result, _ = run_module("heroku_addons", plans=["essential-0"])
    assert result["failed"] is True and "<service>:<plan>" in result["msg"]
    assert heroku.calls == []
