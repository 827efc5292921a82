#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Install a Dokku plugin unless `dokku plugin:installed` says it is there."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dokku_plugin
short_description: Ensure a Dokku plugin is installed
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads C(dokku plugin:installed <name>) (exit 0 when installed, 1 when not) and runs
    C(dokku plugin:install <url> --name <name>) only when it is missing.
  - Never updates nor removes a plugin that is already installed.
options:
  name:
    description: Name Dokku knows the plugin by (e.g. C(postgres)).
    type: str
    required: true
  url:
    description: Where C(plugin:install) fetches it from (git or https URL, tarball, file).
    type: str
    required: true
  committish:
    description: Branch, tag or commit to install (C(--committish)); empty for the default.
    type: str
    default: ""
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - Must run as root.
"""

EXAMPLES = r"""
- name: Postgres plugin
  double_boiler.paas.dokku_plugin:
    name: postgres
    url: https://github.com/dokku/dokku-postgres.git
"""

RETURN = r"""
installed:
  description: Whether the plugin was (or would be) installed by this task.
  type: bool
  returned: always
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.dokku_cli import (
    DokkuCli,
    DokkuError,
    find_dokku,
    module_runner,
)

PLUGIN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def ensure_plugin(cli: DokkuCli, name: str, url: str, committish: str, check_mode: bool) -> dict:
    if cli.plugin_installed(name):
        return {"changed": False, "installed": False}
    if not check_mode:
        args = ["plugin:install", url, "--name", name]
        if committish:
            args += ["--committish", committish]
        cli.run(*args)
        if not cli.plugin_installed(name):
            raise DokkuError(
                f"'dokku plugin:install {url} --name {name}' succeeded but"
                f" 'plugin:installed {name}' still says no"
            )
    return {
        "changed": True,
        "installed": True,
        "diff": {"before": "", "after": f"plugin {name} from {url}\n"},
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "url": {"type": "str", "required": True},
            "committish": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    name, url = module.params["name"], module.params["url"].strip()
    if not PLUGIN_NAME_RE.match(name):
        module.fail_json(msg=f"Invalid plugin name {name!r}")
    if not url:
        module.fail_json(msg=f"No URL given for the {name} plugin")
    cli = DokkuCli(module_runner(module), find_dokku(module))
    try:
        result = ensure_plugin(cli, name, url, module.params["committish"] or "", module.check_mode)
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
