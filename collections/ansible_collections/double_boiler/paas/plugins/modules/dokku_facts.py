#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Report whether Dokku is installed, which version, and whether an install is due."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dokku_facts
short_description: Read the installed Dokku version and decide whether to (re)install
author:
  - double-boiler contributors (@double-boiler)
description:
  - Runs C(dokku version) when a C(dokku) executable exists. Never changes anything.
  - RV(install_needed) is true when Dokku is missing, or when O(version) is given and differs
    from the installed version.
options:
  version:
    description: Dokku version wanted (e.g. C(0.37.4)); empty means any installed version.
    type: str
    default: ""
  distribution:
    description: The host's distribution (C(ansible_facts.distribution)), for RV(apt_suite).
    type: str
    default: ""
  release:
    description: Its release codename (C(ansible_facts.distribution_release)), for RV(apt_suite).
    type: str
    default: ""
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
    details: Only reads; reports no change.
  diff_mode:
    support: none
    details: Only reads.
"""

EXAMPLES = r"""
- name: Read Dokku's version
  double_boiler.paas.dokku_facts:
    version: 0.37.4
  register: dokku_facts
"""

RETURN = r"""
apt_suite:
  description:
    - The suite of Dokku's apt repository for O(distribution) and O(release), or null when
      they are not given or the distribution is neither Debian nor Ubuntu.
  type: str
  returned: always
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.dokku_cli import (
    DokkuCli,
    DokkuError,
    module_runner,
)

# The codenames Dokku's packages are built for, and what bootstrap.sh installs on any other
# release of the same distribution (dokku/dokku bootstrap.sh, OS_IDS and the fallback OS_ID).
APT_SUITES = {
    "ubuntu": (("jammy", "noble"), "noble"),
    "debian": (("bullseye", "bookworm", "trixie"), "bookworm"),
}


def apt_suite(distribution: str, release: str) -> str | None:
    """Dokku's apt suite for a release; another release of a known distribution is mapped."""
    known = APT_SUITES.get(distribution.strip().lower())
    if known is None or not release:
        return None
    suites, fallback = known
    return release.strip().lower() if release.strip().lower() in suites else fallback


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
        argument_spec={
            "version": {"type": "str", "default": ""},
            "distribution": {"type": "str", "default": ""},
            "release": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    path = module.get_bin_path("dokku", required=False, opt_dirs=["/usr/bin", "/usr/local/bin"])
    cli = DokkuCli(module_runner(module), path) if path else None
    try:
        result = facts(cli, module.params["version"] or "")
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    suite = apt_suite(module.params["distribution"] or "", module.params["release"] or "")
    module.exit_json(changed=False, apt_suite=suite, **result)


if __name__ == "__main__":
    main()
