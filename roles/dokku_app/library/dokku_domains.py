#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Set the domains (virtual hosts) of a Dokku app."""

from __future__ import annotations

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.dokku_cli import (
    APP_NAME_RE,
    DokkuCli,
    DokkuError,
    find_dokku,
    module_runner,
    parse_words,
)

DOCUMENTATION = r"""
---
module: dokku_domains
short_description: Ensure a Dokku app answers on exactly the given domains
description:
  - Reads C(dokku domains:report <app> --domains-app-vhosts) and runs one
    C(dokku domains:set <app> <domain>...) only when the set of domains differs.
  - With an empty O(domains) nothing is changed and the app's current domains are returned.
options:
  app:
    description: Name of an existing app.
    type: str
    required: true
  domains:
    description: Host names the app's proxy answers for (order does not matter).
    type: list
    elements: str
    default: []
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: Domains
  dokku_domains:
    app: double-boiler
    domains: [double-boiler.example.org]
"""

RETURN = r"""
domains:
  description: The app's domains after this task (what they would be, in check mode).
  type: list
  elements: str
  returned: always
"""


DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def current_domains(cli: DokkuCli, app: str) -> list[str]:
    return parse_words(cli.run("domains:report", app, "--domains-app-vhosts").stdout)


def ensure_domains(cli: DokkuCli, app: str, domains: list[str], check_mode: bool) -> dict:
    if not cli.app_exists(app):
        if not check_mode:
            raise DokkuError(f"App {app!r} does not exist: create it first (dokku_app module)")
        before: list[str] = []
    else:
        before = current_domains(cli, app)
    wanted = sorted(dict.fromkeys(d.lower() for d in domains))
    if not wanted or sorted(set(before)) == wanted:
        return {"changed": False, "domains": before}
    if not check_mode:
        cli.run("domains:set", app, *wanted)
    return {
        "changed": True,
        "domains": wanted,
        "diff": {
            "before": "".join(f"{d}\n" for d in sorted(before)),
            "after": "".join(f"{d}\n" for d in wanted),
        },
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app": {"type": "str", "required": True},
            "domains": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    app, domains = module.params["app"], module.params["domains"]
    if not APP_NAME_RE.match(app):
        module.fail_json(msg=f"Invalid Dokku app name {app!r}")
    bad = [d for d in domains if not DOMAIN_RE.match(d)]
    if bad:
        module.fail_json(msg=f"Invalid domain name(s): {', '.join(map(repr, bad))}")
    cli = DokkuCli(module_runner(module), find_dokku(module))
    try:
        result = ensure_domains(cli, app, domains, module.check_mode)
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
