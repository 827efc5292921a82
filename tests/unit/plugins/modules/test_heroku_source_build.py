"""heroku_source_build: upload, build and release, waits and failures, and what makes the
latest build reusable (issue 10 items 1 and 6)."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.fake_heroku import API, BLOBS, TOKEN, Fault
from tests.unit.plugins.modules._helpers import CONFIG, PLANS

BUILDS = "POST /apps/double-boiler/builds"


@pytest.fixture
def tarball(tmp_path):
    path = tmp_path / "source.tar.gz"
    path.write_bytes(b"pretend this is a deterministic tarball")
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def _deploy(run_module, tarball, **args):
    path, sha = tarball
    return run_module("heroku_source_build", archive=path, sha256=sha, **args)


def _set_buildpacks(heroku, *names):
    heroku.buildpacks["double-boiler"] = [
        {"ordinal": i, "buildpack": {"name": n, "url": n}} for i, n in enumerate(names)
    ]


def test_same_source_stack_and_buildpacks_is_not_built_again(run_module, heroku, tarball):
    heroku.add_app()
    _set_buildpacks(heroku, "heroku/python")
    _deploy(run_module, tarball, stack="heroku-24", buildpacks=["heroku/python"])
    heroku.calls.clear()
    again, _ = _deploy(run_module, tarball, stack="heroku-24", buildpacks=["heroku/python"])
    assert again["changed"] is False and again["skipped_build"] is True
    assert heroku.api_writes() == []


def test_a_stack_change_builds_the_same_source_again(run_module, heroku, tarball):
    # item 1: the latest build records the stack it ran on
    heroku.add_app(stack="heroku-22")
    _deploy(run_module, tarball, stack="heroku-22")
    heroku.apps["double-boiler"]["build_stack"]["name"] = "heroku-24"  # heroku_app's PATCH
    heroku.calls.clear()
    result, _ = _deploy(run_module, tarball, stack="heroku-24")
    assert result["changed"] is True and result["skipped_build"] is False
    assert result["rebuild_reasons"] == ["stack heroku-22 -> heroku-24"]
    assert BUILDS in heroku.api_writes()
    assert heroku.builds["double-boiler"][-1]["stack"] == "heroku-24"


def test_a_buildpack_change_builds_the_same_source_again(run_module, heroku, tarball):
    # item 1: ... and the buildpacks it ran
    heroku.add_app()
    _set_buildpacks(heroku, "heroku/python")
    _deploy(run_module, tarball, buildpacks=["heroku/python"])
    _set_buildpacks(heroku, "heroku/nodejs", "heroku/python")
    heroku.calls.clear()
    result, _ = _deploy(run_module, tarball, buildpacks=["heroku/nodejs", "heroku/python"])
    assert result["changed"] is True
    assert "buildpacks" in result["rebuild_reasons"][0]
    assert BUILDS in heroku.api_writes()


def test_registry_urns_count_as_the_same_buildpack(run_module, heroku, tarball):
    heroku.add_app()
    _set_buildpacks(heroku, "urn:buildpack:heroku/python")
    _deploy(run_module, tarball, buildpacks=["heroku/python"])
    heroku.calls.clear()
    again, _ = _deploy(run_module, tarball, buildpacks=["heroku/python"])
    assert again["changed"] is False and heroku.api_writes() == []


def test_check_mode_reports_a_stack_rebuild_without_writing(run_module, heroku, tarball):
    heroku.add_app(stack="heroku-22")
    _deploy(run_module, tarball, stack="heroku-22")
    heroku.calls.clear()
    result, _ = _deploy(run_module, tarball, check_mode=True, stack="heroku-24")
    assert result["changed"] is True and heroku.writes() == []
    assert result["diff"]["before"]["stack"] == "heroku-22"


def test_an_expired_release_still_running_is_left_alone(run_module, heroku, tarball):
    # item 6: `expired` is Heroku's retention policy destroying an old release's slug
    # (https://devcenter.heroku.com/changelog-items/3395), not a failed release phase.
    heroku.add_app()
    _deploy(run_module, tarball)
    build = heroku.builds["double-boiler"][-1]
    deployed = next(
        r for r in heroku.releases["double-boiler"] if r["id"] == build["release"]["id"]
    )
    # A later config change released the same slug; then the first release expired.
    later = heroku._new_release("double-boiler", "Set FOO", "succeeded", slug=deployed["slug"])
    deployed["status"] = "expired"
    heroku.calls.clear()
    result, _ = _deploy(run_module, tarball)
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is False and heroku.api_writes() == []
    assert result["release"]["version"] == later["version"]


def test_an_expired_release_of_a_slug_no_longer_running_is_built_again(run_module, heroku, tarball):
    heroku.add_app()
    _deploy(run_module, tarball)
    build = heroku.builds["double-boiler"][-1]
    deployed = next(
        r for r in heroku.releases["double-boiler"] if r["id"] == build["release"]["id"]
    )
    deployed["status"], deployed["current"] = "expired", False
    heroku._new_release("double-boiler", "Rollback to v1", "succeeded", slug={"id": "other"})
    heroku.calls.clear()
    result, _ = _deploy(run_module, tarball)
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True and "expired" in result["rebuild_reasons"][0]
    assert BUILDS in heroku.api_writes()


def test_a_build_post_answered_503_after_creating_is_not_sent_twice(run_module, heroku, tarball):
    # item 6: the read-back finds the build the failed POST made
    heroku.add_app()
    heroku.faults.append(Fault("POST", "/builds$", 503, after=True))
    result, _ = _deploy(run_module, tarball)
    assert result.get("failed") is not True, result.get("msg")
    assert len(heroku.builds["double-boiler"]) == 1
    build_calls = [c.method for c in heroku.calls if c.path.endswith("/builds")]
    assert build_calls[:3] == ["GET", "POST", "GET"]  # latest build, the POST, the read-back


def test_a_build_post_refused_with_503_is_sent_again(run_module, heroku, tarball):
    heroku.add_app()
    heroku.faults.append(Fault("POST", "/builds$", 503))
    result, _ = _deploy(run_module, tarball)
    assert result.get("failed") is not True, result.get("msg")
    assert len(heroku.builds["double-boiler"]) == 1
    assert result["release"]["status"] == "succeeded"


def test_source_is_uploaded_built_and_released(run_module, heroku, tarball):
    heroku.add_app()
    heroku.build_polls = 3
    path, sha = tarball
    result, raw = run_module("heroku_source_build", archive=path, sha256=sha, version="abc123")
    assert result["changed"] is True
    assert heroku.api_writes() == ["POST /sources", "POST /apps/double-boiler/builds"]
    upload = [c for c in heroku.writes() if c.url.startswith(BLOBS)]
    with open(path, "rb") as handle:
        assert len(upload) == 1 and upload[0].body == handle.read()
    assert "Authorization" not in upload[0].headers
    build_body = next(c for c in heroku.writes() if c.path.endswith("/builds")).json
    assert build_body["source_blob"]["checksum"] == f"SHA256:{sha}"
    assert build_body["source_blob"]["version"] == "abc123"
    assert "?sig=get" in build_body["source_blob"]["url"]
    assert result["build"]["status"] == "succeeded"
    assert result["release"]["status"] == "succeeded"
    assert result["build_output"][0] == "-----> Building on the fake"
    assert "-----> Launching..." in result["build_output"]
    assert "  Apply all migrations: OK" in result["release_output"]
    assert "sig=put" not in raw  # upload URLs are capabilities, not shown


def test_same_checksum_already_released_sends_nothing(run_module, heroku, tarball):
    heroku.add_app()
    _deploy(run_module, tarball)
    heroku.calls.clear()
    result, _ = _deploy(run_module, tarball)
    assert result["changed"] is False and result["skipped_build"] is True
    assert heroku.writes() == []
    assert result["release"]["status"] == "succeeded"


def test_new_content_builds_again(run_module, heroku, tarball, tmp_path):
    heroku.add_app()
    path, sha = tarball
    run_module("heroku_source_build", archive=path, sha256=sha)
    other = tmp_path / "other.tar.gz"
    other.write_bytes(b"new content")
    result, _ = run_module("heroku_source_build", archive=str(other))
    assert result["changed"] is True
    assert len(heroku.builds["double-boiler"]) == 2


def test_failed_build_fails_with_the_output_tail(run_module, heroku, tarball):
    heroku.add_app()
    heroku.build_outcome = "failed"
    result, _ = _deploy(run_module, tarball)
    assert result["failed"] is True
    assert "failed to compile Python app" in result["msg"]
    assert "previous release" in result["msg"]
    assert result["build_output"][0] == "-----> Building on the fake"


def test_failed_release_phase_fails_and_is_retried_next_run(run_module, heroku, tarball):
    heroku.add_app()
    heroku.release_outcome = "failed"
    result, _ = _deploy(run_module, tarball)
    assert result["failed"] is True
    assert "release phase" in result["msg"] and "OperationalError" in result["msg"]
    assert "  Apply all migrations: OK" not in result["release_output"]
    assert result["build"]["status"] == "succeeded"
    current = [r for r in heroku.releases["double-boiler"] if r["current"]]
    assert [r["description"] for r in current] == ["Initial release"]
    heroku.release_outcome = "succeeded"
    heroku.calls.clear()
    retry, _ = _deploy(run_module, tarball)
    assert retry["changed"] is True and retry["release"]["status"] == "succeeded"
    assert "POST /apps/double-boiler/builds" in heroku.api_writes()


def test_failed_build_with_same_checksum_is_built_again(run_module, heroku, tarball):
    heroku.add_app()
    heroku.build_outcome = "failed"
    _deploy(run_module, tarball)
    heroku.build_outcome = "succeeded"
    result, _ = _deploy(run_module, tarball)
    assert result["changed"] is True and result["build"]["status"] == "succeeded"


def test_pending_build_with_same_checksum_is_waited_for_not_duplicated(run_module, heroku, tarball):
    heroku.add_app()
    path, sha = tarball
    heroku.blobs[f"{BLOBS}/x"] = b"data"
    heroku._create_build(
        "double-boiler", {"source_blob": {"url": f"{BLOBS}/x", "checksum": f"SHA256:{sha}"}}
    )
    heroku.build_polls = 2
    result, _ = run_module("heroku_source_build", archive=path, sha256=sha)
    assert result["changed"] is False and heroku.writes() == []
    assert result["build"]["status"] == "succeeded"


def test_source_build_check_mode_sends_no_write(run_module, heroku, tarball):
    heroku.add_app()
    _, sha = tarball
    result, _ = run_module(
        "heroku_source_build", check_mode=True, archive="/nonexistent.tar.gz", sha256=sha
    )
    assert result["changed"] is True and heroku.writes() == []
    assert result["diff"]["after"]["checksum"] == f"SHA256:{sha}"


def test_archive_not_matching_the_expected_checksum_fails(run_module, heroku, tarball):
    heroku.add_app()
    path, _ = tarball
    result, _ = run_module("heroku_source_build", archive=path, sha256="0" * 64)
    assert result["failed"] is True and "rebuild it" in result["msg"]
    assert heroku.calls == []


def test_build_retried_through_429_on_the_build_post(run_module, heroku, tarball, fake_time):
    heroku.add_app()
    heroku.faults.append(Fault("POST", "/builds$", 429, {"retry-after": "3"}))
    result, _ = _deploy(run_module, tarball)
    assert result["changed"] is True and 3 in fake_time.sleeps
    assert len(heroku.builds["double-boiler"]) == 1


def test_build_that_never_ends_times_out_with_its_output(run_module, heroku, tarball):
    heroku.add_app()
    heroku.build_polls = 10**6
    result, _ = _deploy(run_module, tarball, build_timeout=20, poll_interval=2)
    assert result["failed"] is True
    assert "still pending after 20 s" in result["msg"] and "step 3" in result["msg"]


# All six heroku_* modules in the role's order; it lives here for this file's tarball fixture.
def test_whole_first_deploy_then_second_run_writes_nothing(run_module, heroku, tarball):
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
    first_writes = heroku.api_writes()
    assert first_writes[:2] == ["POST /apps", "PUT /apps/double-boiler/buildpack-installations"]
    heroku.calls.clear()
    for name, args in steps:
        result, _ = run_module(name, **args)
        assert result["changed"] is False, name
    assert heroku.writes() == []
    assert all(c.url.startswith(API) for c in heroku.calls)
