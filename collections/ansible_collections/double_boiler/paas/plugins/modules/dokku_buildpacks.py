#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dokku_buildpacks
short_description: Pin the buildpacks a Dokku app builds with
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads C(dokku buildpacks:report <app> --buildpacks-list) (comma separated,
    dokku/dokku plugins/buildpacks/report.go) and, only when it differs, runs
    C(buildpacks:clear) then one C(buildpacks:add) per buildpack, in order.
  - Buildpacks set this way win over C(app.json)'s C(buildpacks) (dokku/dokku
    plugins/buildpacks/functions.go C(getBuildpacks)). A short name such as C(heroku/python)
    becomes the buildpack's git URL without a ref, so every build clones its default
    branch (C(validBuildpackURL)); give C(https://...git#<tag>) to pin one.
options:
  app:
    description: Name of an existing app.
    type: str
    required: true
  buildpacks:
    description: Buildpack URLs, in order (C(url#ref) pins a git tag or commit).
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Build with a pinned Python buildpack
  double_boiler.paas.dokku_buildpacks:
    app: double-boiler
    buildpacks: ["https://github.com/heroku/heroku-buildpack-python.git#v351"]
"""

RETURN = r"""
buildpacks:
  description: The app's buildpacks after this task.
  type: list
  elements: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.dokku_cli import (
    APP_NAME_RE,
    DokkuCli,
    DokkuError,
    find_dokku,
    module_runner,
)


def current_buildpacks(cli: DokkuCli, app: str) -> list[str]:
    out = cli.run("buildpacks:report", app, "--buildpacks-list").stdout.strip()
    return [b.strip() for b in out.split(",") if b.strip()]


def ensure_buildpacks(cli: DokkuCli, app: str, buildpacks: list[str], check_mode: bool) -> dict:
    if not cli.app_exists(app):
        if not check_mode:
            raise DokkuError(f"App {app!r} does not exist: create it first (dokku_app module)")
        before: list[str] = []
    else:
        before = current_buildpacks(cli, app)
    if before == buildpacks:
        return {"changed": False, "buildpacks": before}
    if not check_mode:
        cli.run("buildpacks:clear", app)
        for buildpack in buildpacks:
            cli.run("buildpacks:add", app, buildpack)
    return {
        "changed": True,
        "buildpacks": buildpacks,
        "diff": {
            "before": "".join(f"{b}\n" for b in before),
            "after": "".join(f"{b}\n" for b in buildpacks),
        },
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app": {"type": "str", "required": True},
            "buildpacks": {"type": "list", "elements": "str", "required": True},
        },
        supports_check_mode=True,
    )
    app = module.params["app"]
    buildpacks = [b.strip() for b in module.params["buildpacks"]]
    if not APP_NAME_RE.match(app):
        module.fail_json(msg=f"Invalid Dokku app name {app!r}")
    if not buildpacks or any(not b or " " in b for b in buildpacks):
        module.fail_json(msg="buildpacks must be a non-empty list of URLs without spaces")
    cli = DokkuCli(module_runner(module), find_dokku(module))
    try:
        result = ensure_buildpacks(cli, app, buildpacks, module.check_mode)
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
