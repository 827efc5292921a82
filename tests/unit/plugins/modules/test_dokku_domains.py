"""dokku_domains: the app's and the global domains, a concrete one first."""

from __future__ import annotations

import pytest

from tests.support.fake_dokku import App, FakeDokku
from tests.unit.conftest import load_module, load_module_utils

dokku_app = load_module("dokku_app")
domains = load_module("dokku_domains")
DokkuError = load_module_utils("dokku_cli").DokkuError


def test_domains_set_only_when_different(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App(domains=["db.dokku.me"])
    result = domains.ensure_domains(cli, "db", ["B.example.org", "a.example.org"], False)
    assert result["changed"] and result["domains"] == ["b.example.org", "a.example.org"]
    assert dokku.apps["db"].domains == ["b.example.org", "a.example.org"]
    assert result["global_domains"] == ["dokku.me"]
    dokku.calls.clear()
    again = domains.ensure_domains(cli, "db", ["b.example.org", "a.example.org"], False)
    assert not again["changed"]
    assert dokku.mutating_calls() == []


def test_a_wildcard_never_comes_first(dokku: FakeDokku, cli) -> None:
    """Issue 9 #4: check-deploy sends the first domain that is not `*` as Host
    (dokku/dokku plugins/scheduler-docker-local/check-deploy); `*.example.org` is no host."""
    dokku.apps["db"] = App(domains=["db.dokku.me"])
    result = domains.ensure_domains(cli, "db", ["*.example.org", "www.example.org"], False)
    assert dokku.apps["db"].domains == ["www.example.org", "*.example.org"]
    assert result["domains"][0] == "www.example.org"


def test_an_ip_addressed_host_gives_the_app_its_address(dokku: FakeDokku, cli) -> None:
    """Issue 9 #3: global domain 203.0.113.10 -> the new app has no domain; the checks would
    send no Host. The app gets the address as its domain, so nginx and the checks name it."""
    dokku.global_domains = ["203.0.113.10"]
    dokku_app.ensure_app(cli, "db", check_mode=False)
    assert dokku.apps["db"].domains == []
    result = domains.ensure_domains(cli, "db", [], False, address_when_none=True)
    assert result["changed"] and dokku.apps["db"].domains == ["203.0.113.10"]
    assert not domains.ensure_domains(cli, "db", [], False, address_when_none=True)["changed"]


def test_global_domain_is_set_once(dokku: FakeDokku, cli) -> None:
    """Issue 9 #10: the install's debconf answer is not the global domain of an existing host."""
    result = domains.ensure_global_domains(cli, ["dokku.example.org"], False)
    assert result["changed"] and dokku.global_domains == ["dokku.example.org"]
    assert not domains.ensure_global_domains(cli, ["dokku.example.org"], False)["changed"]


def test_wildcards_only_are_refused_before_any_change(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App(domains=["db.dokku.me"])
    with pytest.raises(DokkuError, match="List a concrete domain first"):
        domains.ensure_domains(cli, "db", ["*.example.org"], False)
    assert dokku.mutating_calls() == []


def test_empty_domains_leave_dokkus_default(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App(domains=["db.dokku.me"])
    result = domains.ensure_domains(cli, "db", [], False)
    assert result == {"changed": False, "domains": ["db.dokku.me"], "global_domains": ["dokku.me"]}


def test_domains_check_mode(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App(domains=["db.dokku.me"])
    result = domains.ensure_domains(cli, "db", ["x.example.org"], True)
    assert result["changed"] and "db.dokku.me" in result["diff"]["before"]
    assert dokku.apps["db"].domains == ["db.dokku.me"]


def test_domains_main_rejects_invalid_domain(run_main, dokku: FakeDokku) -> None:
    code, _, out = run_main(domains, {"app": "db", "domains": ["bad_domain!"]}, dokku)
    assert code == 1 and "Invalid domain name" in out["msg"]
