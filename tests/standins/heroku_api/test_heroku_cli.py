"""The real Heroku CLI reads back what was deployed on the stand-in.

The CLI is Heroku's own client (pinned in tests/tooling/heroku-cli): what it can
read here, it can read on Heroku. Each command below must succeed and show the
values the API holds.
"""

from __future__ import annotations

import pytest

from tests.standins.heroku_api.client import StandInClient, StandInProcess
from tests.standins.heroku_api.test_platform import _deploy_tiny
from tests.support.heroku_cli import HerokuCLI, heroku_cli


@pytest.fixture(scope="module")
def cli(standin_process: StandInProcess) -> HerokuCLI:
    return heroku_cli(standin_process.client.base_url, standin_process.token)


def test_the_six_readbacks(cli: HerokuCLI, standin: StandInClient, app_name: str) -> None:
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "hi", "PLAIN": "x"})
    standin.ok(
        "PUT",
        f"/apps/{app_name}/buildpack-installations",
        {"updates": [{"buildpack": "heroku/python"}]},
    )
    addon = standin.ok("POST", f"/apps/{app_name}/addons", {"plan": "heroku-redis:mini"})
    standin.wait(
        lambda: standin.ok("GET", f"/apps/{app_name}/addons/{addon['id']}"),
        lambda a: a["state"] == "provisioned",
        60,
    )
    _, _, release = _deploy_tiny(standin, app_name)
    standin.wait(
        lambda: standin.ok("GET", f"/apps/{app_name}/dynos"),
        lambda d: [x["state"] for x in d] == ["up"],
        30,
    )
    since = standin.next_seq()

    info = cli.json("apps:info", "-a", app_name)
    assert info["app"]["name"] == app_name
    assert [d["name"] for d in info["dynos"]] == ["web.1"]
    assert [a["plan"]["name"] for a in info["addons"]] == ["heroku-redis:mini"]

    config = cli.json("config", "-a", app_name)
    assert config == standin.ok("GET", f"/apps/{app_name}/config-vars")
    assert {"GREETING", "PLAIN", "REDIS_URL"} <= set(config)

    addons = cli.json("addons", "-a", app_name)
    assert [(a["name"], a["plan"]["name"]) for a in addons] == [
        (addon["name"], "heroku-redis:mini")
    ]
    assert [att["name"] for att in addons[0]["attachments"]] == ["REDIS"]

    releases = cli.json("releases", "-a", app_name)
    current = [r for r in releases if r["current"]]
    assert [r["version"] for r in current] == [release["version"]]

    ps = cli.json("ps", "-a", app_name)
    assert [(d["name"], d["state"], d["release"]["version"]) for d in ps] == [
        ("web.1", "up", release["version"])
    ]

    buildpacks = cli.ok("buildpacks", "-a", app_name)
    assert "heroku/python" in buildpacks

    sent = [e for e in standin.requests(since) if e["kind"] == "api"]
    assert {e["status"] for e in sent} <= {200, 206, 404}, sent  # 404: no pipeline coupling
    assert [e for e in sent if e["violations"]] == []
    assert any("version=3.sdk" in (e["accept"] or "") for e in sent)


def test_a_wrong_token_is_refused_as_heroku_does(cli: HerokuCLI, app_name: str) -> None:
    wrong = HerokuCLI(cli.executable, cli.api_url, "not-the-token", cli.home)
    done = wrong.run("config", "-a", app_name, "--json")
    assert done.returncode != 0
    assert "Invalid credentials provided" in done.stderr or "invalid" in done.stderr.lower()
