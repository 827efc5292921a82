#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Set the domains (virtual hosts) of a Dokku app."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dokku_domains
short_description: Ensure a Dokku app answers on exactly the given domains
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads C(dokku domains:report <app> --domains-app-vhosts) and runs one
    C(dokku domains:set <app> <domain>...) only when the domains or their order differ.
  - "Order matters: Dokku's deploy checks send the app's first domain that is not C(*) as the
    C(Host) header (dokku/dokku plugins/scheduler-docker-local/check-deploy), and a wildcard
    such as C(*.example.org) is no host a request can name. So concrete domains are written
    first, in the given order, then the wildcards; a list of wildcards only is refused."
  - With an empty O(domains) nothing is changed and the app's current domains are returned.
  - Also returns the global domains (C(domains:report --global --domains-global-vhosts)),
    without which Dokku gives a new app no domain at all (plugins/domains/functions
    C(get_default_vhosts)).
options:
  app:
    description: Name of an existing app (required with O(scope=app)).
    type: str
  scope:
    description:
      - C(app) sets the app's domains (C(domains:set)); C(global) sets Dokku's global domains
        (C(domains:set-global)), from which new apps get C(<app>.<global domain>).
    type: str
    choices: [app, global]
    default: app
  address_when_none:
    description:
      - With no O(domains), an app without any domain and a global domain that is an IP
        address (a host addressed by IP), set that address as the app's domain, so nginx
        serves it and Dokku's checks send it as C(Host) (dokku/dokku plugins/domains/functions
        C(get_default_vhosts) gives such apps no domain and turns their vhost off).
    type: bool
    default: false
  domains:
    description:
      - Host names the app's proxy answers for. The first concrete one is what Dokku's
        checks send as C(Host).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Domains
  double_boiler.paas.dokku_domains:
    app: double-boiler
    domains: [double-boiler.example.org]
"""

RETURN = r"""
global_domains:
  description: Dokku's global domains (an IP address there gives apps no default domain).
  type: list
  elements: str
  returned: always
domains:
  description: The app's domains after this task (what they would be, in check mode).
  type: list
  elements: str
  returned: always
"""

import ipaddress
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.dokku_cli import (
    APP_NAME_RE,
    DokkuCli,
    DokkuError,
    find_dokku,
    module_runner,
    parse_words,
)

DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def current_domains(cli: DokkuCli, app: str) -> list[str]:
    return parse_words(cli.run("domains:report", app, "--domains-app-vhosts").stdout)


def global_domains(cli: DokkuCli) -> list[str]:
    return parse_words(cli.run("domains:report", "--global", "--domains-global-vhosts").stdout)


def ordered(domains: list[str]) -> list[str]:
    """Concrete domains first (the checks' Host header), then wildcards; no duplicates."""
    unique = list(dict.fromkeys(d.lower() for d in domains))
    return [d for d in unique if not d.startswith("*")] + [d for d in unique if d.startswith("*")]


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def ensure_global_domains(cli: DokkuCli, domains: list[str], check_mode: bool) -> dict:
    wanted = ordered(domains)
    before = global_domains(cli)
    if not wanted or before == wanted:
        return {"changed": False, "domains": before, "global_domains": before}
    if not check_mode:
        cli.run("domains:set-global", *wanted)
    return {
        "changed": True,
        "domains": wanted,
        "global_domains": wanted,
        "diff": {
            "before": "".join(f"{d}\n" for d in before),
            "after": "".join(f"{d}\n" for d in wanted),
        },
    }


def ensure_domains(
    cli: DokkuCli,
    app: str,
    domains: list[str],
    check_mode: bool,
    address_when_none: bool = False,
) -> dict:
    wanted = ordered(domains)
    if wanted and wanted[0].startswith("*"):
        raise DokkuError(
            f"Only wildcard domains given ({', '.join(wanted)}): Dokku's deploy checks would send"
            " one as the Host header, which no app accepts. List a concrete domain first"
            " (e.g. www.example.org)."
        )
    found_global = global_domains(cli)
    if not cli.app_exists(app):
        if not check_mode:
            raise DokkuError(f"App {app!r} does not exist: create it first (dokku_app module)")
        before: list[str] = []
    else:
        before = current_domains(cli, app)
    if not wanted and not before and address_when_none:
        # A global domain that is an IP address gives apps no default domain (Dokku's
        # get_default_vhosts skips addresses) and disables their vhost; name the address.
        wanted = [d for d in found_global if is_ip_address(d)][:1]
    if not wanted or before == wanted:
        return {"changed": False, "domains": before, "global_domains": found_global}
    if not check_mode:
        cli.run("domains:set", app, *wanted)
    return {
        "changed": True,
        "domains": wanted,
        "global_domains": found_global,
        "diff": {
            "before": "".join(f"{d}\n" for d in before),
            "after": "".join(f"{d}\n" for d in wanted),
        },
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app": {"type": "str"},
            "scope": {"type": "str", "choices": ["app", "global"], "default": "app"},
            "domains": {"type": "list", "elements": "str", "default": []},
            "address_when_none": {"type": "bool", "default": False},
        },
        required_if=[("scope", "app", ("app",))],
        supports_check_mode=True,
    )
    app, domains = module.params["app"], module.params["domains"]
    if app is not None and not APP_NAME_RE.match(app):
        module.fail_json(msg=f"Invalid Dokku app name {app!r}")
    bad = [d for d in domains if not DOMAIN_RE.match(d)]
    if bad:
        module.fail_json(msg=f"Invalid domain name(s): {', '.join(map(repr, bad))}")
    cli = DokkuCli(module_runner(module), find_dokku(module))
    try:
        if module.params["scope"] == "global":
            result = ensure_global_domains(cli, domains, module.check_mode)
        else:
            result = ensure_domains(
                cli, app, domains, module.check_mode, module.params["address_when_none"]
            )
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
