"""heroku_domains: custom domains, ACM, and the host names for ALLOWED_HOSTS (issue 10
item 7)."""

from __future__ import annotations

from tests.support.fake_heroku import Fault


def test_custom_domains_are_added_with_acm_and_listed_for_allowed_hosts(run_module, heroku):
    heroku.add_app()
    result, _ = run_module("heroku_domains", domains=["www.example.com", "Example.com"])
    assert result["changed"] is True and result["acm_enabled"] is True
    assert result["hostnames"] == [
        "double-boiler-0123.herokuapp.com",
        "example.com",
        "www.example.com",
    ]
    writes = heroku.api_writes()
    assert writes.count("POST /apps/double-boiler/domains") == 2
    assert writes[-1] == "POST /apps/double-boiler/acm"
    assert heroku.writes()[0].json == {"hostname": "www.example.com", "sni_endpoint": None}
    heroku.calls.clear()
    again, _ = run_module("heroku_domains", domains=["www.example.com", "example.com"])
    assert again["changed"] is False and heroku.writes() == []


def test_no_custom_domain_keeps_the_herokuapp_host_and_no_acm(run_module, heroku):
    heroku.add_app()
    result, _ = run_module("heroku_domains", domains=[])
    assert result["changed"] is False and heroku.writes() == []
    assert result["hostnames"] == ["double-boiler-0123.herokuapp.com"]


def test_unlisted_custom_domains_are_removed_unless_purge_is_off(run_module, heroku):
    heroku.add_app()
    run_module("heroku_domains", domains=["old.example.com"])
    heroku.calls.clear()
    kept, _ = run_module("heroku_domains", domains=[], purge=False)
    assert kept["changed"] is False and "old.example.com" in kept["hostnames"]
    result, _ = run_module("heroku_domains", domains=[])
    assert result["removed"] == ["old.example.com"]
    assert heroku.api_writes()[-1].startswith("DELETE /apps/double-boiler/domains/")
    assert result["hostnames"] == ["double-boiler-0123.herokuapp.com"]


def test_a_domain_post_answered_503_after_adding_is_not_sent_again(run_module, heroku):
    heroku.add_app()
    heroku.faults.append(Fault("POST", "/domains$", 503, after=True))
    result, _ = run_module("heroku_domains", domains=["www.example.com"])
    assert result.get("failed") is not True, result.get("msg")
    assert [c.method for c in heroku.calls if c.path.endswith("/domains")] == ["GET", "POST", "GET"]


def test_bad_host_names_fail_before_any_request(run_module, heroku):
    result, _ = run_module("heroku_domains", domains=["https://www.example.com/"])
    assert result["failed"] is True and "not host names" in result["msg"]
    assert heroku.calls == []


def test_check_mode_on_an_app_not_created_yet(run_module, heroku):
    result, _ = run_module("heroku_domains", check_mode=True, domains=["www.example.com"])
    assert result["changed"] is True and heroku.writes() == []
