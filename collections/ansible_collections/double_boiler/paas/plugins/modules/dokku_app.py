#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Create a Dokku app when it does not exist yet."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dokku_app
short_description: Ensure a Dokku app exists
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads C(dokku apps:exists) (exit 0 when the app exists, 20 when it is missing) and runs
    C(dokku apps:create) only when the app is missing.
  - Never destroys an app.
options:
  app:
    description: Name of the app (lowercase alphanumerics, dots and hyphens; starts alphanumeric).
    type: str
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
- name: Ensure the app exists
  double_boiler.paas.dokku_app:
    app: double-boiler
"""

RETURN = r"""
created:
  description: Whether the app was (or, in check mode, would be) created.
  type: bool
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


def ensure_app(cli: DokkuCli, app: str, check_mode: bool) -> dict:
    if cli.app_exists(app):
        return {"changed": False, "created": False}
    if not check_mode:
        cli.run("apps:create", app)
    return {
        "changed": True,
        "created": True,
        "diff": {"before": "", "after": f"app {app}\n"},
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={"app": {"type": "str", "required": True}},
        supports_check_mode=True,
    )
    app = module.params["app"]
    if not APP_NAME_RE.match(app):
        module.fail_json(
            msg=f"Invalid Dokku app name {app!r}: use lowercase letters, digits, dots and"
            " hyphens, starting with a letter or digit"
        )
    cli = DokkuCli(module_runner(module), find_dokku(module))
    try:
        result = ensure_app(cli, app, module.check_mode)
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
