"""dokku_app, dokku_service_link, dokku_domains, dokku_ps_scale against the fake Dokku."""

from __future__ import annotations

import pytest
from conftest import dokku_cli, load_module
from fake_dokku import App, FakeDokku

dokku_app = load_module("app", "dokku_app")
service_link = load_module("app", "dokku_service_link")
domains = load_module("app", "dokku_domains")
ps_scale = load_module("app", "dokku_ps_scale")


# -- dokku_app ----------------------------------------------------------------------------


def test_app_is_created_once(fake: FakeDokku, cli) -> None:
    first = dokku_app.ensure_app(cli, "db", check_mode=False)
    assert first["changed"] and first["created"]
    assert "db" in fake.apps
    second = dokku_app.ensure_app(cli, "db", check_mode=False)
    assert second == {"changed": False, "created": False}
    assert fake.mutating_calls() == [["apps:create", "db"]]


def test_app_check_mode_creates_nothing(fake: FakeDokku, cli) -> None:
    result = dokku_app.ensure_app(cli, "db", check_mode=True)
    assert result["changed"]
    assert fake.apps == {}
    assert fake.mutating_calls() == []


def test_app_main_rejects_an_invalid_name(run_main, fake: FakeDokku) -> None:
    code, _, out = run_main(dokku_app, {"app": "My_App"}, fake)
    assert code == 1
    assert "Invalid Dokku app name 'My_App'" in out["msg"]
    assert fake.calls == []


def test_app_main_without_dokku_fails_clearly(run_main) -> None:
    code, _, out = run_main(dokku_app, {"app": "db"}, None)
    assert code == 1
    assert "Dokku is not installed" in out["msg"]


def test_app_main_without_dokku_in_check_mode_reports_a_change(run_main) -> None:
    code, _, out = run_main(dokku_app, {"app": "db"}, None, check_mode=True)
    assert code == 0 and out["changed"] is True


def test_app_main_creates(run_main, fake: FakeDokku) -> None:
    code, _, out = run_main(dokku_app, {"app": "db"}, fake)
    assert code == 0 and out["changed"] and "db" in fake.apps


# -- dokku_service_link -------------------------------------------------------------------


def test_service_is_created_and_linked_once(fake: FakeDokku, cli) -> None:
    fake.apps["db"] = App()
    first = service_link.ensure_link(cli, "postgres", "db-pg", "db", check_mode=False)
    assert first["changed"] and first["created"] and first["linked"]
    assert fake.apps["db"].config["DATABASE_URL"].startswith("postgres://")
    fake.calls.clear()
    second = service_link.ensure_link(cli, "postgres", "db-pg", "db", check_mode=False)
    assert second == {"changed": False, "created": False, "linked": False}
    assert fake.mutating_calls() == []


def test_existing_unlinked_service_is_only_linked(fake: FakeDokku, cli) -> None:
    fake.apps["db"] = App()
    fake.services["redis"]["db-redis"] = set()
    result = service_link.ensure_link(cli, "redis", "db-redis", "db", check_mode=False)
    assert not result["created"] and result["linked"]
    assert fake.mutating_calls() == [["redis:link", "db-redis", "db"]]
    assert "REDIS_URL" in fake.apps["db"].config


def test_service_check_mode_changes_nothing(fake: FakeDokku, cli) -> None:
    result = service_link.ensure_link(cli, "postgres", "db-pg", "db", check_mode=True)
    assert result["changed"] and result["created"] and result["linked"]
    assert fake.mutating_calls() == []
    assert fake.services["postgres"] == {}


def test_service_without_plugin_names_the_fix(fake: FakeDokku, cli) -> None:
    fake.apps["db"] = App()
    fake.plugins.discard("redis")
    with pytest.raises(dokku_cli.DokkuError, match="'redis' plugin is not installed"):
        service_link.ensure_link(cli, "redis", "db-redis", "db", check_mode=False)


def test_service_for_missing_app_fails(fake: FakeDokku, cli) -> None:
    with pytest.raises(dokku_cli.DokkuError, match="does not exist"):
        service_link.ensure_link(cli, "postgres", "db-pg", "db", check_mode=False)
    assert fake.mutating_calls() == []


def test_service_main_rejects_bad_names(run_main, fake: FakeDokku) -> None:
    code, _, out = run_main(service_link, {"app": "db", "service": "postgres", "name": "a b"}, fake)
    assert code == 1 and "Invalid postgres service name" in out["msg"]


# -- dokku_domains ------------------------------------------------------------------------


def test_domains_set_only_when_different(fake: FakeDokku, cli) -> None:
    fake.apps["db"] = App(domains=["db.dokku.me"])
    result = domains.ensure_domains(cli, "db", ["B.example.org", "a.example.org"], False)
    assert result["changed"] and result["domains"] == ["a.example.org", "b.example.org"]
    assert fake.apps["db"].domains == ["a.example.org", "b.example.org"]
    fake.calls.clear()
    again = domains.ensure_domains(cli, "db", ["a.example.org", "b.example.org"], False)
    assert not again["changed"]
    assert fake.mutating_calls() == []


def test_empty_domains_leave_dokkus_default(fake: FakeDokku, cli) -> None:
    fake.apps["db"] = App(domains=["db.dokku.me"])
    result = domains.ensure_domains(cli, "db", [], False)
    assert result == {"changed": False, "domains": ["db.dokku.me"]}


def test_domains_check_mode(fake: FakeDokku, cli) -> None:
    fake.apps["db"] = App(domains=["db.dokku.me"])
    result = domains.ensure_domains(cli, "db", ["x.example.org"], True)
    assert result["changed"] and "db.dokku.me" in result["diff"]["before"]
    assert fake.apps["db"].domains == ["db.dokku.me"]


def test_domains_main_rejects_invalid_domain(run_main, fake: FakeDokku) -> None:
    code, _, out = run_main(domains, {"app": "db", "domains": ["bad_domain!"]}, fake)
    assert code == 1 and "Invalid domain name" in out["msg"]


# -- dokku_ps_scale -----------------------------------------------------------------------


def test_scale_changes_only_differing_types(fake: FakeDokku, cli) -> None:
    fake.apps["db"] = App(scale={"web": 1, "release": 0})
    result = ps_scale.ensure_scale(cli, "db", {"web": 1, "worker": 1}, False)
    assert result["changed"]
    assert fake.mutating_calls() == [["ps:scale", "db", "worker=1"]]
    fake.calls.clear()
    assert not ps_scale.ensure_scale(cli, "db", {"web": 1, "worker": 1}, False)["changed"]
    assert fake.mutating_calls() == []


def test_scale_missing_type_counts_as_zero(fake: FakeDokku, cli) -> None:
    fake.apps["db"] = App(scale={"web": 1})
    assert not ps_scale.ensure_scale(cli, "db", {"web": 1, "worker": 0}, False)["changed"]


def test_scale_check_mode(fake: FakeDokku, cli) -> None:
    fake.apps["db"] = App(scale={"web": 1})
    result = ps_scale.ensure_scale(cli, "db", {"web": 2}, True)
    assert result["changed"] and result["diff"] == {"before": "web=1\n", "after": "web=2\n"}
    assert fake.apps["db"].scale == {"web": 1}


def test_scale_refused_by_app_json_formation_is_explained(fake: FakeDokku, cli) -> None:
    fake.apps["db"] = App(scale={"web": 1, "worker": 0}, formation_in_app_json=True)
    # Nothing to change: no complaint.
    assert not ps_scale.ensure_scale(cli, "db", {"web": 1, "worker": 0}, False)["changed"]
    for check_mode in (True, False):
        with pytest.raises(dokku_cli.DokkuError, match=r"app\.json has a 'formation' key"):
            ps_scale.ensure_scale(cli, "db", {"web": 1, "worker": 1}, check_mode)
    assert fake.mutating_calls() == []


@pytest.mark.parametrize("scale", [{"web": -1}, {"web": "x"}, {"bad type": 1}, {"web": True}])
def test_scale_validation(scale) -> None:
    with pytest.raises(ValueError):
        ps_scale.validate(scale)
