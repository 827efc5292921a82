#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Report whether Dokku is installed, which version, and whether an install is due."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.dokku_cli import DokkuCli, DokkuError, module_runner

DOCUMENTATION = r"""
---
module: dokku_facts
short_description: Read the installed Dokku version and decide whether to (re)install
description:
  - Runs C(dokku version) when a C(dokku) executable exists. Never changes anything.
  - RV(install_needed) is true when Dokku is missing, or when O(version) is given and differs
    from the installed version.
options:
  version:
    description: Dokku version wanted (e.g. C(0.37.4)); empty means any installed version.
    type: str
    default: ""
notes:
  - Supports check mode; reports no change.
"""

EXAMPLES = r"""
- name: Read Dokku's version
  dokku_facts:
    version: 0.37.4
  register: dokku_facts
"""

RETURN = r"""
installed:
  description: Whether a dokku executable was found.
  type: bool
  returned: always
installed_version:
  description: The installed version, or null.
  type: str
  returned: always
install_needed:
  description: Whether the role must install (or change the version of) Dokku.
  type: bool
  returned: always
"""


def facts(cli: DokkuCli | None, wanted: str) -> dict:
    wanted = wanted.strip().lstrip("v")
    if cli is None:
        return {"installed": False, "installed_version": None, "install_needed": True}
    installed = cli.version()
    return {
        "installed": True,
        "installed_version": installed,
        "install_needed": bool(wanted) and installed != wanted,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={"version": {"type": "str", "default": ""}},
        supports_check_mode=True,
    )
    path = module.get_bin_path("dokku", required=False, opt_dirs=["/usr/bin", "/usr/local/bin"])
    cli = DokkuCli(module_runner(module), path) if path else None
    try:
        result = facts(cli, module.params["version"] or "")
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
