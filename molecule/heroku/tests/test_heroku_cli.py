"""Heroku's own CLI reads back what the play deployed (issue 10).

The six commands a user runs after a deploy, against the stand-in with any token:
each must succeed and show what the play set. Their output is saved to
`heroku-cli-readback.txt` in the ephemeral directory (config values masked).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import API_URL, APP

from tests.standins.heroku_api.client import StandInClient
from tests.support.heroku_cli import HerokuCLI, heroku_cli

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp"))
COMMANDS = {
    "apps:info": ("apps:info", "-a", APP, "--json"),
    "config": ("config", "-a", APP, "--json"),
    "addons": ("addons", "-a", APP, "--json"),
    "releases": ("releases", "-a", APP, "--json"),
    "ps": ("ps", "-a", APP, "--json"),
    "buildpacks": ("buildpacks", "-a", APP),
}


@pytest.fixture(scope="module")
def cli(token: str) -> HerokuCLI:
    return heroku_cli(API_URL, token)


@pytest.fixture(scope="module")
def outputs(cli: HerokuCLI, api: StandInClient) -> dict[str, str]:
    found = {name: cli.ok(*args) for name, args in COMMANDS.items()}
    config = api.ok("GET", f"/apps/{APP}/config-vars")
    report = []
    for name, text in found.items():
        for value in config.values():  # the readback shows values: mask them in the file
            if len(value) >= 8:
                text = text.replace(value, "<masked>")
        report.append(f"$ heroku {' '.join(COMMANDS[name])}\n{text}")
    (EPHEMERAL / "heroku-cli-readback.txt").write_text("\n".join(report))
    return found


def test_apps_info_shows_the_app_and_its_dynos(outputs: dict[str, str], api: StandInClient) -> None:
    info = json.loads(outputs["apps:info"])
    app = api.ok("GET", f"/apps/{APP}")
    assert info["app"]["id"] == app["id"] and info["app"]["web_url"] == app["web_url"]
    assert sorted(a["plan"]["name"] for a in info["addons"]) == [
        "heroku-postgresql:essential-0",
        "heroku-redis:mini",
    ]
    assert [d["type"] for d in info["dynos"]] == ["web"]


def test_config_shows_the_keys_and_our_log_never_the_secret(
    outputs: dict[str, str], api: StandInClient
) -> None:
    config = json.loads(outputs["config"])
    assert config == api.ok("GET", f"/apps/{APP}/config-vars")
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DOUBLE_BOILER_MODE"} <= set(config)
    log = Path(os.environ["ANSIBLE_LOG_PATH"]).read_text()
    assert "PLAY [" in log  # the plays did write their log there
    assert config["DJANGO_SECRET_KEY"] not in log


def test_addons_show_the_plans(outputs: dict[str, str]) -> None:
    addons = json.loads(outputs["addons"])
    plans = {a["plan"]["name"]: [att["name"] for att in a["attachments"]] for a in addons}
    assert plans == {"heroku-postgresql:essential-0": ["DATABASE"], "heroku-redis:mini": ["REDIS"]}
    assert {a["state"] for a in addons} == {"provisioned"}


def test_releases_show_the_current_deploy(outputs: dict[str, str], api: StandInClient) -> None:
    releases = json.loads(outputs["releases"])
    (current,) = [r for r in releases if r["current"]]
    latest = api.ok(
        "GET", f"/apps/{APP}/releases", headers={"Range": "version ..; order=desc, max=1"}
    )[0]
    assert current["version"] == latest["version"] and current["status"] == "succeeded"
    # The broker-switch fault case runs before and switches back: that config change is
    # a release of its own on the deployed slug, as on Heroku.
    assert current["description"] == latest["description"]
    assert any(r["description"].startswith("Deploy ") for r in releases), releases


def test_ps_shows_the_formation_on_the_current_release(
    outputs: dict[str, str], api: StandInClient
) -> None:
    ps = json.loads(outputs["ps"])
    current = next(r for r in api.ok("GET", f"/apps/{APP}/releases") if r["current"])
    formation = {f["type"]: f["quantity"] for f in api.ok("GET", f"/apps/{APP}/formation")}
    running = {}
    for dyno in ps:
        running[dyno["type"]] = running.get(dyno["type"], 0) + 1
        assert dyno["state"] == "up"
        assert dyno["release"]["version"] == current["version"]
    assert running == {t: q for t, q in formation.items() if q}


def test_buildpacks_show_python(outputs: dict[str, str]) -> None:
    assert re.search(r"heroku/python", outputs["buildpacks"])
