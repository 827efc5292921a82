"""dokku_deploy_archive: deploy only when the source changed; failures are loud and safe."""

from __future__ import annotations

import hashlib
import json

import pytest
from ansible_collections.double_boiler.paas.plugins.module_utils.common import MASK

from tests.support.fake_dokku import SECRET_IN_BUILD_LOG, App, FakeDokku
from tests.unit.conftest import dokku_cli, load_module

deploy_mod = load_module("dokku_deploy_archive")

V1 = b"archive v1 bytes"
V2 = b"archive v2 bytes"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def deploy(cli, data: bytes, state=None, **kw):  # type: ignore[no-untyped-def]
    return deploy_mod.deploy(cli, "db", sha(data), lambda: data, state, **kw)


def archive_calls(dokku: FakeDokku) -> list[list[str]]:
    return [c for c in dokku.calls if c[0] == "git:from-archive"]


def test_first_deploy_pipes_the_archive_and_records_state(dokku, cli) -> None:
    dokku.apps["db"] = App()
    result, state = deploy(cli, V1, version="abc123")
    assert result["changed"] and result["deployed"] and not result["restarted"]
    assert archive_calls(dokku) == [["git:from-archive", "--archive-type", "tar.gz", "db", "--"]]
    assert dokku.stdin[dokku.calls.index(archive_calls(dokku)[0])] == V1
    assert state == {
        "app": "db",
        "sha256": sha(V1),
        "git_sha": dokku.apps["db"].git_sha,
        "version": "abc123",
        # fingerprint of the config after the deploy (Dokku added GIT_REV to it)
        "config_sha256": deploy_mod.config_fingerprint(dokku.apps["db"].config),
    }
    assert "GIT_REV" in dokku.apps["db"].config


def test_recorded_state_skips_dokku_entirely(dokku, cli) -> None:
    dokku.apps["db"] = App()
    _, state = deploy(cli, V1)
    dokku.calls.clear()
    result, new_state = deploy(cli, V1, state)
    assert result["changed"] is False and new_state is None
    assert archive_calls(dokku) == []


def test_changed_source_deploys_again(dokku, cli) -> None:
    dokku.apps["db"] = App()
    _, state = deploy(cli, V1)
    result, state2 = deploy(cli, V2, state)
    assert result["deployed"] and dokku.apps["db"].releases == 2
    assert state2["sha256"] == sha(V2)
    assert result["diff"]["before"] == f"source sha256: {sha(V1)}\n"


def test_source_pushed_by_someone_else_is_redeployed(dokku, cli) -> None:
    dokku.apps["db"] = App()
    _, state = deploy(cli, V1)
    dokku.apps["db"].git_sha = "fedcba9"  # a `git push` happened meanwhile
    dokku.apps["db"].source_sha = "other"
    result, _ = deploy(cli, V1, state)
    assert result["deployed"] and len(archive_calls(dokku)) == 2


def test_no_changes_detected_without_a_record_rebuilds_once(dokku, cli) -> None:
    dokku.apps["db"] = App()
    deploy(cli, V1)
    # Record lost: Dokku answers "No changes detected" with exit 1; that proves nothing about
    # what runs, so the release is rebuilt once, then recorded.
    result, state = deploy(cli, V1, None)
    assert result["deployed"] and result["rebuilt"]
    assert state is not None and state["sha256"] == sha(V1)
    again, _ = deploy(cli, V1, state)
    assert again["changed"] is False and not archive_calls(dokku)[2:]


def test_an_interrupted_build_is_not_recorded_as_deployed(dokku, cli) -> None:
    """Issue 9 #6: the build is cut after Dokku committed the archive, so the next run gets
    "No changes detected" while the OLD release still runs. It must deploy, not record."""
    dokku.apps["db"] = App()
    _, state = deploy(cli, V1)
    dokku.build_interrupted = True
    with pytest.raises(deploy_mod.DokkuError):
        deploy(cli, V2, state)
    dokku.build_interrupted = False
    app = dokku.apps["db"]
    assert app.running_sha != app.git_sha  # the commit stayed, its release never ran
    result, new_state = deploy(cli, V2, state)
    assert result["changed"] and result["rebuilt"]
    assert app.running_sha == app.git_sha == new_state["git_sha"]


def test_a_failed_rebuild_fails_and_records_nothing(dokku, cli) -> None:
    dokku.apps["db"] = App()
    _, state = deploy(cli, V1)
    dokku.build_interrupted = True
    with pytest.raises(deploy_mod.DokkuError):
        deploy(cli, V2, state)
    dokku.build_interrupted, dokku.release_fails = False, True
    with pytest.raises(deploy_mod.DokkuError, match="ps:rebuild"):
        deploy(cli, V2, state)


def test_failed_release_task_fails_with_dokkus_output_and_keeps_the_release(dokku, cli) -> None:
    dokku.apps["db"] = App(config={"DJANGO_SECRET_KEY": "super-secret-key-" * 4})
    _, state = deploy(cli, V1)
    running = dokku.apps["db"].git_sha
    dokku.release_fails = True
    dokku.print_env_in_build = True
    with pytest.raises(dokku_cli.DokkuError) as exc:
        deploy(cli, V2, state)
    err = exc.value
    assert "Deploying db failed" in err.msg and "keeps the release that was running" in err.msg
    assert "Execution of release command failed" in err.msg
    assert "ProgrammingError: boom" in err.details["stdout"]
    assert "super-secret-key" not in err.msg + json.dumps(err.details)
    assert SECRET_IN_BUILD_LOG.format(secret=MASK) in err.details["stdout"]
    assert dokku.apps["db"].git_sha == running and dokku.apps["db"].deployed


def test_restart_when_config_changed_and_nothing_was_deployed(dokku, cli) -> None:
    dokku.apps["db"] = App()
    _, state = deploy(cli, V1)
    result, _ = deploy(cli, V1, state, restart=True)
    assert result["restarted"] and result["changed"] and not result["deployed"]
    assert dokku.apps["db"].restarts == 1


def test_no_restart_when_a_deploy_happened(dokku, cli) -> None:
    dokku.apps["db"] = App()
    result, _ = deploy(cli, V1, restart=True)
    assert result["deployed"] and not result["restarted"]
    assert dokku.apps["db"].restarts == 0


def test_no_restart_for_an_app_never_deployed(dokku, cli) -> None:
    dokku.apps["db"] = App()
    # An identical archive to a never-deployed app cannot happen, but a skipped deploy can.
    result, _ = deploy_mod.deploy(
        cli, "db", sha(V1), lambda: V1, None, restart=True, check_mode=True
    )
    assert result["deployed"] and not result["restarted"]


def test_check_mode_deploys_and_restarts_nothing(dokku, cli) -> None:
    dokku.apps["db"] = App()
    _, state = deploy(cli, V1)
    result, new_state = deploy(cli, V2, state, check_mode=True, restart=True)
    assert result["changed"] and result["deployed"] and new_state is None
    assert len(archive_calls(dokku)) == 1 and dokku.apps["db"].restarts == 0
    result, _ = deploy(cli, V1, state, check_mode=True, restart=True)
    assert result["restarted"] and dokku.apps["db"].restarts == 0


def test_missing_app(dokku, cli) -> None:
    with pytest.raises(dokku_cli.DokkuError, match="does not exist"):
        deploy(cli, V1)
    result, _ = deploy(cli, V1, check_mode=True)
    assert result["changed"]


def test_state_file_round_trip(tmp_path) -> None:
    path = tmp_path / "sub" / "deployed.json"
    assert deploy_mod.read_state(str(path)) is None
    deploy_mod.write_state(str(path), {"sha256": "x"})
    assert deploy_mod.read_state(str(path)) == {"sha256": "x"}
    path.write_text("not json")
    assert deploy_mod.read_state(str(path)) is None


def test_main_refuses_an_archive_that_does_not_match(run_main, dokku, tmp_path) -> None:
    dokku.apps["db"] = App()
    archive = tmp_path / "src.tar.gz"
    archive.write_bytes(V1)
    args = {
        "app": "db",
        "archive": str(archive),
        "sha256": sha(V2),
        "state_file": str(tmp_path / "state.json"),
    }
    code, _, out = run_main(deploy_mod, args, dokku)
    assert code == 1 and "expected" in out["msg"]
    assert archive_calls(dokku) == []


def test_main_deploys_then_is_idempotent(run_main, dokku, tmp_path) -> None:
    dokku.apps["db"] = App()
    archive = tmp_path / "src.tar.gz"
    archive.write_bytes(V1)
    args = {
        "app": "db",
        "archive": str(archive),
        "sha256": sha(V1),
        "state_file": str(tmp_path / "state.json"),
    }
    code, _, out = run_main(deploy_mod, args, dokku)
    assert code == 0 and out["deployed"]
    code, _, out = run_main(deploy_mod, args, dokku)
    assert code == 0 and out["changed"] is False
    assert len(archive_calls(dokku)) == 1


def test_config_changed_since_the_last_restart_triggers_one_restart(dokku, cli) -> None:
    dokku.apps["db"] = App()
    _, state = deploy(cli, V1)
    dokku.apps["db"].config["WEB_CONCURRENCY"] = "4"  # written with --no-restart
    result, state = deploy(cli, V1, state)
    assert result["restarted"] and dokku.apps["db"].restarts == 1
    result, new_state = deploy(cli, V1, state)
    assert result["changed"] is False and new_state is None
    assert dokku.apps["db"].restarts == 1


def test_a_failed_restart_fails_and_is_retried_on_the_next_run(dokku, cli) -> None:
    dokku.apps["db"] = App(config={"DJANGO_SECRET_KEY": "restart-secret-" * 4})
    _, state = deploy(cli, V1)
    dokku.apps["db"].config["DOUBLE_BOILER_MODE"] = "split"
    dokku.restart_fails = True
    with pytest.raises(dokku_cli.DokkuError, match="keeps the release that was running") as exc:
        deploy(cli, V1, state, restart=True)
    assert "failed checks" in exc.value.msg
    assert "restart-secret" not in exc.value.msg + json.dumps(exc.value.details)
    # The caller keeps the old record; the next run sees the config is still unseen.
    dokku.restart_fails = False
    result, new_state = deploy(cli, V1, state)
    assert result["restarted"] and dokku.apps["db"].restarts == 1
    assert new_state["config_sha256"] == deploy_mod.config_fingerprint(dokku.apps["db"].config)


def test_a_record_without_a_fingerprint_does_not_restart_by_itself(dokku, cli) -> None:
    dokku.apps["db"] = App()
    _, state = deploy(cli, V1)
    del state["config_sha256"]
    dokku.apps["db"].config["A"] = "1"
    result, new_state = deploy(cli, V1, state)
    assert result["changed"] is False and dokku.apps["db"].restarts == 0
    assert new_state is not None and "config_sha256" in new_state  # cache refreshed
