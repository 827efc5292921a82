#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Ensure a Heroku app's custom domains, with Automated Certificate Management."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: heroku_domains
short_description: Ensure a Heroku app's custom domains and turn on ACM for them
author:
  - double-boiler contributors (@double-boiler)
description:
  - Lists the app's domains (C(GET /apps/{app}/domains)), adds each of O(domains) that is
    missing (C(POST /apps/{app}/domains)) and, with O(purge), deletes the custom domains
    not listed (C(DELETE /apps/{app}/domains/{domain})). The app's own
    C(<app>.herokuapp.com) domain (kind C(heroku)) is never touched.
  - When the app has custom domains and O(acm) is true, turns on Automated Certificate
    Management (C(POST /apps/{app}/acm)) unless the app's C(acm) flag is already on, so
    Heroku obtains and renews their TLS certificates
    (U(https://devcenter.heroku.com/articles/automated-certificate-management)).
  - Returns every host name the app answers to (its herokuapp.com host and the custom
    ones), which is what Django's C(ALLOWED_HOSTS) needs.
  - A creation answered with a 5xx or with no answer is retried only after the domain
    list shows it was not added.
options:
  app:
    description: App name.
    type: str
    required: true
  domains:
    description: Custom host names, such as C(www.example.com) or C(*.example.com).
    type: list
    elements: str
    default: []
  purge:
    description: Delete the app's custom domains that are not in O(domains).
    type: bool
    default: true
  acm:
    description: Turn on ACM when the app has custom domains.
    type: bool
    default: true
extends_documentation_fragment:
  - double_boiler.paas.heroku
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
    details: An app that does not exist yet counts as having only its herokuapp.com domain.
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Serve the app on its own domain with a certificate from ACM
  double_boiler.paas.heroku_domains:
    app: my-django-app
    domains:
      - www.example.com
  register: domains

- name: Show the DNS target to point the CNAME at
  ansible.builtin.debug:
    msg: "{{ domains.custom }}"
"""

RETURN = r"""
hostnames:
  description: Every host name the app answers to (herokuapp.com host first).
  type: list
  elements: str
  returned: always
custom:
  description: Custom domains after the run, each with C(hostname) and C(cname) (DNS target).
  type: list
  returned: always
added:
  description: Host names added (or that would be).
  type: list
  returned: always
removed:
  description: Host names deleted (or that would be).
  type: list
  returned: always
acm_enabled:
  description: Whether ACM was turned on by this run.
  type: bool
  returned: always
api_writes:
  description: Writing requests sent (method and path).
  type: list
  returned: always
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import (
    HerokuClient,
    HerokuError,
    NotFound,
    common_argument_spec,
    module_client,
)

# RFC 1123 labels; a leading "*." for a wildcard domain (Heroku accepts those).
HOSTNAME_RE = re.compile(
    r"^(\*\.)?(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
)


def ensure_domains(client: HerokuClient, params: dict, check: bool, app_name: str) -> dict:
    app_path = client.path("apps", app_name)
    path = client.path("apps", app_name, "domains")
    try:
        app = client.get(app_path)
        existing = client.list(path)
    except NotFound:
        if not check:
            raise
        app, existing = {}, []
    wanted = [d.lower() for d in params["domains"]]
    heroku_hosts = [d["hostname"] for d in existing if d.get("kind") == "heroku"]
    custom = {d["hostname"]: d for d in existing if d.get("kind") != "heroku"}
    added = [h for h in wanted if h not in custom]
    removed = sorted(h for h in custom if h not in wanted) if params["purge"] else []
    if not check:
        for hostname in added:
            custom[hostname] = client.create(
                path,
                {"hostname": hostname, "sni_endpoint": None},
                lambda hostname=hostname: next(
                    (d for d in client.list(path) if d.get("hostname") == hostname), None
                ),
            )
        for hostname in removed:
            client.delete(client.path("apps", app_name, "domains", custom[hostname]["id"]))
    for hostname in removed:
        custom.pop(hostname, None)
    for hostname in added:
        custom.setdefault(hostname, {"hostname": hostname, "cname": None})
    acm_enabled = False
    if params["acm"] and custom and not app.get("acm"):
        acm_enabled = True
        if not check:
            client.post(client.path("apps", app_name, "acm"))
    before = sorted(d["hostname"] for d in existing)
    after = sorted(set(heroku_hosts) | set(custom))
    return {
        "changed": bool(added or removed or acm_enabled),
        "hostnames": heroku_hosts + sorted(custom),
        "custom": [{"hostname": h, "cname": custom[h].get("cname")} for h in sorted(custom)],
        "added": added,
        "removed": removed,
        "acm_enabled": acm_enabled,
        "diff": {
            "before": {"domains": before, "acm": bool(app.get("acm"))},
            "after": {"domains": after, "acm": bool(app.get("acm")) or acm_enabled},
        },
    }


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        domains=dict(type="list", elements="str", default=[]),
        purge=dict(type="bool", default=True),
        acm=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    client = module_client(module)
    p = module.params
    bad = [d for d in p["domains"] if not HOSTNAME_RE.match((d or "").lower())]
    if bad:
        module.fail_json(
            msg=f"{bad} are not host names such as www.example.com (no scheme, port or path)"
        )
    herokuapp = [d for d in p["domains"] if d.lower().endswith(".herokuapp.com")]
    if herokuapp:
        module.fail_json(
            msg=f"{herokuapp}: the app's herokuapp.com host is Heroku's, leave it out of domains"
        )
    try:
        result = ensure_domains(client, p, module.check_mode, p["app"])
    except HerokuError as exc:
        module.fail_json(msg=str(exc), api_writes=client.writes)
    if not module._diff:
        result.pop("diff")
    module.exit_json(api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
