"""The heroku_* modules against the in-memory fake: diffing, check mode, waits, secrecy."""

from __future__ import annotations

import hashlib

import pytest
from fake_heroku import API, BLOBS, TOKEN, Fault

# -- heroku_app ---------------------------------------------------------------------------


def test_app_is_created_when_absent_then_left_alone(run_module, fake):
    result, _ = run_module("heroku_app", region="eu", stack="heroku-24")
    assert result["changed"] is True
    assert fake.api_writes() == ["POST /apps"]
    assert fake.writes()[0].json == {"name": "double-boiler", "region": "eu", "stack": "heroku-24"}
    assert result["web_url"].startswith("https://double-boiler")
    fake.calls.clear()
    again, _ = run_module("heroku_app", region="eu", stack="heroku-24")
    assert again["changed"] is False
    assert fake.writes() == []


def test_app_stack_is_patched_when_it_differs(run_module, fake):
    fake.add_app(stack="heroku-22")
    result, _ = run_module("heroku_app", stack="heroku-24")
    assert result["changed"] is True
    assert fake.api_writes() == ["PATCH /apps/double-boiler"]
    assert fake.writes()[0].json == {"build_stack": "heroku-24"}
    assert result["diff"]["before"]["stack"] == "heroku-22"


def test_app_in_another_region_fails_without_writing(run_module, fake):
    fake.add_app(region="eu")
    result, _ = run_module("heroku_app", region="us")
    assert result["failed"] is True
    assert "heroku_app_region: eu" in result["msg"]
    assert fake.writes() == []


def test_app_check_mode_reports_creation_without_writing(run_module, fake):
    result, _ = run_module("heroku_app", check_mode=True)
    assert result["changed"] is True and result["exists"] is False
    assert fake.writes() == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"app": "Bad_Name"}, "not valid on Heroku"),
        ({"api_key": ""}, "HEROKU_API_KEY"),
        ({"region": "US East"}, "region"),
        ({"stack": "heroku 24"}, "stack"),
        ({"api_url": "api.heroku.com"}, "api_url"),
    ],
)
def test_bad_inputs_fail_before_any_request(run_module, fake, args, fragment):
    result, _ = run_module("heroku_app", **args)
    assert result["failed"] is True and fragment in result["msg"]
    assert fake.calls == []


def test_token_from_environment_and_never_in_output(run_module, fake, monkeypatch):
    monkeypatch.setenv("HEROKU_API_KEY", TOKEN)
    result, raw = run_module("heroku_app", api_key=None)
    assert result["changed"] is True
    assert TOKEN not in raw


# -- heroku_buildpacks --------------------------------------------------------------------


def test_buildpacks_set_only_when_different(run_module, fake):
    fake.add_app()
    result, _ = run_module("heroku_buildpacks", buildpacks=["heroku/python"])
    assert result["changed"] is True
    assert fake.api_writes() == ["PUT /apps/double-boiler/buildpack-installations"]
    assert fake.writes()[0].json == {"updates": [{"buildpack": "heroku/python"}]}
    fake.calls.clear()
    again, _ = run_module("heroku_buildpacks", buildpacks=["heroku/python"])
    assert again["changed"] is False and fake.writes() == []


def test_buildpack_matches_by_url_too(run_module, fake):
    fake.add_app()
    fake.buildpacks["double-boiler"] = [
        {
            "ordinal": 0,
            "buildpack": {
                "name": "heroku/python",
                "url": "https://buildpack-registry.example/python.tgz",
            },
        }
    ]
    result, _ = run_module(
        "heroku_buildpacks", buildpacks=["https://buildpack-registry.example/python.tgz"]
    )
    assert result["changed"] is False and fake.writes() == []


def test_buildpacks_order_matters_and_check_mode_does_not_write(run_module, fake):
    fake.add_app()
    fake.buildpacks["double-boiler"] = [
        {"ordinal": 0, "buildpack": {"name": "heroku/python", "url": "heroku/python"}},
        {"ordinal": 1, "buildpack": {"name": "heroku/nodejs", "url": "heroku/nodejs"}},
    ]
    result, _ = run_module(
        "heroku_buildpacks", check_mode=True, buildpacks=["heroku/nodejs", "heroku/python"]
    )
    assert result["changed"] is True and fake.writes() == []
    assert result["diff"]["before"]["buildpacks"] == ["heroku/python", "heroku/nodejs"]


# -- heroku_addons ------------------------------------------------------------------------

PLANS = ["heroku-postgresql:essential-0", "heroku-redis:mini"]


def test_addons_created_when_absent_and_waited_for(run_module, fake, fake_time):
    fake.add_app()
    fake.addon_polls_to_provision = 3
    result, _ = run_module("heroku_addons", plans=PLANS, poll_interval=2)
    assert result["changed"] is True
    assert fake.api_writes() == ["POST /apps/double-boiler/addons"] * 2
    assert [w.json for w in fake.writes()] == [{"plan": p} for p in PLANS]
    assert [a["state"] for a in result["addons"]] == ["provisioned", "provisioned"]
    assert fake_time.sleeps == [2, 2, 2, 2]
    fake.calls.clear()
    again, _ = run_module("heroku_addons", plans=PLANS)
    assert again["changed"] is False and fake.writes() == []


def test_addon_matched_by_service_not_name_and_plan_left_alone(run_module, fake):
    fake.add_app()
    fake._create_addon("double-boiler", {"plan": "heroku-postgresql:standard-0"})
    fake.addons["double-boiler"][0]["name"] = "postgresql-curved-12345"
    fake.addons["double-boiler"][0]["state"] = "provisioned"
    result, _ = run_module("heroku_addons", plans=["heroku-postgresql:essential-0"])
    assert result["changed"] is False and fake.writes() == []
    # ansible-core 2.19 returns warnings as structured summaries: look at their text
    assert "heroku-postgresql:standard-0" in str(result["warnings"])


def test_addon_deprovisioned_fails_clearly(run_module, fake):
    fake.add_app()
    fake.addon_final_state = "deprovisioned"
    result, _ = run_module("heroku_addons", plans=PLANS[:1])
    assert result["failed"] is True and "deprovisioned" in result["msg"]


def test_addon_timeout_fails_clearly(run_module, fake, fake_time):
    fake.add_app()
    fake.addon_polls_to_provision = 10**6
    result, _ = run_module("heroku_addons", plans=PLANS[:1], timeout=30, poll_interval=5)
    assert result["failed"] is True and "still provisioning after 30 s" in result["msg"]
    assert sum(fake_time.sleeps) <= 35


def test_addons_check_mode_on_a_missing_app(run_module, fake):
    result, _ = run_module("heroku_addons", plans=PLANS, check_mode=True)
    assert result["changed"] is True and fake.writes() == []
    assert result["created"] == PLANS


def test_addon_plan_must_name_service_and_plan(run_module, fake):
    result, _ = run_module("heroku_addons", plans=["essential-0"])
    assert result["failed"] is True and "<service>:<plan>" in result["msg"]
    assert fake.calls == []


# -- heroku_config_vars -------------------------------------------------------------------

CONFIG = {"DOUBLE_BOILER_MODE": "one-dyno", "WEB_CONCURRENCY": "2", "ALLOWED_HOSTS": "x.test"}


def test_config_vars_one_patch_with_only_what_changed(run_module, fake):
    fake.add_app()
    fake.config["double-boiler"].update(
        {
            "WEB_CONCURRENCY": "2",
            "DATABASE_URL": "postgres://u:pw@db/x",
            "DJANGO_SECRET_KEY": "k" * 60,
        }
    )
    result, raw = run_module("heroku_config_vars", config=CONFIG)
    assert result["changed"] is True
    assert fake.api_writes() == ["PATCH /apps/double-boiler/config-vars"]
    assert fake.writes()[0].json == {"DOUBLE_BOILER_MODE": "one-dyno", "ALLOWED_HOSTS": "x.test"}
    assert result["changed_keys"] == ["ALLOWED_HOSTS", "DOUBLE_BOILER_MODE"]
    assert result["secret_generated"] is False
    assert "pw@db" not in raw and "k" * 60 not in raw
    assert result["release"]["status"] == "succeeded"


def test_secret_key_generated_once_never_shown_never_rotated(run_module, fake):
    fake.add_app()
    first, raw = run_module("heroku_config_vars", config=CONFIG)
    secret = fake.config["double-boiler"]["DJANGO_SECRET_KEY"]
    assert len(secret) >= 50 and first["secret_generated"] is True
    assert secret not in raw
    assert first["diff"]["after"]["DJANGO_SECRET_KEY"] == "<hidden>"
    assert first["diff"]["after"]["WEB_CONCURRENCY"] == "2"
    fake.calls.clear()
    second, _ = run_module("heroku_config_vars", config=CONFIG)
    assert second["changed"] is False and fake.writes() == []
    assert fake.config["double-boiler"]["DJANGO_SECRET_KEY"] == secret


def test_secret_key_rotates_only_when_asked(run_module, fake):
    fake.add_app()
    fake.config["double-boiler"]["DJANGO_SECRET_KEY"] = "old" * 20
    result, raw = run_module("heroku_config_vars", config={}, rotate_secret_key=True)
    new = fake.config["double-boiler"]["DJANGO_SECRET_KEY"]
    assert result["changed"] is True and new != "old" * 20
    assert new not in raw and "old" * 20 not in raw
    assert result["diff"]["before"] == {"DJANGO_SECRET_KEY": "<hidden>"}


def test_secret_config_values_never_appear(run_module, fake):
    fake.add_app()
    result, raw = run_module(
        "heroku_config_vars", config={}, secret_config={"SMTP_PASS": "hunter2-very-secret"}
    )
    assert result["changed"] is True
    assert fake.config["double-boiler"]["SMTP_PASS"] == "hunter2-very-secret"
    assert "hunter2-very-secret" not in raw


def test_config_check_mode_reports_without_writing(run_module, fake):
    fake.add_app()
    result, _ = run_module("heroku_config_vars", check_mode=True, config=CONFIG)
    assert result["changed"] is True and fake.writes() == []
    assert "DJANGO_SECRET_KEY" in result["changed_keys"]
    assert "DJANGO_SECRET_KEY" not in fake.config["double-boiler"]


def test_config_absent_keys_are_removed_only_if_present(run_module, fake):
    fake.add_app()
    fake.config["double-boiler"].update({"OLD": "1", "DJANGO_SECRET_KEY": "s" * 60})
    result, _ = run_module("heroku_config_vars", config={}, absent=["OLD", "NEVER_SET"])
    assert fake.writes()[0].json == {"OLD": None}
    assert result["changed_keys"] == ["OLD"]


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"DJANGO_HTTPS_ONLY": False}, "quote it"),
        ({"BAD-KEY": "x"}, "not a config var name"),
        ({"DJANGO_SECRET_KEY": "x" * 60}, "generated here"),
    ],
)
def test_config_bad_inputs_fail_before_any_request(run_module, fake, config, fragment):
    result, _ = run_module("heroku_config_vars", config=config)
    assert result["failed"] is True and fragment in result["msg"]
    assert fake.calls == []


def test_config_change_whose_release_fails_fails_the_task(run_module, fake, monkeypatch):
    fake.add_app()
    fake.config["double-boiler"]["DJANGO_SECRET_KEY"] = "s" * 60
    original = fake._new_release

    def failing(name, description, status, slug=None):
        release = original(name, description, "failed" if "config" in description else status)
        release["output_stream_url"] = "https://streams.fake-heroku.test/rel"
        fake.streams["https://streams.fake-heroku.test/rel"] = b"migrate: boom\n"
        return release

    monkeypatch.setattr(fake, "_new_release", failing)
    result, _ = run_module("heroku_config_vars", config={"A": "1"})
    assert result["failed"] is True
    assert "previous release keeps serving" in result["msg"] and "migrate: boom" in result["msg"]


# -- heroku_source_build ------------------------------------------------------------------


@pytest.fixture
def tarball(tmp_path):
    path = tmp_path / "source.tar.gz"
    path.write_bytes(b"pretend this is a deterministic tarball")
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def test_source_is_uploaded_built_and_released(run_module, fake, tarball):
    fake.add_app()
    fake.build_polls = 3
    path, sha = tarball
    result, raw = run_module("heroku_source_build", archive=path, sha256=sha, version="abc123")
    assert result["changed"] is True
    assert fake.api_writes() == ["POST /sources", "POST /apps/double-boiler/builds"]
    upload = [c for c in fake.writes() if c.url.startswith(BLOBS)]
    with open(path, "rb") as handle:
        assert len(upload) == 1 and upload[0].body == handle.read()
    assert "Authorization" not in upload[0].headers
    build_body = next(c for c in fake.writes() if c.path.endswith("/builds")).json
    assert build_body["source_blob"]["checksum"] == f"SHA256:{sha}"
    assert build_body["source_blob"]["version"] == "abc123"
    assert "?sig=get" in build_body["source_blob"]["url"]
    assert result["build"]["status"] == "succeeded"
    assert result["release"]["status"] == "succeeded"
    assert result["build_output"][0] == "-----> Building on the fake"
    assert "-----> Launching..." in result["build_output"]
    assert "  Apply all migrations: OK" in result["release_output"]
    assert "sig=put" not in raw  # upload URLs are capabilities, not shown


def test_same_checksum_already_released_sends_nothing(run_module, fake, tarball):
    fake.add_app()
    path, sha = tarball
    run_module("heroku_source_build", archive=path, sha256=sha)
    fake.calls.clear()
    result, _ = run_module("heroku_source_build", archive=path, sha256=sha)
    assert result["changed"] is False and result["skipped_build"] is True
    assert fake.writes() == []
    assert result["release"]["status"] == "succeeded"


def test_new_content_builds_again(run_module, fake, tarball, tmp_path):
    fake.add_app()
    path, sha = tarball
    run_module("heroku_source_build", archive=path, sha256=sha)
    other = tmp_path / "other.tar.gz"
    other.write_bytes(b"new content")
    result, _ = run_module("heroku_source_build", archive=str(other))
    assert result["changed"] is True
    assert len(fake.builds["double-boiler"]) == 2


def test_failed_build_fails_with_the_output_tail(run_module, fake, tarball):
    fake.add_app()
    fake.build_outcome = "failed"
    path, sha = tarball
    result, _ = run_module("heroku_source_build", archive=path, sha256=sha)
    assert result["failed"] is True
    assert "failed to compile Python app" in result["msg"]
    assert "previous release" in result["msg"]
    assert result["build_output"][0] == "-----> Building on the fake"


def test_failed_release_phase_fails_and_is_retried_next_run(run_module, fake, tarball):
    fake.add_app()
    fake.release_outcome = "failed"
    path, sha = tarball
    result, _ = run_module("heroku_source_build", archive=path, sha256=sha)
    assert result["failed"] is True
    assert "release phase" in result["msg"] and "OperationalError" in result["msg"]
    assert "  Apply all migrations: OK" not in result["release_output"]
    assert result["build"]["status"] == "succeeded"
    current = [r for r in fake.releases["double-boiler"] if r["current"]]
    assert [r["description"] for r in current] == ["Initial release"]
    fake.release_outcome = "succeeded"
    fake.calls.clear()
    retry, _ = run_module("heroku_source_build", archive=path, sha256=sha)
    assert retry["changed"] is True and retry["release"]["status"] == "succeeded"
    assert "POST /apps/double-boiler/builds" in fake.api_writes()


def test_failed_build_with_same_checksum_is_built_again(run_module, fake, tarball):
    fake.add_app()
    fake.build_outcome = "failed"
    path, sha = tarball
    run_module("heroku_source_build", archive=path, sha256=sha)
    fake.build_outcome = "succeeded"
    result, _ = run_module("heroku_source_build", archive=path, sha256=sha)
    assert result["changed"] is True and result["build"]["status"] == "succeeded"


def test_pending_build_with_same_checksum_is_waited_for_not_duplicated(run_module, fake, tarball):
    fake.add_app()
    path, sha = tarball
    fake.blobs[f"{BLOBS}/x"] = b"data"
    fake._create_build(
        "double-boiler", {"source_blob": {"url": f"{BLOBS}/x", "checksum": f"SHA256:{sha}"}}
    )
    fake.build_polls = 2
    result, _ = run_module("heroku_source_build", archive=path, sha256=sha)
    assert result["changed"] is False and fake.writes() == []
    assert result["build"]["status"] == "succeeded"


def test_source_build_check_mode_sends_no_write(run_module, fake, tarball):
    fake.add_app()
    _, sha = tarball
    result, _ = run_module(
        "heroku_source_build", check_mode=True, archive="/nonexistent.tar.gz", sha256=sha
    )
    assert result["changed"] is True and fake.writes() == []
    assert result["diff"]["after"]["checksum"] == f"SHA256:{sha}"


def test_archive_not_matching_the_expected_checksum_fails(run_module, fake, tarball):
    fake.add_app()
    path, _ = tarball
    result, _ = run_module("heroku_source_build", archive=path, sha256="0" * 64)
    assert result["failed"] is True and "rebuild it" in result["msg"]
    assert fake.calls == []


def test_build_retried_through_429_on_the_build_post(run_module, fake, tarball, fake_time):
    fake.add_app()
    fake.faults.append(Fault("POST", "/builds$", 429, {"retry-after": "3"}))
    path, sha = tarball
    result, _ = run_module("heroku_source_build", archive=path, sha256=sha)
    assert result["changed"] is True and 3 in fake_time.sleeps
    assert len(fake.builds["double-boiler"]) == 1


# -- heroku_formation ---------------------------------------------------------------------


def _released_app(fake):
    fake.add_app()
    for ptype, qty in (("web", 1), ("worker", 1)):
        fake.formation["double-boiler"][ptype] = {
            "type": ptype,
            "quantity": qty,
            "size": "Basic",
            "dyno_size": {"id": None, "name": "Basic"},
        }


def test_formation_one_batch_of_what_differs(run_module, fake):
    _released_app(fake)
    result, _ = run_module(
        "heroku_formation",
        formation=[
            {"type": "web", "quantity": 2, "size": "Basic"},
            {"type": "worker", "quantity": 0},
        ],
    )
    assert result["changed"] is True
    assert fake.api_writes() == ["PATCH /apps/double-boiler/formation"]
    assert fake.writes()[0].json == {
        "updates": [{"type": "web", "quantity": 2}, {"type": "worker", "quantity": 0}]
    }
    fake.calls.clear()
    again, _ = run_module(
        "heroku_formation",
        formation=[
            {"type": "web", "quantity": 2, "size": "basic"},
            {"type": "worker", "quantity": 0},
        ],
    )
    assert again["changed"] is False and fake.writes() == []


def test_formation_size_change_uses_dyno_size(run_module, fake):
    _released_app(fake)
    run_module(
        "heroku_formation", formation=[{"type": "web", "quantity": 1, "size": "Standard-1X"}]
    )
    assert fake.writes()[0].json == {
        "updates": [{"type": "web", "dyno_size": {"name": "Standard-1X"}}]
    }


def test_formation_undeclared_type(run_module, fake):
    fake.add_app()
    fake.formation["double-boiler"]["web"] = {"type": "web", "quantity": 1, "size": "Basic"}
    ok, _ = run_module("heroku_formation", formation=[{"type": "worker", "quantity": 0}])
    assert ok["changed"] is False
    bad, _ = run_module("heroku_formation", formation=[{"type": "worker", "quantity": 1}])
    assert bad["failed"] is True and "Procfile" in bad["msg"]
    assert fake.writes() == []


def test_formation_check_mode(run_module, fake):
    _released_app(fake)
    result, _ = run_module(
        "heroku_formation", check_mode=True, formation=[{"type": "web", "quantity": 3}]
    )
    assert result["changed"] is True and fake.writes() == []
    assert result["updates"] == [{"type": "web", "quantity": 3}]


def test_whole_first_deploy_then_second_run_writes_nothing(run_module, fake, tarball):
    """The role's sequence, twice: the second pass must send no writing request."""
    path, sha = tarball
    steps = [
        ("heroku_app", {}),
        ("heroku_buildpacks", {"buildpacks": ["heroku/python"]}),
        ("heroku_addons", {"plans": PLANS}),
        ("heroku_config_vars", {"config": CONFIG}),
        ("heroku_source_build", {"archive": path, "sha256": sha}),
        (
            "heroku_formation",
            {
                "formation": [
                    {"type": "web", "quantity": 1, "size": "Basic"},
                    {"type": "worker", "quantity": 0},
                ]
            },
        ),
    ]
    for name, args in steps:
        result, raw = run_module(name, **args)
        assert not result.get("failed"), (name, result.get("msg"))
        assert TOKEN not in raw
    first_writes = fake.api_writes()
    assert first_writes[:2] == ["POST /apps", "PUT /apps/double-boiler/buildpack-installations"]
    fake.calls.clear()
    for name, args in steps:
        result, _ = run_module(name, **args)
        assert result["changed"] is False, name
    assert fake.writes() == []
    assert all(c.url.startswith(API) for c in fake.calls)


def test_build_that_never_ends_times_out_with_its_output(run_module, fake, tarball):
    fake.add_app()
    fake.build_polls = 10**6
    path, sha = tarball
    result, _ = run_module(
        "heroku_source_build", archive=path, sha256=sha, build_timeout=20, poll_interval=2
    )
    assert result["failed"] is True
    assert "still pending after 20 s" in result["msg"] and "step 3" in result["msg"]
