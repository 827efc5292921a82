#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Ensure a Heroku app exists with the wanted region and stack."""

from __future__ import annotations

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.heroku_api import (
    HerokuClient,
    HerokuError,
    common_argument_spec,
    module_client,
)

DOCUMENTATION = r"""
---
module: heroku_app
short_description: Ensure a Heroku app exists, in a region, on a stack
description:
  - Reads the app (C(GET /apps/{app})); creates it (C(POST /apps)) when absent; when
    its build stack differs, updates it (C(PATCH /apps/{app}) with C(build_stack)), which
    takes effect at the next build.
  - An existing app's region cannot change on Heroku; a different region is an error.
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
  api_url:
    description: Base URL of the Platform API.
    type: str
    default: https://api.heroku.com
  api_key:
    description: API token; defaults to the environment variable C(HEROKU_API_KEY).
    type: str
    required: true
  request_timeout:
    description: Seconds to wait for each HTTP answer.
    type: int
    default: 30
  max_retries:
    description: Retries for 429 and 5xx answers.
    type: int
    default: 6
notes:
  - Supports check mode and diff mode.
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

REGION_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
STACK_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


def _state(app: dict | None) -> dict:
    if not app:
        return {}
    return {
        "name": app.get("name"),
        "region": (app.get("region") or {}).get("name"),
        "stack": (app.get("build_stack") or app.get("stack") or {}).get("name"),
    }


def ensure_app(client: HerokuClient, name: str, region: str, stack: str, check: bool) -> dict:
    path = client.path("apps", name)
    app = client.get_or_none(path)
    before = _state(app)
    after = {"name": name, "region": region, "stack": stack}
    changed = False
    if app is None:
        changed = True
        if not check:
            app = client.post("/apps", {"name": name, "region": region, "stack": stack})
    else:
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
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    client = module_client(module)
    p = module.params
    if not REGION_RE.match(p["region"]):
        module.fail_json(msg=f"region {p['region']!r} is not a Heroku region name such as us or eu")
    if not STACK_RE.match(p["stack"]):
        module.fail_json(msg=f"stack {p['stack']!r} is not a Heroku stack name such as heroku-24")
    try:
        result = ensure_app(client, p["app"], p["region"], p["stack"], module.check_mode)
    except HerokuError as exc:
        module.fail_json(msg=str(exc), api_writes=client.writes)
    if not module._diff:
        result.pop("diff")
    module.exit_json(api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
