"""module_utils/dokku_cli.py: parsers against Dokku's documented outputs, error mapping."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from ansible_collections.double_boiler.paas.plugins.module_utils.common import MASK

from tests.unit.conftest import dokku_cli

# A real ed25519 public key (its private half was thrown away).
ED25519 = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDYgmindIwWTftvnyRtQg6A11RMIoEa9HwxHI0CBuBdi test@example"
)


def test_parse_version_accepts_dokku_version_output() -> None:
    assert dokku_cli.parse_version("dokku version 0.37.4\n") == "0.37.4"
    assert dokku_cli.parse_version("dokku version v0.35.20\n") == "0.35.20"
    with pytest.raises(dokku_cli.DokkuError, match="Cannot read a version"):
        dokku_cli.parse_version("command not found")


def test_version_tuple_orders_numerically() -> None:
    assert dokku_cli.version_tuple("0.37.0") > dokku_cli.version_tuple("0.36.12")
    assert dokku_cli.version_tuple("0.9.9") < dokku_cli.version_tuple("0.10.0")


def test_parse_scale_reads_the_documented_table() -> None:
    text = "-----> Scaling for python\nproctype: qty\n--------: ---\nweb:  1\nworker: 4\n"
    assert dokku_cli.parse_scale(text) == {"web": 1, "worker": 4}
    # --quiet drops the header lines
    assert dokku_cli.parse_scale("web:  1\n") == {"web": 1}


def test_parse_scale_reads_json_format() -> None:
    text = '[{"process_type":"web","quantity":1},{"process_type":"worker","quantity":4}]'
    assert dokku_cli.parse_scale(text) == {"web": 1, "worker": 4}
    assert dokku_cli.parse_scale("[]") == {}


def test_parse_config_json() -> None:
    assert dokku_cli.parse_config_json('{"A": "1", "B": ""}\n') == {"A": "1", "B": ""}
    assert dokku_cli.parse_config_json("") == {}
    with pytest.raises(dokku_cli.DokkuError, match="did not print JSON"):
        dokku_cli.parse_config_json("export A='1'")
    with pytest.raises(dokku_cli.DokkuError, match="JSON object"):
        dokku_cli.parse_config_json("[1]")


def test_parse_ssh_keys_reads_sshcommand_list() -> None:
    text = (
        'SHA256:abc+def NAME="admin" SSHCOMMAND_ALLOWED_KEYS="no-agent-forwarding"\n'
        'SHA256:xyz NAME="alice@laptop" SSHCOMMAND_ALLOWED_KEYS="no-port-forwarding"\n'
    )
    assert dokku_cli.parse_ssh_keys(text) == {
        "admin": "SHA256:abc+def",
        "alice@laptop": "SHA256:xyz",
    }


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_ssh_fingerprint_matches_ssh_keygen(tmp_path) -> None:
    path = tmp_path / "key.pub"
    path.write_text(ED25519 + "\n")
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(path)], check=True, capture_output=True, text=True
    ).stdout
    assert dokku_cli.ssh_fingerprint(ED25519) == out.split()[1]


def test_ssh_fingerprint_known_value() -> None:
    # What `ssh-keygen -lf` printed for this key; pinned for hosts without ssh-keygen.
    expected = "SHA256:+Rx24SV1Kc6Xmgr3LYg7WtB341UmrX15UgUY8PU6IYc"
    assert dokku_cli.ssh_fingerprint(ED25519) == expected
    # authorized_keys options before the key type are skipped
    assert dokku_cli.ssh_fingerprint('no-pty,command="x" ' + ED25519) == expected
    with pytest.raises(ValueError, match="not an OpenSSH public key"):
        dokku_cli.ssh_fingerprint("hello")
    with pytest.raises(ValueError, match="does not decode"):
        dokku_cli.ssh_fingerprint("ssh-ed25519 not*base64")
    with pytest.raises(ValueError, match="not a ssh-rsa key"):
        dokku_cli.ssh_fingerprint("ssh-rsa " + ED25519.split()[1])
    with pytest.raises(ValueError, match="not a ssh-ed25519 key"):
        dokku_cli.ssh_fingerprint("ssh-ed25519 aGVsbG8=")


def make_cli(rc: int, out: str = "", err: str = ""):  # type: ignore[no-untyped-def]
    return dokku_cli.DokkuCli(lambda argv, stdin: (rc, out, err))


def test_exit_20_is_reported_as_missing_app() -> None:
    cli = make_cli(20, err=" !     App nope does not exist\n")
    with pytest.raises(dokku_cli.DokkuError, match="app does not exist") as exc:
        cli.run("ps:scale", "nope")
    assert exc.value.details["rc"] == 20
    assert exc.value.details["cmd"] == "dokku ps:scale nope"


def test_unknown_command_names_a_missing_plugin() -> None:
    cli = make_cli(1, err=" !     `postgres:exists` is not a dokku command.\n")
    with pytest.raises(dokku_cli.DokkuError, match="no 'postgres:exists' command"):
        cli.run("postgres:exists", "db")


def test_root_only_command_asks_for_become() -> None:
    cli = make_cli(1, err=" !     This command must be run as root\n")
    with pytest.raises(dokku_cli.DokkuError, match="become: true"):
        cli.run("plugin:install", "https://example.invalid/p.git")


def test_other_failures_quote_the_last_line() -> None:
    cli = make_cli(1, out="-----> working\n", err=" !     something broke\n")
    with pytest.raises(dokku_cli.DokkuError, match=r"exit code 1: ! +something broke"):
        cli.run("domains:set", "app", "x.example")


def test_hidden_values_never_reach_errors() -> None:
    secret = "s3cr3t-value-xyz"
    cli = make_cli(1, out=f"       DJANGO_SECRET_KEY:  {secret}\n", err=f"bad {secret}\n")
    cli.hide(secret)
    with pytest.raises(dokku_cli.DokkuError) as exc:
        cli.run("config:set", "app", f"DJANGO_SECRET_KEY={secret}")
    text = exc.value.msg + repr(exc.value.details)
    assert secret not in text
    assert MASK in text


def test_shown_args_replace_real_args_in_errors() -> None:
    cli = make_cli(1, err="nope\n")
    with pytest.raises(dokku_cli.DokkuError) as exc:
        cli.run("config:set", "app", "K=dmFsdWU=", shown_args=["config:set", "app", "K=***"])
    assert "dmFsdWU=" not in exc.value.details["cmd"]


def test_app_exists_maps_20_to_false_and_other_errors_to_exceptions() -> None:
    assert make_cli(0).app_exists("a") is True
    assert make_cli(20, err="App a does not exist").app_exists("a") is False
    assert make_cli(1, err="App does not exist").app_exists("a") is False  # older Dokku
    with pytest.raises(dokku_cli.DokkuError):
        make_cli(1, err="permission denied").app_exists("a")


def test_app_name_rule_is_dokkus() -> None:
    for good in ("double-boiler", "a", "app.example.org", "0app"):
        assert dokku_cli.APP_NAME_RE.match(good)
    for bad in ("Double", "-app", "my_app", "", "app name", ".app"):
        assert not dokku_cli.APP_NAME_RE.match(bad)
