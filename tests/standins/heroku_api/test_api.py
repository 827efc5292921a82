"""The running stand-in answers as Heroku documents, and logs what it saw."""

from __future__ import annotations

import json
import ssl

import psycopg
import pytest
import redis

from tests.standins.heroku_api.client import StandInClient, StandInProcess
from tests.standins.heroku_api.conftest import TOKEN
from tests.standins.heroku_api.schema import HyperSchema


def _link(hyper_schema: HyperSchema, key: str):
    return next(link for link in hyper_schema.links if link.key == key)


def test_app_lifecycle_answers_validate(
    standin: StandInClient, hyper_schema: HyperSchema, app_name: str
) -> None:
    app = standin.ok("GET", f"/apps/{app_name}")
    assert hyper_schema.response_errors(_link(hyper_schema, "GET /apps/{app}"), app) == []
    assert app["region"]["name"] == "us" and app["stack"]["name"] == "heroku-24"
    assert app["web_url"].startswith("http://127.0.0.1:56")
    by_id = standin.ok("GET", f"/apps/{app['id']}")
    assert by_id["name"] == app_name
    updated = standin.ok("PATCH", f"/apps/{app_name}", {"build_stack": "heroku-22"})
    assert updated["build_stack"]["name"] == "heroku-22"
    assert updated["stack"]["name"] == "heroku-24"  # changes with the next build
    releases = standin.ok("GET", f"/apps/{app_name}/releases")
    assert sorted(r["description"] for r in releases) == ["Enable Logplex", "Initial release"]


def test_app_names_are_unique_and_validated(standin: StandInClient, app_name: str) -> None:
    taken = standin.api("POST", "/apps", {"name": app_name})
    assert taken.status == 422 and taken.json()["id"] == "invalid_params"
    bad = standin.api("POST", "/apps", {"name": "Bad_Name"})
    assert bad.status == 422 and bad.json()["id"] == "invalid_params"
    private = standin.api("POST", "/apps", {"name": app_name + "x", "region": "tokyo"})
    assert private.status == 422


def test_errors_and_their_ids(standin: StandInClient) -> None:
    assert standin.api("GET", "/apps/no-such-app").json()["id"] == "not_found"
    unauth = standin.api("GET", "/apps", token=None)
    assert (unauth.status, unauth.json()["id"]) == (401, "unauthorized")
    wrong = standin.api("GET", "/apps", token="not-the-token")
    assert wrong.status == 401
    no_accept = standin.api("GET", "/apps", accept="application/json")
    assert (no_accept.status, no_accept.json()["id"]) == (406, "not_acceptable")
    nowhere = standin.api("GET", "/apps/some-app/nothing-here")
    assert (nowhere.status, nowhere.json()["id"]) == (404, "not_found")
    bad_range = standin.api("GET", "/apps", headers={"Range": "colour ..; max=3"})
    assert (bad_range.status, bad_range.json()["id"]) == (416, "requested_range_not_satisfiable")


def test_request_log_records_violations_without_the_token(
    standin: StandInClient, standin_process: StandInProcess
) -> None:
    since = standin.next_seq()
    standin.api("GET", "/apps/some-app/nothing-here")
    standin.api("POST", "/apps", {"name": "Bad_Name"})
    standin.api("GET", "/apps", accept="application/json")
    standin.api("GET", "/apps")
    entries = standin.requests(since)
    assert [bool(e["violations"]) for e in entries] == [True, True, True, False]
    assert "no link" in entries[0]["violations"][0]
    assert entries[1]["link"] == "POST /apps" and entries[1]["writes"] is True
    assert entries[3]["link"] == "GET /apps" and entries[3]["writes"] is False
    state = standin_process.state_dir
    for path in (state / "requests.jsonl", state / "standin.log"):
        assert TOKEN not in path.read_text()
    assert TOKEN not in json.dumps(standin.requests())


def test_config_vars_merge_delete_and_release(standin: StandInClient, app_name: str) -> None:
    base = f"/apps/{app_name}"
    assert standin.ok("PATCH", f"{base}/config-vars", {"A": "1", "B": "2"}) == {"A": "1", "B": "2"}
    assert standin.ok("PATCH", f"{base}/config-vars", {"B": None, "C": "3"}) == {"A": "1", "C": "3"}
    before = len(standin.ok("GET", f"{base}/releases"))
    standin.ok("PATCH", f"{base}/config-vars", {"A": "1"})  # no change: no release
    releases = standin.ok("GET", f"{base}/releases", headers={"Range": "version ..; order=desc"})
    assert len(releases) == before
    latest = releases[0]
    assert latest["description"] == "Set C config vars; Remove B config vars"
    assert latest["status"] == "succeeded" and latest["current"] is True
    config = standin.ok("GET", f"{base}/releases/{latest['version']}/config-vars")
    assert config == {"A": "1", "C": "3"}
    bad = standin.api("PATCH", f"{base}/config-vars", {"NOT-A-WORD": "x"})
    assert bad.status == 422


def test_release_paging_over_http(standin: StandInClient, app_name: str) -> None:
    for i in range(9):
        standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"N": str(i)})
    header, versions = "version ..; max=4", []
    while True:
        reply = standin.api("GET", f"/apps/{app_name}/releases", headers={"Range": header})
        versions += [r["version"] for r in reply.json()]
        if reply.status != 206:
            break
        header = reply.header("Next-Range")
    assert versions == list(range(1, 12))


def test_buildpacks_are_replaced(standin: StandInClient, app_name: str) -> None:
    path = f"/apps/{app_name}/buildpack-installations"
    assert standin.ok("GET", path) == []
    answer = standin.ok(
        "PUT", path, {"updates": [{"buildpack": "heroku/nodejs"}, {"buildpack": "heroku/python"}]}
    )
    assert [b["buildpack"]["name"] for b in answer] == ["heroku/nodejs", "heroku/python"]
    answer = standin.ok("PUT", path, {"updates": [{"buildpack": "heroku/python"}]})
    assert answer == [
        {"buildpack": {"url": "urn:buildpack:heroku/python", "name": "heroku/python"}, "ordinal": 0}
    ]


def test_addons_provision_real_services(standin: StandInClient, app_name: str) -> None:
    path = f"/apps/{app_name}/addons"
    pg = standin.ok("POST", path, {"plan": "heroku-postgresql:essential-0"})
    rd = standin.ok("POST", path, {"plan": "heroku-redis:mini"})
    assert pg["state"] == rd["state"] == "provisioning"
    assert standin.api("POST", path, {"plan": "heroku-postgresql:galactic"}).status == 422
    assert standin.api("POST", path, {"plan": "no-such-service"}).status == 422
    addons = standin.wait(
        lambda: standin.ok("GET", path), lambda a: all(x["state"] == "provisioned" for x in a), 60
    )
    assert {a["config_vars"][0] for a in addons} == {"DATABASE_URL", "REDIS_URL"}
    config = standin.ok("GET", f"/apps/{app_name}/config-vars")
    # Heroku Postgres takes SSL connections only; Heroku Redis is rediss:// (self-signed).
    with psycopg.connect(config["DATABASE_URL"], sslmode="require") as conn:
        assert conn.execute(
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()"
        ).fetchone() == (True,)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(config["DATABASE_URL"], sslmode="disable")
    assert config["REDIS_URL"].startswith("rediss://")
    assert redis.Redis.from_url(config["REDIS_URL"], ssl_cert_reqs=ssl.CERT_NONE).ping()
    descriptions = [r["description"] for r in standin.ok("GET", f"/apps/{app_name}/releases")]
    assert any(d.startswith("Attach DATABASE (@ref:postgresql-") for d in descriptions)
    assert any(d.startswith("Attach REDIS (@ref:redis-") for d in descriptions)
    one = standin.ok("GET", f"/addons/{pg['name']}")
    assert one["id"] == pg["id"]
    gone = standin.ok("DELETE", f"{path}/{pg['id']}")
    assert gone["state"] == "deprovisioned"
    assert "DATABASE_URL" not in standin.ok("GET", f"/apps/{app_name}/config-vars")


def test_sources_are_presigned_blob_urls(standin: StandInClient) -> None:
    since = standin.next_seq()
    blob = standin.ok("POST", "/sources")["source_blob"]
    assert blob["get_url"] != blob["put_url"]
    assert standin.raw("GET", blob["get_url"]).status == 404  # nothing uploaded yet
    assert standin.raw("PUT", blob["get_url"], b"x", {"Content-Type": ""}).status == 403
    assert standin.raw("PUT", blob["put_url"], b"payload", {"Content-Type": ""}).status == 200
    assert standin.raw("GET", blob["get_url"]).body == b"payload"
    kinds = [(e["kind"], e["method"], e["writes"]) for e in standin.requests(since)]
    assert kinds[0] == ("api", "POST", True)
    assert ("blob", "PUT", True) in kinds
    gone = standin.api("POST", "/apps/some-app/sources")
    assert (gone.status, gone.json()["id"]) == (410, "gone")


def test_rate_limit_header_counts_down(standin: StandInClient) -> None:
    first = int(standin.api("GET", "/apps").header("RateLimit-Remaining"))
    second = int(standin.api("GET", "/apps").header("RateLimit-Remaining"))
    assert second < first <= 4500


def test_etag_and_if_none_match(standin: StandInClient, app_name: str) -> None:
    first = standin.api("GET", f"/apps/{app_name}")
    again = standin.api("GET", f"/apps/{app_name}", headers={"If-None-Match": first.header("ETag")})
    assert again.status == 304 and again.body == b""


def test_every_answer_so_far_validated(standin: StandInClient) -> None:
    """The server checks each answer against targetSchema; none may have failed."""
    response_violations = [
        e for e in standin.requests() if any(v.startswith("response:") for v in e["violations"])
    ]
    assert response_violations == []
    assert standin.admin("GET", "health")["internal_errors"] == []
