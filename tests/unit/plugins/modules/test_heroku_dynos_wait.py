"""heroku_dynos_wait: the health check waits until every web dyno runs the new release
(issue 10 item 5), as `heroku ps:wait` does."""

from __future__ import annotations


def _deployed(heroku, quantity=1):
    heroku.add_app()
    heroku.formation["double-boiler"]["web"] = {
        "type": "web",
        "quantity": quantity,
        "size": "Standard-1X",
        "dyno_size": {"id": None, "name": "Standard-1X"},
    }
    old = heroku.releases["double-boiler"][-1]["version"]
    heroku.run_dynos("double-boiler", version=old, quantity=quantity)
    new = heroku._new_release("double-boiler", "Deploy", "succeeded", slug={"id": "s2"})
    return old, new["version"]


def test_waits_while_old_dynos_still_answer(run_module, heroku, fake_time):
    _, new = _deployed(heroku, quantity=2)
    heroku.dyno_polls_to_restart = 3  # three reads still see the old release
    result, _ = run_module("heroku_dynos_wait", release=new, poll_interval=2)
    assert result.get("failed") is not True, result.get("msg")
    assert {d["release"] for d in result["dynos"]} == {new} and len(result["dynos"]) == 2
    assert fake_time.sleeps == [2, 2]
    assert heroku.writes() == []


def test_defaults_to_the_current_release(run_module, heroku, fake_time):
    _, new = _deployed(heroku)
    heroku.run_dynos("double-boiler")
    result, _ = run_module("heroku_dynos_wait")
    assert result["release"] == new and fake_time.sleeps == []


def test_fails_naming_the_dynos_that_lag(run_module, heroku, fake_time):
    old, new = _deployed(heroku)
    result, _ = run_module("heroku_dynos_wait", release=new, timeout=10, poll_interval=5)
    assert result["failed"] is True
    assert f"web.1 (up, v{old})" in result["msg"] and f"v{new}" in result["msg"]


def test_a_dyno_still_starting_on_the_release_is_not_enough(run_module, heroku, fake_time):
    _, new = _deployed(heroku)
    heroku.run_dynos("double-boiler", version=new)
    heroku.dynos["double-boiler"][0]["state"] = "starting"
    result, _ = run_module("heroku_dynos_wait", release=new, timeout=6, poll_interval=3)
    assert result["failed"] is True and "starting" in result["msg"]


def test_fewer_dynos_than_the_formation_is_not_enough(run_module, heroku, fake_time):
    _, new = _deployed(heroku, quantity=2)
    heroku.run_dynos("double-boiler", version=new, quantity=1)
    result, _ = run_module("heroku_dynos_wait", release=new, timeout=3, poll_interval=3)
    assert result["failed"] is True and "1 of 2 dynos up" in result["msg"]


def test_check_mode_reads_without_waiting(run_module, heroku, fake_time):
    old, new = _deployed(heroku)
    result, _ = run_module("heroku_dynos_wait", check_mode=True, release=new)
    assert result.get("failed") is not True and fake_time.sleeps == []
    assert result["dynos"][0]["release"] == old
