"""Builds, the release phase and dynos behave as Heroku documents them."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import pytest

from tests.standins.heroku_api.client import StandInClient, StandInProcess
from tests.standins.heroku_api.conftest import TOKEN, free_port
from tests.standins.heroku_api.testapps import (
    TINY_APP,
    finish_build,
    finish_release,
    make_tarball,
    upload_and_build,
)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def _dynos(standin: StandInClient, app: str) -> dict[str, dict]:
    return {d["name"]: d for d in standin.admin("GET", "dynos") if d["app"] == app}


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _deploy_tiny(
    standin: StandInClient,
    app: str,
    files: dict[str, str] | None = None,
    version: str = "v1",
    top: str | None = None,
) -> tuple[dict, str, dict]:
    build = upload_and_build(standin, app, make_tarball(files or TINY_APP, top), version)
    build, output = finish_build(standin, app, build)
    assert build["status"] == "succeeded", output
    release = finish_release(standin, app, build["release"]["id"])
    return build, output, release


def _platform_log(process: StandInProcess, app: str) -> str:
    return (process.state_dir / "logs" / app / "platform.log").read_text()


def test_build_release_and_run(standin: StandInClient, app_name: str) -> None:
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "hello"})
    standin.ok(
        "PUT",
        f"/apps/{app_name}/buildpack-installations",
        {"updates": [{"buildpack": "heroku/python"}]},
    )
    standin.ok("PATCH", f"/apps/{app_name}", {"build_stack": "heroku-22"})
    build, output, release = _deploy_tiny(standin, app_name, top="tiny-app-0123abc")
    assert "-----> Building on the Heroku-22 stack" in output
    assert "-----> Using Python 3.11 specified in .python-version" in output
    assert "Procfile declares types -> release, web, worker" in output
    assert f"Released v{release['version']}" in output
    assert build["slug"]["id"] and build["buildpacks"][0]["name"] == "heroku/python"
    assert release["status"] == "succeeded" and release["current"] is True
    assert release["description"] == "Deploy v1"
    phase = standin.stream_text(release["output_stream_url"])
    assert f"release phase for release.{release['version']}" in phase
    app = standin.ok("GET", f"/apps/{app_name}")
    assert app["stack"]["name"] == "heroku-22"  # the stack follows the build
    formation = {f["type"]: f for f in standin.ok("GET", f"/apps/{app_name}/formation")}
    assert {t: f["quantity"] for t, f in formation.items()} == {"web": 1, "worker": 0}
    assert formation["web"]["command"] == "exec python -m http.server --bind 127.0.0.1 $PORT"
    standin.wait(
        lambda: _dynos(standin, app_name), lambda d: d.get("web.1", {}).get("state") == "up", 30
    )
    assert _get(app["web_url"] + "index.html") == "tiny app\n"
    web = _dynos(standin, app_name)["web.1"]
    assert web["pgid"] == web["pid"]  # its own process group
    env = _environ(web["pid"])
    assert env["PORT"] == str(web["port"]) and env["DYNO"] == "web.1"
    assert env["GREETING"] == "hello"
    assert "HEROKU_API_KEY" not in env and TOKEN not in "".join(env.values())
    # Resuming the stream from a byte offset (as after a disconnect).
    partial = standin.raw("GET", build["output_stream_url"], headers={"Range": "bytes=10-"})
    assert partial.status == 206 and partial.body.decode() == output[10:]


def test_failed_release_phase_keeps_the_previous_release(
    standin: StandInClient, standin_process: StandInProcess, app_name: str
) -> None:
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "hello"})
    _, _, good = _deploy_tiny(standin, app_name)
    standin.wait(lambda: _dynos(standin, app_name), lambda d: "web.1" in d, 30)
    serving = _dynos(standin, app_name)["web.1"]["pid"]

    # A real failure: the release command checks a config var that is now gone.
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": None})
    releases = standin.ok(
        "GET", f"/apps/{app_name}/releases", headers={"Range": "version ..; order=desc, max=1"}
    )
    failed = finish_release(standin, app_name, releases[0]["id"])
    assert failed["status"] == "failed" and failed["current"] is False
    # An injected failure after a good build.
    standin.admin("POST", "faults", {"kind": "release_failure"})
    changed = dict(TINY_APP, **{"index.html": "second\n"})
    build = upload_and_build(standin, app_name, make_tarball(changed), "v2")
    build, _ = finish_build(standin, app_name, build)
    assert build["status"] == "succeeded"
    injected = finish_release(standin, app_name, build["release"]["id"])
    assert injected["status"] == "failed"
    assert "injected release phase failure" in standin.stream_text(injected["output_stream_url"])

    current = [r for r in standin.ok("GET", f"/apps/{app_name}/releases") if r["current"]]
    assert [r["id"] for r in current] == [good["id"]]
    assert _dynos(standin, app_name)["web.1"]["pid"] == serving
    assert _environ(serving)["GREETING"] == "hello"
    assert _get(standin.ok("GET", f"/apps/{app_name}")["web_url"] + "index.html") == "tiny app\n"


def test_build_failures(standin: StandInClient, app_name: str) -> None:
    standin.admin("POST", "faults", {"kind": "build_failure"})
    build = upload_and_build(standin, app_name, make_tarball(TINY_APP))
    build, output = finish_build(standin, app_name, build)
    assert build["status"] == "failed" and build["release"] is None
    assert "injected build failure" in output and "Push failed" in output

    build = upload_and_build(
        standin, app_name, make_tarball(TINY_APP), checksum="SHA256:" + "0" * 64
    )
    build, output = finish_build(standin, app_name, build)
    assert build["status"] == "failed" and "Checksum mismatch" in output

    broken = dict(TINY_APP, **{"requirements.txt": "./no-such-directory\n"})
    build, output = finish_build(
        standin, app_name, upload_and_build(standin, app_name, make_tarball(broken))
    )
    assert build["status"] == "failed"
    assert "no-such-directory" in output and "pip install failed" in output

    old = dict(TINY_APP, **{".python-version": "3.7\n"})
    build, output = finish_build(
        standin, app_name, upload_and_build(standin, app_name, make_tarball(old))
    )
    assert build["status"] == "failed" and "Python 3.7 is not available" in output
    releases = standin.ok("GET", f"/apps/{app_name}/releases")
    assert all(r["slug"] is None for r in releases)  # no build ever released


def test_formation_scaling(standin: StandInClient, app_name: str) -> None:
    path = f"/apps/{app_name}/formation"
    assert standin.api("PATCH", path, {"updates": [{"type": "web", "quantity": 1}]}).status == 404
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "hi"})
    _deploy_tiny(standin, app_name)
    answer = standin.ok(
        "PATCH",
        path,
        {"updates": [{"type": "worker", "quantity": 2, "dyno_size": {"name": "standard-2x"}}]},
    )
    assert [(f["type"], f["quantity"], f["size"]) for f in answer] == [("worker", 2, "Standard-2X")]
    standin.wait(
        lambda: _dynos(standin, app_name), lambda d: {"web.1", "worker.1", "worker.2"} <= set(d), 30
    )
    too_many = standin.api(
        "PATCH",
        path,
        {"updates": [{"type": "worker", "quantity": 2, "dyno_size": {"name": "basic"}}]},
    )
    assert too_many.status == 422 and "more than 1 Basic" in too_many.json()["message"]
    assert standin.api("PATCH", path, {"updates": [{"type": "clock", "quantity": 1}]}).status == 404
    assert (
        standin.api(
            "PATCH", path, {"updates": [{"type": "worker", "dyno_size": {"name": "gigantic"}}]}
        ).status
        == 422
    )
    one = standin.ok("PATCH", f"{path}/worker", {"quantity": 0})
    assert one["quantity"] == 0
    standin.wait(lambda: _dynos(standin, app_name), lambda d: set(d) == {"web.1"}, 30)


def test_config_change_restarts_dynos(standin: StandInClient, app_name: str) -> None:
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "one"})
    _deploy_tiny(standin, app_name)
    standin.wait(lambda: _dynos(standin, app_name), lambda d: "web.1" in d, 30)
    first = _dynos(standin, app_name)["web.1"]["pid"]
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "two"})
    after = standin.wait(
        lambda: _dynos(standin, app_name),
        lambda d: d.get("web.1", {}).get("pid") not in (None, first),
        30,
    )
    assert _environ(after["web.1"]["pid"])["GREETING"] == "two"

    # Rollback: a new release with the old slug and config vars, release phase included.
    _, _, deployed = _deploy_tiny(standin, app_name, version="v1")  # same source, new release
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "three"})
    rollback = standin.ok("POST", f"/apps/{app_name}/releases", {"release": deployed["id"]})
    assert rollback["description"] == f"Rollback to v{deployed['version']}"
    done = finish_release(standin, app_name, rollback["id"])
    assert done["status"] == "succeeded" and done["current"] is True
    assert standin.ok("GET", f"/apps/{app_name}/config-vars")["GREETING"] == "two"
    second = after["web.1"]["pid"]
    restarted = standin.wait(
        lambda: _dynos(standin, app_name),
        lambda d: d.get("web.1", {}).get("release_version") == done["version"],
        30,
    )
    assert restarted["web.1"]["pid"] != second
    assert _environ(restarted["web.1"]["pid"])["GREETING"] == "two"


def test_stop_is_sigterm_then_sigkill(
    standin: StandInClient, standin_process: StandInProcess, app_name: str
) -> None:
    stubborn = dict(
        TINY_APP,
        Procfile=("web: trap '' TERM; exec python -m http.server --bind 127.0.0.1 $PORT\n"),
    )
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "x"})
    _deploy_tiny(standin, app_name, stubborn)
    standin.wait(
        lambda: _dynos(standin, app_name), lambda d: d.get("web.1", {}).get("state") == "up", 30
    )
    first = _dynos(standin, app_name)["web.1"]["pid"]
    started = time.monotonic()
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "y"})
    standin.wait(
        lambda: _dynos(standin, app_name),
        lambda d: d.get("web.1", {}).get("pid") not in (None, first),
        60,
    )
    assert time.monotonic() - started >= 4  # --stop-timeout 4 in these tests
    assert not Path(f"/proc/{first}").exists()
    assert "Error R12 (Exit timeout)" in _platform_log(standin_process, app_name)


def test_boot_timeout_and_crash_restarts(
    standin: StandInClient, standin_process: StandInProcess, app_name: str
) -> None:
    broken = dict(TINY_APP, Procfile="web: exec sleep 100000\nworker: sleep 1; exit 3\n")
    standin.ok("PATCH", f"/apps/{app_name}/config-vars", {"GREETING": "x"})
    _deploy_tiny(standin, app_name, broken)
    standin.ok(
        "PATCH", f"/apps/{app_name}/formation", {"updates": [{"type": "worker", "quantity": 1}]}
    )
    log = standin.wait(
        lambda: _platform_log(standin_process, app_name),
        lambda text: (
            "Error R10 (Boot timeout)" in text
            and text.count("heroku[worker.1]: Process exited with status 3") >= 2
        ),
        60,
    )
    assert "heroku[worker.1]: State changed from up to crashed" in log
    assert "heroku[web.1]: State changed from starting to crashed" in log


def test_http_faults(standin: StandInClient) -> None:
    standin.admin(
        "POST",
        "faults",
        {"kind": "rate_limit", "count": 2, "method": "GET", "path": "^/apps$", "retry_after": 2},
    )
    standin.admin("POST", "faults", {"kind": "unavailable", "count": 1, "path": "^/regions$"})
    assert len(standin.admin("GET", "faults")) == 2
    other = standin.api("GET", "/stacks")
    assert other.status == 200  # faults only hit what they target
    for _ in range(2):
        limited = standin.api("GET", "/apps")
        assert (limited.status, limited.json()["id"]) == (429, "rate_limit")
        assert limited.header("Retry-After") == "2"
        assert limited.header("RateLimit-Remaining") == "0"
    assert standin.api("GET", "/apps").status == 200
    down = standin.api("GET", "/regions")
    assert (down.status, down.json()["id"]) == (503, "service_unavailable")
    assert standin.api("GET", "/regions").status == 200
    assert standin.admin("GET", "faults") == []
    bad = standin.raw(
        "POST",
        f"{standin.base_url}/__standin__/faults",
        b'{"kind": "meteor"}',
        {"Content-Type": "application/json"},
    )
    assert bad.status == 400


def test_slow_addon(standin: StandInClient, app_name: str) -> None:
    standin.admin("POST", "faults", {"kind": "slow_addon", "seconds": 6})
    addon = standin.ok("POST", f"/apps/{app_name}/addons", {"plan": "heroku-redis:mini"})
    time.sleep(3)
    assert standin.ok("GET", f"/apps/{app_name}/addons/{addon['id']}")["state"] == "provisioning"
    standin.wait(
        lambda: standin.ok("GET", f"/apps/{app_name}/addons/{addon['id']}"),
        lambda a: a["state"] == "provisioned",
        30,
    )


def test_rate_limit_runs_out(schema_file: Path) -> None:
    state = Path("/tmp") / f"heroku-standin-pytest-limit-{os.getpid()}"
    proc = StandInProcess(
        state,
        free_port(range(5502, 5600)),
        TOKEN,
        "--rate-limit",
        "3",
        "--dyno-ports",
        "5690-5699",
        "--postgres-port",
        str(free_port(range(25481, 25500))),
        "--redis-port",
        str(free_port(range(26431, 26450))),
    )
    try:
        client = proc.start()
        remaining = [client.api("GET", "/apps").header("RateLimit-Remaining") for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        limited = client.api("GET", "/apps")
        assert (limited.status, limited.json()["id"]) == (429, "rate_limit")
    finally:
        proc.stop(remove=True)


@pytest.mark.slow
def test_real_build_of_this_repository(standin: StandInClient, app_name: str) -> None:
    """The whole buildpack path on the real app: pip from PyPI, collectstatic, migrate."""
    import subprocess

    from tests.standins.heroku_api.client import REPO_ROOT

    tarball = subprocess.run(
        ["git", "archive", "--format=tar.gz", "HEAD"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    standin.ok("POST", f"/apps/{app_name}/addons", {"plan": "heroku-postgresql:essential-0"})
    standin.wait(
        lambda: standin.ok("GET", f"/apps/{app_name}/addons"),
        lambda a: a[0]["state"] == "provisioned",
        60,
    )
    standin.ok(
        "PATCH",
        f"/apps/{app_name}/config-vars",
        {"DJANGO_SECRET_KEY": "k" * 64, "DJANGO_HTTPS_ONLY": "false"},
    )
    build = upload_and_build(standin, app_name, tarball, "HEAD")
    build, output = finish_build(standin, app_name, build, timeout=1200)
    assert build["status"] == "succeeded", output[-3000:]
    assert "Successfully installed" in output and "Django-" in output
    assert "collectstatic --noinput" in output
    release = finish_release(standin, app_name, build["release"]["id"], timeout=300)
    phase = standin.stream_text(release["output_stream_url"])
    assert release["status"] == "succeeded", phase
    assert "Applying" in phase or "No migrations to apply" in phase
