"""dokku_config: read first, one --no-restart write, generated secret never shown."""

from __future__ import annotations

import base64
import json

import pytest

from tests.support.fake_dokku import App, FakeDokku
from tests.unit.conftest import dokku_cli, load_module

config_mod = load_module("dokku_config")
SENSITIVE = ["DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"]


def ensure(cli, **kw):  # type: ignore[no-untyped-def]
    args = {
        "app": "db",
        "config": {},
        "secrets": {},
        "generate": ["DJANGO_SECRET_KEY"],
        "rotate": [],
        "sensitive_keys": SENSITIVE,
        "method": "auto",
        "check_mode": False,
    }
    args.update(kw)
    return config_mod.ensure_config(cli, **args)


def writes(dokku: FakeDokku) -> list[list[str]]:
    return [c for c in dokku.calls if c[0] in ("config:set", "config:import")]


def test_first_run_generates_the_secret_and_writes_once_without_restart(dokku, cli) -> None:
    dokku.apps["db"] = App(deployed=True)
    result = ensure(cli, config={"DOUBLE_BOILER_MODE": "one-dyno", "DEBUG": False})
    secret = dokku.apps["db"].config["DJANGO_SECRET_KEY"]
    assert len(secret) >= 50
    assert result["differing_keys"] == ["DEBUG", "DJANGO_SECRET_KEY", "DOUBLE_BOILER_MODE"]
    assert result["generated"] == ["DJANGO_SECRET_KEY"]
    assert dokku.apps["db"].config["DEBUG"] == "false"
    assert len(writes(dokku)) == 1
    assert dokku.apps["db"].restarts == 0
    assert secret not in json.dumps(result)


def test_second_run_changes_nothing_and_keeps_the_secret(dokku, cli) -> None:
    dokku.apps["db"] = App()
    ensure(cli, config={"A": "1"})
    secret = dokku.apps["db"].config["DJANGO_SECRET_KEY"]
    dokku.calls.clear()
    result = ensure(cli, config={"A": "1"})
    assert result["changed"] is False and result["differing_keys"] == []
    assert writes(dokku) == []
    assert dokku.apps["db"].config["DJANGO_SECRET_KEY"] == secret


def test_only_differing_keys_are_written(dokku, cli) -> None:
    dokku.apps["db"] = App(config={"A": "1", "B": "2", "DJANGO_SECRET_KEY": "x" * 64})
    result = ensure(cli, config={"A": "1", "B": "3"})
    assert result["differing_keys"] == ["B"]
    assert result["diff"] == {"before": "B=2\n", "after": "B=3\n"}


def test_rotate_replaces_the_secret(dokku, cli) -> None:
    dokku.apps["db"] = App(config={"DJANGO_SECRET_KEY": "old-secret-value-" * 4})
    result = ensure(cli, rotate=["DJANGO_SECRET_KEY"])
    assert result["generated"] == ["DJANGO_SECRET_KEY"]
    new = dokku.apps["db"].config["DJANGO_SECRET_KEY"]
    assert new != "old-secret-value-" * 4 and len(new) >= 50
    assert "old-secret-value" not in json.dumps(result)


def test_rotate_must_name_a_generated_key(cli) -> None:
    with pytest.raises(ValueError, match="rotate names key"):
        ensure(cli, rotate=["OTHER"])


def test_import_is_used_from_0_37_and_values_never_reach_argv(dokku, cli) -> None:
    dokku.apps["db"] = App()
    result = ensure(cli, config={"A": "1"})
    secret = dokku.apps["db"].config["DJANGO_SECRET_KEY"]
    assert result["method"] == "import"
    (call,) = writes(dokku)
    assert call[:5] == ["config:import", "--no-restart", "--format", "json", "db"]
    assert all(secret not in arg for arg in call)


def test_older_dokku_gets_one_encoded_config_set(cli) -> None:
    dokku = FakeDokku(version="0.36.9")
    old = dokku_cli.DokkuCli(dokku)
    dokku.apps["db"] = App(deployed=True)
    result = ensure(old, config={"A": "has spaces and 'quotes'"})
    assert result["method"] == "set"
    (call,) = writes(dokku)
    assert call[:4] == ["config:set", "--no-restart", "--encoded", "db"]
    pair = next(a for a in call if a.startswith("A="))
    assert base64.b64decode(pair[2:]).decode() == "has spaces and 'quotes'"
    assert dokku.apps["db"].config["A"] == "has spaces and 'quotes'"
    assert dokku.apps["db"].restarts == 0


def test_check_mode_writes_nothing_and_generates_nothing(dokku, cli) -> None:
    dokku.apps["db"] = App()
    result = ensure(cli, config={"A": "1"}, check_mode=True)
    assert result["changed"] and result["differing_keys"] == ["A", "DJANGO_SECRET_KEY"]
    assert "DJANGO_SECRET_KEY=******** (new value)" in result["diff"]["after"]
    assert writes(dokku) == [] and dokku.apps["db"].config == {}


def test_check_mode_on_a_missing_app(dokku, cli) -> None:
    result = ensure(cli, config={"A": "1"}, check_mode=True)
    assert result["changed"] and writes(dokku) == []


def test_missing_app_fails_outside_check_mode(cli) -> None:
    with pytest.raises(dokku_cli.DokkuError, match="does not exist"):
        ensure(cli)


def test_caller_supplied_secret_wins_and_is_masked(dokku, cli) -> None:
    dokku.apps["db"] = App(config={"DJANGO_SECRET_KEY": "previous-secret-0123456789"})
    result = ensure(cli, secrets={"DJANGO_SECRET_KEY": "vaulted-secret-0123456789"})
    assert dokku.apps["db"].config["DJANGO_SECRET_KEY"] == "vaulted-secret-0123456789"
    assert result["generated"] == []
    dumped = json.dumps(result)
    assert "vaulted-secret" not in dumped and "previous-secret" not in dumped


def test_sensitive_existing_values_are_masked_in_the_diff(dokku, cli) -> None:
    url = "postgres://u:pw-topsecret@h:5432/d"
    dokku.apps["db"] = App(config={"DATABASE_URL": url, "DJANGO_SECRET_KEY": "k" * 64})
    result = ensure(cli, config={"DATABASE_URL": "postgres://other"})
    assert "pw-topsecret" not in json.dumps(result)


def test_a_failing_write_never_shows_the_values(dokku, cli, monkeypatch) -> None:
    dokku.apps["db"] = App()
    real = dokku.cmd_config_import

    def broken(rest, stdin):  # type: ignore[no-untyped-def]
        _, out, _ = real(rest, stdin)  # Dokku echoes what it was setting...
        return 1, out, " !     disk full\n"  # ...then fails

    monkeypatch.setattr(dokku, "cmd_config_import", broken)
    with pytest.raises(dokku_cli.DokkuError) as exc:
        ensure(cli)
    secret = dokku.apps["db"].config["DJANGO_SECRET_KEY"]
    assert secret not in exc.value.msg + repr(exc.value.details)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"1BAD": "x"}, "Invalid config var name"),
        ({"A": None}, "has no value"),
        ({"A": {"b": 1}}, "has a dict"),
        ({"A": [1]}, "has a list"),
    ],
)
def test_normalise_rejects_bad_input(values, message) -> None:
    with pytest.raises(ValueError, match=message):
        config_mod.normalise(values, "config")


def test_normalise_scalars() -> None:
    assert config_mod.normalise({"A": True, "B": 2, "C": "x", "D": 1.5}, "config") == {
        "A": "true",
        "B": "2",
        "C": "x",
        "D": "1.5",
    }


def test_same_key_in_config_and_secrets_is_refused(cli) -> None:
    with pytest.raises(ValueError, match="both as config and secret"):
        ensure(cli, config={"K": "1"}, secrets={"K": "2"})


def test_main_never_prints_the_secret(run_main, dokku: FakeDokku) -> None:
    dokku.apps["db"] = App()
    args = {"app": "db", "config": {"A": "1"}, "generate": ["DJANGO_SECRET_KEY"]}
    code, printed, out = run_main(config_mod, args, dokku)
    assert code == 0 and out["changed"]
    secret = dokku.apps["db"].config["DJANGO_SECRET_KEY"]
    assert secret not in printed


def test_main_masks_caller_secrets(run_main, dokku: FakeDokku) -> None:
    dokku.apps["db"] = App()
    args = {"app": "db", "secrets": {"API_TOKEN": "tok-0123456789abcdef"}}
    code, printed, _ = run_main(config_mod, args, dokku)
    assert code == 0
    assert "tok-0123456789abcdef" not in printed
