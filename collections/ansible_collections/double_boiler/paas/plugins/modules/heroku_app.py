#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Ensure a Heroku app exists with the wanted region and stack."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: heroku_app
short_description: Ensure a Heroku app exists, in a region, on a stack
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads the app (C(GET /apps/{app})); creates it (C(POST /apps)) when absent; when
    its build stack differs, updates it (C(PATCH /apps/{app}) with C(build_stack)), which
    takes effect at the next build.
  - An existing app's region cannot change on Heroku; a different region is an error.
  - With O(team), a new app is created in that team (C(POST /teams/apps)); an existing
    app owned elsewhere is an error (moving it is C(heroku apps:transfer), not a deploy).
  - A creation answered with a 5xx or with no answer is retried only after
    C(GET /apps/{app}) shows it was not created.
options:
  app:
    description: App name (3 to 30 characters, lowercase letters, digits, dashes).
    type: str
    required: true
  region:
    description: Region name for a new app (C(us), C(eu)).
    type: str
    default: us
  stack:
    description: Stack name (C(heroku-24)).
    type: str
    default: heroku-24
  team:
    description: Heroku Team that owns a new app; omit for the token's personal account.
    type: str
extends_documentation_fragment:
  - double_boiler.paas.heroku
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Give the connection options once for every heroku module of a block
  module_defaults:
    group/double_boiler.paas.heroku:
      api_key: "{{ lookup('ansible.builtin.env', 'HEROKU_API_KEY') }}"
  block:
    - name: Ensure the app exists in the EU on heroku-24
      double_boiler.paas.heroku_app:
        app: my-django-app
        region: eu
        stack: heroku-24
      register: app

    - name: Show its URL
      ansible.builtin.debug:
        msg: "{{ app.web_url }}"
"""

RETURN = r"""
app:
  description: The app as the API returns it (empty in check mode when it would be created).
  type: dict
  returned: always
exists:
  description: Whether the app exists now (false in check mode before creation).
  type: bool
  returned: always
web_url:
  description: The app's web URL, or null when unknown.
  type: str
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
    common_argument_spec,
    module_client,
)

REGION_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
STACK_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


def _state(app: dict | None) -> dict:
    if not app:
        return {}
    return {
        "name": app.get("name"),
        "region": (app.get("region") or {}).get("name"),
        "stack": (app.get("build_stack") or app.get("stack") or {}).get("name"),
        "team": (app.get("team") or {}).get("name"),
    }


def ensure_app(
    client: HerokuClient,
    name: str,
    region: str,
    stack: str,
    check: bool,
    team: str | None = None,
) -> dict:
    path = client.path("apps", name)
    app = client.get_or_none(path)
    before = _state(app)
    after = {"name": name, "region": region, "stack": stack, "team": team}
    changed = False
    if app is None:
        changed = True
        if not check:
            body = {"name": name, "region": region, "stack": stack}
            if team:
                app = client.create(
                    "/teams/apps", {**body, "team": team}, lambda: client.get_or_none(path)
                )
            else:
                app = client.create("/apps", body, lambda: client.get_or_none(path))
    else:
        if team and before["team"] != team:
            owner = f"team {before['team']}" if before["team"] else "a personal account"
            raise HerokuError(
                f"app {name} exists and belongs to {owner}, not team {team}: transfer it "
                f"(heroku apps:transfer -a {name} {team}) or set heroku_app_team to its owner"
            )
        if before["region"] and before["region"] != region:
            raise HerokuError(
                f"app {name} exists in region {before['region']}, not {region}: Heroku cannot "
                f"move an app, so set heroku_app_region: {before['region']} or pick another name"
            )
        if before["stack"] != stack:
            changed = True
            if not check:
                app = client.patch(path, {"build_stack": stack})
    return {
        "changed": changed,
        "app": app or {},
        "exists": bool(app),
        "web_url": (app or {}).get("web_url"),
        "diff": {"before": before, "after": after},
    }


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        region=dict(type="str", default="us"),
        stack=dict(type="str", default="heroku-24"),
        team=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    client = module_client(module)
    p = module.params
    if not REGION_RE.match(p["region"]):
        module.fail_json(msg=f"region {p['region']!r} is not a Heroku region name such as us or eu")
    if not STACK_RE.match(p["stack"]):
        module.fail_json(msg=f"stack {p['stack']!r} is not a Heroku stack name such as heroku-24")
    try:
        result = ensure_app(
            client, p["app"], p["region"], p["stack"], module.check_mode, team=p["team"]
        )
    except HerokuError as exc:
        module.fail_json(msg=str(exc), api_writes=client.writes)
    if not module._diff:
        result.pop("diff")
    module.exit_json(api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
