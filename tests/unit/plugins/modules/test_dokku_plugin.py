"""dokku_plugin: a Dokku plugin installed only when missing."""

from __future__ import annotations

import pytest

from tests.unit.conftest import dokku_cli, load_module

plugin_mod = load_module("dokku_plugin")


def test_plugin_installed_only_when_missing(dokku, cli) -> None:
    dokku.plugins = {"redis"}
    url = "https://github.com/dokku/dokku-postgres.git"
    result = plugin_mod.ensure_plugin(cli, "postgres", url, "", False)
    assert result["changed"]
    assert ["plugin:install", url, "--name", "postgres"] in dokku.calls
    dokku.calls.clear()
    assert plugin_mod.ensure_plugin(cli, "postgres", url, "", False)["changed"] is False
    assert plugin_mod.ensure_plugin(cli, "redis", "u", "", False)["changed"] is False
    assert dokku.mutating_calls() == []


def test_plugin_committish_and_check_mode(dokku, cli) -> None:
    dokku.plugins = set()
    assert plugin_mod.ensure_plugin(cli, "redis", "u", "1.2.3", True)["changed"]
    assert dokku.mutating_calls() == []
    plugin_mod.ensure_plugin(cli, "redis", "u", "1.2.3", False)
    assert ["plugin:install", "u", "--name", "redis", "--committish", "1.2.3"] in dokku.calls


def test_plugin_install_that_does_not_stick_is_an_error(dokku, cli, monkeypatch) -> None:
    dokku.plugins = set()
    monkeypatch.setattr(dokku, "cmd_plugin_install", lambda rest, stdin: (0, "", ""))
    with pytest.raises(dokku_cli.DokkuError, match="still says no"):
        plugin_mod.ensure_plugin(cli, "redis", "u", "", False)
