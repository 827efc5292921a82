"""dokku_ps_scale: only the process types whose count differs are scaled."""

from __future__ import annotations

import pytest

from tests.support.fake_dokku import App, FakeDokku
from tests.unit.conftest import dokku_cli, load_module

ps_scale = load_module("dokku_ps_scale")


def test_scale_changes_only_differing_types(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App(scale={"web": 1, "release": 0})
    result = ps_scale.ensure_scale(cli, "db", {"web": 1, "worker": 1}, False)
    assert result["changed"]
    assert dokku.mutating_calls() == [["ps:scale", "db", "worker=1"]]
    dokku.calls.clear()
    assert not ps_scale.ensure_scale(cli, "db", {"web": 1, "worker": 1}, False)["changed"]
    assert dokku.mutating_calls() == []


def test_scale_missing_type_counts_as_zero(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App(scale={"web": 1})
    assert not ps_scale.ensure_scale(cli, "db", {"web": 1, "worker": 0}, False)["changed"]


def test_scale_check_mode(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App(scale={"web": 1})
    result = ps_scale.ensure_scale(cli, "db", {"web": 2}, True)
    assert result["changed"] and result["diff"] == {"before": "web=1\n", "after": "web=2\n"}
    assert dokku.apps["db"].scale == {"web": 1}


def test_scale_refused_by_app_json_formation_is_explained(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App(scale={"web": 1, "worker": 0}, formation_in_app_json=True)
    # Nothing to change: no complaint.
    assert not ps_scale.ensure_scale(cli, "db", {"web": 1, "worker": 0}, False)["changed"]
    for check_mode in (True, False):
        with pytest.raises(dokku_cli.DokkuError, match=r"app\.json has a 'formation' key"):
            ps_scale.ensure_scale(cli, "db", {"web": 1, "worker": 1}, check_mode)
    assert dokku.mutating_calls() == []


@pytest.mark.parametrize("scale", [{"web": -1}, {"web": "x"}, {"bad type": 1}, {"web": True}])
def test_scale_validation(scale) -> None:
    with pytest.raises(ValueError):
        ps_scale.validate(scale)
