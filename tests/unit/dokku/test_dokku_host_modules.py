"""dokku_host's modules: dokku_facts, dokku_plugin, dokku_ssh_keys."""

from __future__ import annotations

import pytest
from conftest import dokku_cli, load_module
from fake_dokku import FakeDokku
from test_dokku_cli import ED25519

facts_mod = load_module("host", "dokku_facts")
plugin_mod = load_module("host", "dokku_plugin")
keys_mod = load_module("host", "dokku_ssh_keys")

OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDYgmindIwWTftvnyRtQg6A11RMIoEa9HwxHI0CBuBdi other"


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


def test_facts_main_reports_no_change(run_main, fake) -> None:
    code, _, out = run_main(facts_mod, {"version": ""}, fake)
    assert code == 0 and out["changed"] is False and out["installed_version"] == "0.37.4"


def test_plugin_installed_only_when_missing(fake, cli) -> None:
    fake.plugins = {"redis"}
    url = "https://github.com/dokku/dokku-postgres.git"
    result = plugin_mod.ensure_plugin(cli, "postgres", url, "", False)
    assert result["changed"]
    assert ["plugin:install", url, "--name", "postgres"] in fake.calls
    fake.calls.clear()
    assert plugin_mod.ensure_plugin(cli, "postgres", url, "", False)["changed"] is False
    assert plugin_mod.ensure_plugin(cli, "redis", "u", "", False)["changed"] is False
    assert fake.mutating_calls() == []


def test_plugin_committish_and_check_mode(fake, cli) -> None:
    fake.plugins = set()
    assert plugin_mod.ensure_plugin(cli, "redis", "u", "1.2.3", True)["changed"]
    assert fake.mutating_calls() == []
    plugin_mod.ensure_plugin(cli, "redis", "u", "1.2.3", False)
    assert ["plugin:install", "u", "--name", "redis", "--committish", "1.2.3"] in fake.calls


def test_plugin_install_that_does_not_stick_is_an_error(fake, cli, monkeypatch) -> None:
    fake.plugins = set()
    monkeypatch.setattr(fake, "cmd_plugin_install", lambda rest, stdin: (0, "", ""))
    with pytest.raises(dokku_cli.DokkuError, match="still says no"):
        plugin_mod.ensure_plugin(cli, "redis", "u", "", False)


def test_keys_added_once_from_an_empty_host(fake, cli) -> None:
    keys = [{"name": "alice", "key": ED25519}]
    result = keys_mod.ensure_keys(cli, keys, False)
    assert result["added"] == ["alice"]
    assert fake.keys == {"alice": dokku_cli.ssh_fingerprint(ED25519)}
    add = next(i for i, c in enumerate(fake.calls) if c[0] == "ssh-keys:add")
    assert fake.calls[add] == ["ssh-keys:add", "alice"]
    assert fake.stdin[add] == (ED25519 + "\n").encode()
    fake.calls.clear()
    assert keys_mod.ensure_keys(cli, keys, False)["changed"] is False
    assert fake.mutating_calls() == []


def test_keys_name_with_another_key_is_replaced(fake, cli) -> None:
    fake.keys = {"alice": "SHA256:old", "bob": "SHA256:bobs"}
    result = keys_mod.ensure_keys(cli, [{"name": "alice", "key": ED25519}], False)
    assert result["added"] == ["alice"]
    assert ["ssh-keys:remove", "alice"] in fake.calls
    assert fake.keys["bob"] == "SHA256:bobs"  # unlisted keys are left alone


def test_keys_same_key_under_another_name_is_refused(fake, cli) -> None:
    fake.keys = {"admin": dokku_cli.ssh_fingerprint(OTHER_KEY)}
    with pytest.raises(dokku_cli.DokkuError, match="already registered as 'admin'"):
        keys_mod.ensure_keys(cli, [{"name": "alice", "key": OTHER_KEY}], False)


def test_keys_check_mode(fake, cli) -> None:
    result = keys_mod.ensure_keys(cli, [{"name": "alice", "key": ED25519}], True)
    assert result["changed"] and fake.keys == {}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([{"name": "a b", "key": ED25519}], "Invalid SSH key name"),
        ([{"name": "a", "key": "nope"}], "not usable"),
        ([{"name": "a", "key": ED25519}, {"name": "a", "key": ED25519}], "listed twice"),
        ([{"name": "a", "key": ED25519 + "\n" + ED25519}], "single line"),
    ],
)
def test_keys_validation(cli, keys, message) -> None:
    with pytest.raises(ValueError, match=message):
        keys_mod.ensure_keys(cli, keys, False)


def test_keys_list_error_other_than_empty_is_raised(fake, cli, monkeypatch) -> None:
    monkeypatch.setattr(fake, "cmd_ssh_keys_list", lambda rest, stdin: (1, "", "boom\n"))
    with pytest.raises(dokku_cli.DokkuError):
        keys_mod.ensure_keys(cli, [{"name": "a", "key": ED25519}], False)


def test_unused_fake_stays_honest() -> None:
    # The fake refuses commands Dokku does not have, as Dokku does.
    fake = FakeDokku()
    rc, _, err = fake(["dokku", "apps:frobnicate"], None)
    assert rc == 1 and "is not a dokku command" in err
