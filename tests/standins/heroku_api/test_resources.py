"""Reads and writes of the resources the heroku_app role manages, held to the schema.

Each answer is validated against its link's targetSchema by the server (the session
fixture fails on any response violation); these tests check what the answers say.
"""

from __future__ import annotations

from tests.standins.heroku_api.client import StandInClient
from tests.standins.heroku_api.test_platform import _deploy_tiny


def test_accept_header_takes_version_3_variants(standin: StandInClient, app_name: str) -> None:
    # The Heroku CLI sends `version=3.sdk`; Heroku serves any `version=3.<variant>`.
    for accept in (
        "application/vnd.heroku+json; version=3",
        "application/vnd.heroku+json; version=3.sdk",
        "application/vnd.heroku+json; version=3.pipelines",
    ):
        assert standin.api("GET", f"/apps/{app_name}", accept=accept).status == 200, accept
    for accept in ("application/vnd.heroku+json; version=2", "application/vnd.heroku+json"):
        assert standin.api("GET", f"/apps/{app_name}", accept=accept).status == 406, accept
    wrong = standin.api("GET", "/apps", accept="application/vnd.heroku+json; version=30")
    assert wrong.status == 406


def test_dynos_list_the_release_each_runs(standin: StandInClient, app_name: str) -> None:
    assert standin.ok("GET", f"/apps/{app_name}/dynos") == []
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "hi"})
    _, _, release = _deploy_tiny(standin, app_name)
    dynos = standin.wait(
        lambda: standin.ok("GET", f"/apps/{app_name}/dynos"),
        lambda d: [x["state"] for x in d] == ["up"],
        30,
    )
    (web,) = dynos
    assert web["name"] == "web.1" and web["type"] == "web" and web["size"] == "Basic"
    assert web["release"] == {"id": release["id"], "version": release["version"]}
    assert standin.ok("GET", f"/apps/{app_name}/dynos/web.1")["id"] == web["id"]
    assert standin.ok("GET", f"/apps/{app_name}/dynos/{web['id']}")["name"] == "web.1"
    assert standin.api("GET", f"/apps/{app_name}/dynos/web.9").status == 404
    # A config change is a new release: the dynos restart on it.
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "hello"})
    latest = standin.ok(
        "GET", f"/apps/{app_name}/releases", headers={"Range": "version ..; order=desc, max=1"}
    )[0]
    standin.wait(
        lambda: standin.ok("GET", f"/apps/{app_name}/dynos"),
        lambda d: [(x["release"]["version"], x["state"]) for x in d] == [(latest["version"], "up")],
        60,
    )
    assert standin.api("DELETE", f"/apps/{app_name}/dynos").status == 202


def test_addon_attachments_list_and_info(standin: StandInClient, app_name: str) -> None:
    addon = standin.ok("POST", f"/apps/{app_name}/addons", {"plan": "heroku-redis:mini"})
    mine = standin.ok("GET", f"/apps/{app_name}/addon-attachments")
    assert [(a["name"], a["addon"]["id"]) for a in mine] == [("REDIS", addon["id"])]
    everywhere = standin.ok("GET", "/addon-attachments")
    assert mine[0] in everywhere
    assert standin.ok("GET", f"/addon-attachments/{mine[0]['id']}") == mine[0]
    assert standin.ok("GET", f"/apps/{app_name}/addon-attachments/{mine[0]['id']}") == mine[0]
    assert standin.ok("GET", f"/addons/{addon['id']}/addon-attachments") == mine
    standin.ok("DELETE", f"/apps/{app_name}/addons/{addon['id']}")
    assert standin.ok("GET", f"/apps/{app_name}/addon-attachments") == []
    assert standin.api("GET", f"/apps/{app_name}/addons/{addon['id']}").status == 404


def test_domains_custom_and_acm(standin: StandInClient, app_name: str) -> None:
    base = f"/apps/{app_name}/domains"
    (heroku,) = standin.ok("GET", base)
    assert heroku["kind"] == "heroku" and heroku["cname"] is None
    app = standin.ok("GET", f"/apps/{app_name}")
    assert app["web_url"].split("/")[2].split(":")[0] == heroku["hostname"]
    made = standin.ok("POST", base, {"hostname": "www.example.org", "sni_endpoint": None})
    assert made["kind"] == "custom" and made["cname"].endswith(".herokudns.com")
    assert made["acm_status"] is None  # ACM off
    assert (
        standin.api("POST", base, {"hostname": "www.example.org", "sni_endpoint": None}).status
        == 422
    )
    assert standin.api("POST", base, {"hostname": "not a host", "sni_endpoint": None}).status == 422
    assert standin.api("POST", base, {"hostname": "www.example.org"}).status == 422  # schema
    assert standin.ok("GET", f"{base}/www.example.org")["id"] == made["id"]
    assert standin.ok("POST", f"/apps/{app_name}/acm")["acm"] is True
    assert standin.ok("GET", f"{base}/{made['id']}")["acm_status"] == "cert issued"
    assert standin.ok("PATCH", f"/apps/{app_name}/acm")["acm"] is True
    assert standin.ok("DELETE", f"{base}/www.example.org")["hostname"] == "www.example.org"
    assert [d["kind"] for d in standin.ok("GET", base)] == ["heroku"]
    assert standin.api("DELETE", f"{base}/{heroku['hostname']}").status == 422
    assert standin.ok("DELETE", f"/apps/{app_name}/acm")["acm"] is False
    assert standin.api("PATCH", f"/apps/{app_name}/acm").status == 422


def test_app_features(standin: StandInClient, app_name: str) -> None:
    base = f"/apps/{app_name}/features"
    features = {f["name"]: f for f in standin.ok("GET", base)}
    assert {"preboot", "runtime-dyno-metadata"} <= set(features)
    assert not any(f["enabled"] for f in features.values())
    on = standin.ok("PATCH", f"{base}/preboot", {"enabled": True})
    assert (
        on["enabled"] is True and on["doc_url"] == "https://devcenter.heroku.com/articles/preboot"
    )
    assert standin.ok("GET", f"{base}/{on['id']}")["enabled"] is True
    assert standin.api("PATCH", f"{base}/preboot", {}).status == 422
    assert standin.api("GET", f"{base}/no-such-feature").status == 404


def test_team_apps(standin: StandInClient) -> None:
    name = "t-team-app-created"
    try:
        made = standin.ok("POST", "/teams/apps", {"name": name, "team": "double-boiler-team"})
        assert made["team"] == {"name": "double-boiler-team"} and made["locked"] is False
        assert standin.ok("GET", f"/apps/{name}")["team"]["name"] == "double-boiler-team"
        listed = standin.ok("GET", "/teams/double-boiler-team/apps")
        assert name in [a["name"] for a in listed]
        assert standin.ok("PATCH", f"/teams/apps/{name}", {"locked": True})["locked"] is True
        assert standin.ok("GET", f"/teams/apps/{name}")["locked"] is True
        unknown = standin.api("POST", "/teams/apps", {"name": name + "x", "team": "nobody"})
        assert (unknown.status, unknown.json()["id"]) == (404, "not_found")
        taken = standin.api("POST", "/teams/apps", {"name": name, "team": "double-boiler-team"})
        assert taken.status == 422
    finally:
        standin.api("DELETE", f"/apps/{name}")


def test_collaborators_and_pipeline_coupling(standin: StandInClient, app_name: str) -> None:
    (owner,) = standin.ok("GET", f"/apps/{app_name}/collaborators")
    assert owner["role"] == "owner"
    none = standin.api("GET", f"/apps/{app_name}/pipeline-couplings")
    assert (none.status, none.json()["id"]) == (404, "not_found")
