#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Ensure a Heroku app's buildpacks are exactly the given list, in order."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: heroku_buildpacks
short_description: Set a Heroku app's buildpacks only when they differ
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads C(GET /apps/{app}/buildpack-installations) and, only when the ordered list
    differs from O(buildpacks), replaces it with one C(PUT).
  - A buildpack matches an installation by registry name (C(heroku/python)) or URL.
options:
  app:
    description: App name.
    type: str
    required: true
  buildpacks:
    description: Buildpacks in order, as registry names or URLs.
    type: list
    elements: str
    default: [heroku/python]
extends_documentation_fragment:
  - double_boiler.paas.heroku
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
    details: An app that does not exist yet counts as having no buildpack.
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Build with the official Python buildpack only
  double_boiler.paas.heroku_buildpacks:
    app: my-django-app
    buildpacks:
      - heroku/python
"""

RETURN = r"""
buildpacks:
  description: The buildpacks (names or URLs) in order after the run.
  type: list
  returned: always
api_writes:
  description: Writing requests sent (method and path).
  type: list
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import (
    HerokuClient,
    HerokuError,
    NotFound,
    common_argument_spec,
    module_client,
)


def _matches(wanted: str, installed: dict) -> bool:
    bp = installed.get("buildpack") or {}
    return wanted in (bp.get("name"), bp.get("url"))


def _label(installed: dict) -> str:
    bp = installed.get("buildpack") or {}
    return bp.get("name") or bp.get("url") or "?"


def ensure_buildpacks(client: HerokuClient, app: str, wanted: list[str], check: bool) -> dict:
    path = client.path("apps", app, "buildpack-installations")
    try:
        current = sorted(client.list(path), key=lambda i: i.get("ordinal", 0))
    except NotFound:
        if not check:
            raise
        current = []
    before = [_label(i) for i in current]
    same = len(current) == len(wanted) and all(
        _matches(w, i) for w, i in zip(wanted, current, strict=True)
    )
    if not same and not check:
        client.put(path, {"updates": [{"buildpack": w} for w in wanted]})
    return {
        "changed": not same,
        "buildpacks": list(wanted) if not same else before,
        "diff": {"before": {"buildpacks": before}, "after": {"buildpacks": list(wanted)}},
    }


def main() -> None:
    spec = common_argument_spec()
    spec.update(buildpacks=dict(type="list", elements="str", default=["heroku/python"]))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    client = module_client(module)
    wanted = module.params["buildpacks"]
    if not wanted or any(not (w or "").strip() for w in wanted):
        module.fail_json(msg="buildpacks must list at least one non-empty name or URL")
    try:
        result = ensure_buildpacks(client, module.params["app"], wanted, module.check_mode)
    except HerokuError as exc:
        module.fail_json(msg=str(exc), api_writes=client.writes)
    if not module._diff:
        result.pop("diff")
    module.exit_json(api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
