"""dokku_service_link: a service created and linked once, without a restart."""

from __future__ import annotations

import pytest

from tests.support.fake_dokku import App, FakeDokku
from tests.unit.conftest import dokku_cli, load_module

service_link = load_module("dokku_service_link")


def test_service_is_created_and_linked_once(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App()
    first = service_link.ensure_link(cli, "postgres", "db-pg", "db", check_mode=False)
    assert first["changed"] and first["created"] and first["linked"]
    assert dokku.apps["db"].config["DATABASE_URL"].startswith("postgres://")
    dokku.calls.clear()
    second = service_link.ensure_link(cli, "postgres", "db-pg", "db", check_mode=False)
    assert second == {"changed": False, "created": False, "linked": False}
    assert dokku.mutating_calls() == []


def test_existing_unlinked_service_is_only_linked(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App()
    dokku.services["redis"]["db-redis"] = set()
    result = service_link.ensure_link(cli, "redis", "db-redis", "db", check_mode=False)
    assert not result["created"] and result["linked"]
    assert dokku.mutating_calls() == [["redis:link", "db-redis", "db", "--no-restart"]]
    assert "REDIS_URL" in dokku.apps["db"].config


def test_linking_to_a_deployed_app_does_not_restart_it(dokku: FakeDokku, cli) -> None:
    """Issue 9 #5: a plain `<service>:link` restarts the app and reports a failed restart as
    success (exit 0); the role restarts once, later, through dokku_deploy_archive."""
    dokku.apps["db"] = App(deployed=True)
    dokku.restart_fails = True
    result = service_link.ensure_link(cli, "postgres", "db-pg", "db", check_mode=False)
    assert result["linked"]
    assert ["postgres:link", "db-pg", "db", "--no-restart"] in dokku.calls
    assert dokku.apps["db"].restarts == 0


def test_service_check_mode_changes_nothing(dokku: FakeDokku, cli) -> None:
    result = service_link.ensure_link(cli, "postgres", "db-pg", "db", check_mode=True)
    assert result["changed"] and result["created"] and result["linked"]
    assert dokku.mutating_calls() == []
    assert dokku.services["postgres"] == {}


def test_service_without_plugin_names_the_fix(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App()
    dokku.plugins.discard("redis")
    with pytest.raises(dokku_cli.DokkuError, match="'redis' plugin is not installed"):
        service_link.ensure_link(cli, "redis", "db-redis", "db", check_mode=False)


def test_service_for_missing_app_fails(dokku: FakeDokku, cli) -> None:
    with pytest.raises(dokku_cli.DokkuError, match="does not exist"):
        service_link.ensure_link(cli, "postgres", "db-pg", "db", check_mode=False)
    assert dokku.mutating_calls() == []


def test_service_main_rejects_bad_names(run_main, dokku: FakeDokku) -> None:
    code, _, out = run_main(
        service_link, {"app": "db", "service": "postgres", "name": "a b"}, dokku
    )
    assert code == 1 and "Invalid postgres service name" in out["msg"]
