"""dokku_app: the app is created once, against the fake Dokku."""

from __future__ import annotations

from tests.support.fake_dokku import FakeDokku
from tests.unit.conftest import load_module

dokku_app = load_module("dokku_app")


def test_app_is_created_once(dokku: FakeDokku, cli) -> None:
    first = dokku_app.ensure_app(cli, "db", check_mode=False)
    assert first["changed"] and first["created"]
    assert "db" in dokku.apps
    second = dokku_app.ensure_app(cli, "db", check_mode=False)
    assert second == {"changed": False, "created": False}
    assert dokku.mutating_calls() == [["apps:create", "db"]]


def test_app_check_mode_creates_nothing(dokku: FakeDokku, cli) -> None:
    result = dokku_app.ensure_app(cli, "db", check_mode=True)
    assert result["changed"]
    assert dokku.apps == {}
    assert dokku.mutating_calls() == []


def test_app_main_rejects_an_invalid_name(run_main, dokku: FakeDokku) -> None:
    code, _, out = run_main(dokku_app, {"app": "My_App"}, dokku)
    assert code == 1
    assert "Invalid Dokku app name 'My_App'" in out["msg"]
    assert dokku.calls == []


def test_app_main_without_dokku_fails_clearly(run_main) -> None:
    code, _, out = run_main(dokku_app, {"app": "db"}, None)
    assert code == 1
    assert "Dokku is not installed" in out["msg"]


def test_app_main_without_dokku_in_check_mode_reports_a_change(run_main) -> None:
    code, _, out = run_main(dokku_app, {"app": "db"}, None, check_mode=True)
    assert code == 0 and out["changed"] is True


def test_app_main_creates(run_main, dokku: FakeDokku) -> None:
    code, _, out = run_main(dokku_app, {"app": "db"}, dokku)
    assert code == 0 and out["changed"] and "db" in dokku.apps


# Not dokku_app's own: the fake Dokku that every dokku_* test here relies on.
def test_unused_fake_stays_honest() -> None:
    # The fake refuses commands Dokku does not have, as Dokku does.
    dokku = FakeDokku()
    rc, _, err = dokku(["dokku", "apps:frobnicate"], None)
    assert rc == 1 and "is not a dokku command" in err
