"""dokku_facts: whether Dokku needs installing, and the apt suite it comes from."""

from __future__ import annotations

import pytest

from tests.unit.conftest import load_module

facts_mod = load_module("dokku_facts")


def test_facts_without_dokku() -> None:
    assert facts_mod.facts(None, "") == {
        "installed": False,
        "installed_version": None,
        "install_needed": True,
    }


def test_facts_leave_an_installed_dokku_alone_unless_a_version_is_asked(cli) -> None:
    assert facts_mod.facts(cli, "")["install_needed"] is False
    assert facts_mod.facts(cli, "0.37.4")["install_needed"] is False
    assert facts_mod.facts(cli, "v0.37.4")["install_needed"] is False
    other = facts_mod.facts(cli, "0.38.1")
    assert other["install_needed"] is True and other["installed_version"] == "0.37.4"


def test_facts_main_reports_no_change(run_main, dokku) -> None:
    code, _, out = run_main(facts_mod, {"version": ""}, dokku)
    assert code == 0 and out["changed"] is False and out["installed_version"] == "0.37.4"


@pytest.mark.parametrize(
    ("distribution", "release", "suite"),
    [
        ("Ubuntu", "noble", "noble"),
        ("Ubuntu", "jammy", "jammy"),
        # Issue 9 #9: releases Dokku's repository does not carry get what bootstrap.sh installs.
        ("Ubuntu", "oracular", "noble"),
        ("Ubuntu", "plucky", "noble"),
        ("Debian", "bookworm", "bookworm"),
        ("Debian", "trixie", "trixie"),
        ("Debian", "forky", "bookworm"),
        ("Fedora", "41", None),
    ],
)
def test_apt_suite_maps_codenames_as_bootstrap_does(distribution, release, suite) -> None:
    assert facts_mod.apt_suite(distribution, release) == suite
