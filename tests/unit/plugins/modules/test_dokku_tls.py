"""dokku_tls: plain HTTP, a given certificate through certs:add (issue 9 #1)."""

from __future__ import annotations

import pytest

from tests.support.fake_dokku import App, FakeDokku
from tests.unit.conftest import load_module

tls = load_module("dokku_tls")
CRT, KEY = "/srv/tls/server.crt", "/srv/tls/server.key"


@pytest.fixture
def files(dokku: FakeDokku) -> dict[str, str]:
    dokku.files.update(
        {CRT: "-----BEGIN CERTIFICATE-----\nA\n", KEY: "-----BEGIN KEY-----\nsecretkey\n"}
    )
    return dokku.files


def test_certificate_is_added_once(dokku: FakeDokku, cli, files) -> None:
    dokku.apps["db"] = App(deployed=True)
    first = tls.ensure_tls(cli, "db", "certificate", files.__getitem__, certificate=CRT, key=KEY)
    assert first["changed"] and first["https"] and "diff" in first
    assert ["certs:add", "db", CRT, KEY] in dokku.calls
    dokku.calls.clear()
    again = tls.ensure_tls(cli, "db", "certificate", files.__getitem__, certificate=CRT, key=KEY)
    assert again == {"changed": False, "https": True} and dokku.mutating_calls() == []


def test_a_renewed_certificate_is_added_again(dokku: FakeDokku, cli, files) -> None:
    dokku.apps["db"] = App(deployed=True)
    tls.ensure_tls(cli, "db", "certificate", files.__getitem__, certificate=CRT, key=KEY)
    files[CRT] = "-----BEGIN CERTIFICATE-----\nB\n"
    result = tls.ensure_tls(cli, "db", "certificate", files.__getitem__, certificate=CRT, key=KEY)
    assert result["changed"] and dokku.apps["db"].cert.endswith("B\n")


def test_none_removes_a_certificate_left_over(dokku: FakeDokku, cli, files) -> None:
    dokku.apps["db"] = App(cert="x", cert_key="y")
    result = tls.ensure_tls(cli, "db", "none", files.__getitem__)
    assert result["changed"] and not result["https"] and dokku.apps["db"].cert == ""
    assert tls.ensure_tls(cli, "db", "none", files.__getitem__) == {
        "changed": False,
        "https": False,
    }


def test_letsencrypt_without_the_plugin_names_the_fix(dokku: FakeDokku, cli, files) -> None:
    dokku.apps["db"] = App()
    with pytest.raises(tls.DokkuError, match="dokku_host_letsencrypt"):
        tls.ensure_tls(cli, "db", "letsencrypt", files.__getitem__, email="ops@example.org")


def test_letsencrypt_uses_the_plugins_documented_commands_once(
    dokku: FakeDokku, cli, files
) -> None:
    dokku.plugins.add("letsencrypt")
    dokku.apps["db"] = App(deployed=True)
    first = tls.ensure_tls(cli, "db", "letsencrypt", files.__getitem__, email="ops@example.org")
    assert first["changed"] and first["https"] and dokku.letsencrypt_cron
    assert ["letsencrypt:set", "db", "email", "ops@example.org"] in dokku.calls
    assert ["letsencrypt:enable", "db"] in dokku.calls
    dokku.calls.clear()
    again = tls.ensure_tls(cli, "db", "letsencrypt", files.__getitem__, email="ops@example.org")
    assert not again["changed"]
    assert dokku.mutating_calls() == []


def test_check_mode_before_the_files_are_copied_reports_a_change(dokku: FakeDokku, cli) -> None:
    dokku.apps["db"] = App(deployed=True)

    def missing(path: str) -> str:
        raise tls.DokkuError(f"Cannot read {path} on the Dokku host")

    result = tls.ensure_tls(
        cli, "db", "certificate", missing, certificate=CRT, key=KEY, check_mode=True
    )
    assert result["changed"] and dokku.mutating_calls() == []
