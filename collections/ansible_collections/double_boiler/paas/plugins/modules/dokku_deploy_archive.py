#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Deploy a source archive to a Dokku app only when it differs from what is deployed."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dokku_deploy_archive
short_description: Deploy a source archive to a Dokku app when (and only when) it changed
author:
  - double-boiler contributors (@double-boiler)
description:
  - Knows beforehand whether a deploy is needed. After each successful deploy it records, in
    O(state_file), the archive's SHA256 together with the commit Dokku made of it
    (C(dokku git:report <app> --git-sha)). When both still match, Dokku is not called.
  - Otherwise pipes the archive into C(dokku git:from-archive --archive-type <type> <app> --),
    which builds the app, runs the Procfile's C(release) task and starts the new release.
  - Dokku answering C(No changes detected) only says its repository already holds this
    content, not that it runs; a build interrupted after the commit leaves the commit and the
    old release (dokku/dokku plugins/git/internal-functions). Unless O(state_file) records a
    finished deploy of this very archive and commit, the module then runs
    C(dokku ps:rebuild <app>), as Dokku's own message advises, and fails when that fails.
  - A failed build or release task fails the task with Dokku's output; Dokku keeps the
    release that was running and rolls its repository back, so a re-run deploys again.
  - An app that this task did not deploy but that is deployed already is restarted with
    C(dokku ps:restart) when O(restart) is set, or when its config differs from the config
    recorded after the last deploy or restart (so a restart that failed is retried), so that
    config written with C(--no-restart) reaches its processes. A failed restart fails the
    task; Dokku keeps the running release.
  - Values of O(sensitive_keys) in the app's config are masked in any output.
options:
  app:
    description: Name of an existing app.
    type: str
    required: true
  archive:
    description: Path of the archive on the Dokku host (not read in check mode).
    type: path
    required: true
  sha256:
    description: Expected SHA256 (hex) of the archive; the file must match it.
    type: str
    required: true
  archive_type:
    description: Archive format, as C(git:from-archive --archive-type) takes it.
    type: str
    choices: [tar, tar.gz, zip]
    default: tar.gz
  state_file:
    description: JSON file where this module records what it deployed.
    type: path
    required: true
  version:
    description: Source version (e.g. a git commit) to record with the deploy, for humans.
    type: str
  restart:
    description: Restart the app if it is deployed and this task did not deploy it.
    type: bool
    default: false
  sensitive_keys:
    description: Config vars whose values are masked in Dokku's output.
    type: list
    elements: str
    default: [DJANGO_SECRET_KEY, DATABASE_URL, REDIS_URL, CELERY_BROKER_URL]
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Deploy the source
  double_boiler.paas.dokku_deploy_archive:
    app: double-boiler
    archive: /var/lib/double-boiler/dokku/double-boiler/source.tar.gz
    sha256: "{{ source_archive.sha256 }}"
    state_file: /var/lib/double-boiler/dokku/double-boiler/deployed.json
"""

RETURN = r"""
deployed:
  description: Whether a new release was (or would be) built and started.
  type: bool
  returned: always
rebuilt:
  description: Whether Dokku had the content already and the release was rebuilt from it.
  type: bool
  returned: always
restarted:
  description: Whether the app was (or would be) restarted instead.
  type: bool
  returned: always
git_sha:
  description: Dokku's commit for the deployed source after this task (null in check mode).
  type: str
  returned: always
"""

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.common import file_sha256
from ansible_collections.double_boiler.paas.plugins.module_utils.dokku_cli import (
    APP_NAME_RE,
    NO_CHANGES_MARKER,
    DokkuCli,
    DokkuError,
    Result,
    find_dokku,
    module_runner,
)

# Lines of Dokku's output quoted in the failure message (all of it is in stdout/stderr).
TAIL_LINES = 40
SENSITIVE_KEYS = ("DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")


def deployed_sha(cli: DokkuCli, app: str) -> str | None:
    """Dokku's commit of the app's deployed source; None when unknown or never deployed."""
    result = cli.run("git:report", app, "--git-sha", ok=range(256))
    sha = result.stdout.strip()
    return sha if result.rc == 0 and sha else None


def config_fingerprint(config: dict[str, str]) -> str:
    """SHA256 of the app's config, to notice config its processes have not seen yet."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def read_config(cli: DokkuCli, app: str, sensitive_keys: list[str]) -> dict[str, str] | None:
    """The app's config with its sensitive values hidden from all output; None if unreadable."""
    try:
        config = cli.config(app)
    except DokkuError:
        return None
    cli.hide(*(config.get(key) for key in sensitive_keys))
    return config


def fail_deploy(cli: DokkuCli, app: str, output: Result, sensitive_keys: list[str]) -> DokkuError:
    read_config(cli, app, sensitive_keys)  # a deploy may have changed them (GIT_REV, ...)
    tail = "\n".join(cli.scrub(output.output).splitlines()[-TAIL_LINES:])
    return DokkuError(
        f"Deploying {app} failed (dokku {output.args[0]} exited {output.rc});"
        f" Dokku keeps the release that was running. Dokku's output ends with:\n{tail}",
        cli.details(output),
    )


def deploy(
    cli: DokkuCli,
    app: str,
    sha256: str,
    read_archive: Callable[[], bytes],
    state: dict | None,
    *,
    archive_type: str = "tar.gz",
    restart: bool = False,
    sensitive_keys: Sequence[str] = SENSITIVE_KEYS,
    version: str | None = None,
    check_mode: bool = False,
) -> tuple[dict, dict | None]:
    """Return (module result, state to record or None)."""
    if not cli.app_exists(app):
        if not check_mode:
            raise DokkuError(f"App {app!r} does not exist: create it first (dokku_app module)")
        result = {"changed": True, "deployed": True, "restarted": False, "rebuilt": False}
        return {**result, "git_sha": None}, None

    state = state or {}
    config = read_config(cli, app, sensitive_keys)
    current_sha = deployed_sha(cli, app)
    up_to_date = (
        state.get("sha256") == sha256
        and current_sha is not None
        and state.get("git_sha") == current_sha
    )
    result: dict = {"deployed": False, "restarted": False, "rebuilt": False, "git_sha": current_sha}

    if not up_to_date:
        known = state.get("sha256") if current_sha and state.get("git_sha") == current_sha else None
        diff = {
            "before": f"source sha256: {known or 'unknown'}\n",
            "after": f"source sha256: {sha256}\n",
        }
        if check_mode:
            result.update(deployed=True, git_sha=None, diff=diff)
        else:
            output = cli.run(
                "git:from-archive",
                "--archive-type",
                archive_type,
                app,
                "--",
                stdin=read_archive(),
                ok=range(256),
            )
            if NO_CHANGES_MARKER in output.output:
                # The repository has this content; whether a release of it ever ran is
                # unknown (we are here because the record does not say so): rebuild it.
                output = cli.run("ps:rebuild", app, ok=range(256))
                if output.rc != 0:
                    raise fail_deploy(cli, app, output, sensitive_keys)
                result.update(deployed=True, rebuilt=True, diff=diff)
            elif output.rc != 0:
                raise fail_deploy(cli, app, output, sensitive_keys)
            else:
                result.update(deployed=True, diff=diff)
            result["git_sha"] = deployed_sha(cli, app)

    # Config written with --no-restart reaches running processes only through a restart. The
    # recorded fingerprint catches a restart that failed on an earlier run, too.
    recorded = state.get("config_sha256")
    stale = config is not None and recorded is not None and recorded != config_fingerprint(config)
    if (restart or stale) and not result["deployed"] and cli.is_deployed(app):
        if not check_mode:
            output = cli.run("ps:restart", app, ok=range(256))
            if output.rc != 0:
                raise fail_deploy(cli, app, output, sensitive_keys)
        result["restarted"] = True

    result["changed"] = result["deployed"] or result["restarted"]
    if check_mode:
        return result, None
    if result["changed"]:
        config = read_config(cli, app, sensitive_keys)  # Dokku may add GIT_REV and the like
    new_state = {
        "app": app,
        "sha256": sha256,
        "git_sha": result["git_sha"],
        "version": version,
        "config_sha256": config_fingerprint(config) if config is not None else None,
    }
    # The record is a cache: rewriting it is not a change of the app.
    return result, (new_state if new_state != state else None)


def read_state(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None  # no record: the deploy decides from Dokku's answer
    return data if isinstance(data, dict) else None


def write_state(path: str, state: dict) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".deployed-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app": {"type": "str", "required": True},
            "archive": {"type": "path", "required": True},
            "sha256": {"type": "str", "required": True},
            "archive_type": {
                "type": "str",
                "choices": ["tar", "tar.gz", "zip"],
                "default": "tar.gz",
            },
            "state_file": {"type": "path", "required": True},
            "version": {"type": "str"},
            "restart": {"type": "bool", "default": False},
            "sensitive_keys": {
                "type": "list",
                "elements": "str",
                "default": list(SENSITIVE_KEYS),
                "no_log": False,
            },
        },
        supports_check_mode=True,
    )
    params = module.params
    if not APP_NAME_RE.match(params["app"]):
        module.fail_json(msg=f"Invalid Dokku app name {params['app']!r}")
    sha256 = params["sha256"].strip().lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        module.fail_json(msg=f"sha256 must be 64 hex digits, got {params['sha256']!r}")
    if not module.check_mode:
        if not os.path.isfile(params["archive"]):
            module.fail_json(msg=f"Archive {params['archive']} does not exist on the host")
        actual = file_sha256(params["archive"])
        if actual != sha256:
            module.fail_json(
                msg=f"Archive {params['archive']} has SHA256 {actual}, expected {sha256}:"
                " copy the archive built on the controller again"
            )

    def read_archive() -> bytes:
        with open(params["archive"], "rb") as handle:
            return handle.read()

    cli = DokkuCli(module_runner(module), find_dokku(module))
    try:
        result, new_state = deploy(
            cli,
            params["app"],
            sha256,
            read_archive,
            read_state(params["state_file"]),
            archive_type=params["archive_type"],
            restart=params["restart"],
            sensitive_keys=params["sensitive_keys"],
            version=params["version"],
            check_mode=module.check_mode,
        )
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    if new_state is not None:
        write_state(params["state_file"], new_state)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
