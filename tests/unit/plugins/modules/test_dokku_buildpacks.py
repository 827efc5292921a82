"""dokku_buildpacks: pin the app's buildpacks (issue 9 #7)."""

from __future__ import annotations

from tests.support.fake_dokku import App, FakeDokku
from tests.unit.conftest import load_module

buildpacks = load_module("dokku_buildpacks")
PINNED = "https://github.com/heroku/heroku-buildpack-python.git#v351"


def test_buildpack_is_pinned_once(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App()
    first = buildpacks.ensure_buildpacks(cli, "db", [PINNED], check_mode=False)
    assert first["changed"] and dokku.apps["db"].buildpacks == [PINNED]
    dokku.calls.clear()
    again = buildpacks.ensure_buildpacks(cli, "db", [PINNED], check_mode=False)
    assert not again["changed"] and dokku.mutating_calls() == []


def test_another_buildpack_is_replaced_in_order(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App(buildpacks=["https://github.com/heroku/heroku-buildpack-python.git"])
    result = buildpacks.ensure_buildpacks(cli, "db", [PINNED], check_mode=False)
    assert result["changed"]
    assert dokku.mutating_calls() == [["buildpacks:clear", "db"], ["buildpacks:add", "db", PINNED]]


def test_check_mode_changes_nothing(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App()
    result = buildpacks.ensure_buildpacks(cli, "db", [PINNED], check_mode=True)
    assert result["changed"] and dokku.apps["db"].buildpacks == []
