"""dokku_ssh_keys: the listed SSH keys registered once, under their names."""

from __future__ import annotations

import pytest

from tests.unit.conftest import dokku_cli, load_module
from tests.unit.plugins.module_utils.test_dokku_cli import ED25519

keys_mod = load_module("dokku_ssh_keys")

OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDYgmindIwWTftvnyRtQg6A11RMIoEa9HwxHI0CBuBdi other"


def test_keys_added_once_from_an_empty_host(dokku, cli) -> None:
    keys = [{"name": "alice", "key": ED25519}]
    result = keys_mod.ensure_keys(cli, keys, False)
    assert result["added"] == ["alice"]
    assert dokku.keys == {"alice": dokku_cli.ssh_fingerprint(ED25519)}
    add = next(i for i, c in enumerate(dokku.calls) if c[0] == "ssh-keys:add")
    assert dokku.calls[add] == ["ssh-keys:add", "alice"]
    assert dokku.stdin[add] == (ED25519 + "\n").encode()
    dokku.calls.clear()
    assert keys_mod.ensure_keys(cli, keys, False)["changed"] is False
    assert dokku.mutating_calls() == []


def test_keys_name_with_another_key_is_replaced(dokku, cli) -> None:
    dokku.keys = {"alice": "SHA256:old", "bob": "SHA256:bobs"}
    result = keys_mod.ensure_keys(cli, [{"name": "alice", "key": ED25519}], False)
    assert result["added"] == ["alice"]
    assert ["ssh-keys:remove", "alice"] in dokku.calls
    assert dokku.keys["bob"] == "SHA256:bobs"  # unlisted keys are left alone


def test_keys_same_key_under_another_name_is_refused(dokku, cli) -> None:
    dokku.keys = {"admin": dokku_cli.ssh_fingerprint(OTHER_KEY)}
    with pytest.raises(dokku_cli.DokkuError, match="already registered as 'admin'"):
        keys_mod.ensure_keys(cli, [{"name": "alice", "key": OTHER_KEY}], False)


def test_keys_check_mode(dokku, cli) -> None:
    result = keys_mod.ensure_keys(cli, [{"name": "alice", "key": ED25519}], True)
    assert result["changed"] and dokku.keys == {}


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


def test_keys_list_error_other_than_empty_is_raised(dokku, cli, monkeypatch) -> None:
    monkeypatch.setattr(dokku, "cmd_ssh_keys_list", lambda rest, stdin: (1, "", "boom\n"))
    with pytest.raises(dokku_cli.DokkuError):
        keys_mod.ensure_keys(cli, [{"name": "a", "key": ED25519}], False)
