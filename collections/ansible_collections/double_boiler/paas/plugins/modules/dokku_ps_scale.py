#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Scale a Dokku app's process types, touching only the ones that differ."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dokku_ps_scale
short_description: Ensure how many containers of each process type a Dokku app runs
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads C(dokku ps:scale <app>) and runs one C(dokku ps:scale <app> <type>=<n>...) naming
    only the process types whose count differs. A process type Dokku does not list counts
    as 0. On a deployed app Dokku deploys the changed process types at once.
  - Before scaling, reads C(dokku ps:report <app> --ps-can-scale) and fails with an
    explanation when an C(app.json) C(formation) key makes Dokku refuse manual scaling.
options:
  app:
    description: Name of an existing app.
    type: str
    required: true
  scale:
    description: Process type to number of containers.
    type: dict
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
- name: One dyno
  double_boiler.paas.dokku_ps_scale:
    app: double-boiler
    scale: {web: 1, worker: 0}
"""

RETURN = r"""
scale:
  description: The counts for the requested process types after this task.
  type: dict
  returned: always
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.dokku_cli import (
    APP_NAME_RE,
    DokkuCli,
    DokkuError,
    find_dokku,
    module_runner,
    parse_scale,
)

PROCESS_TYPE_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def validate(scale: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for proc, count in scale.items():
        if not PROCESS_TYPE_RE.match(str(proc)):
            raise ValueError(f"Invalid process type {proc!r}")
        if isinstance(count, bool) or not str(count).isdigit():
            raise ValueError(f"Count for process type {proc} must be a whole number >= 0")
        out[str(proc)] = int(count)
    return out


def can_scale(cli: DokkuCli, app: str) -> bool:
    # Dokku refuses ps:scale once an app.json `formation` key set quantities (ps can-scale).
    result = cli.run("ps:report", app, "--ps-can-scale", ok=range(256))
    return result.rc != 0 or result.stdout.strip().lower() != "false"


def ensure_scale(cli: DokkuCli, app: str, scale: dict[str, int], check_mode: bool) -> dict:
    if cli.app_exists(app):
        current = parse_scale(cli.run("ps:scale", app).stdout)
    elif check_mode:
        current = {}
    else:
        raise DokkuError(f"App {app!r} does not exist: create it first (dokku_app module)")
    changes = {proc: n for proc, n in sorted(scale.items()) if current.get(proc, 0) != n}
    result: dict = {"changed": bool(changes), "scale": dict(scale)}
    if changes and not can_scale(cli, app):
        raise DokkuError(
            f"Dokku will not scale {app} ({', '.join(f'{p}={n}' for p, n in changes.items())}):"
            " its app.json has a 'formation' key with quantities, which makes app.json manage"
            " scaling. Remove the quantities (or the key) from app.json, or scale there."
        )
    if changes:
        if not check_mode:
            cli.run("ps:scale", app, *(f"{proc}={n}" for proc, n in changes.items()))
        result["diff"] = {
            "before": "".join(f"{p}={current.get(p, 0)}\n" for p in changes),
            "after": "".join(f"{p}={n}\n" for p, n in changes.items()),
        }
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app": {"type": "str", "required": True},
            "scale": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    app = module.params["app"]
    if not APP_NAME_RE.match(app):
        module.fail_json(msg=f"Invalid Dokku app name {app!r}")
    try:
        scale = validate(module.params["scale"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    cli = DokkuCli(module_runner(module), find_dokku(module))
    try:
        result = ensure_scale(cli, app, scale, module.check_mode)
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
