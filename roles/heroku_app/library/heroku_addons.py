#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Ensure Heroku add-ons exist (matched by service) and wait until they are provisioned."""

from __future__ import annotations

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.heroku_api import (
    HerokuClient,
    HerokuError,
    NotFound,
    common_argument_spec,
    module_client,
    wait_until,
)

DOCUMENTATION = r"""
---
module: heroku_addons
short_description: Create Heroku add-ons that are absent and wait until they are provisioned
description:
  - Lists the app's add-ons (C(GET /apps/{app}/addons)). For each plan in O(plans) whose
    add-on service (the part before C(:)) has no add-on yet, creates one
    (C(POST /apps/{app}/addons) with the plan).
  - An existing add-on of the same service on another plan is left alone (changing a
    database plan is a migration); the module warns.
  - Then waits until every wanted add-on is C(provisioned); fails on C(deprovisioned) or
    when O(timeout) passes.
options:
  app:
    description: App name.
    type: str
    required: true
  plans:
    description: Add-on plans, C(<service>:<plan>), such as C(heroku-postgresql:essential-0).
    type: list
    elements: str
    required: true
  wait:
    description: Wait until the add-ons are provisioned.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for provisioning.
    type: int
    default: 900
  poll_interval:
    description: Seconds between two state reads while waiting.
    type: int
    default: 5
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
addons:
  description: One entry per wanted plan with C(service), C(plan), C(name), C(id), C(state).
  type: list
  returned: always
api_writes:
  description: Writing requests sent (method and path).
  type: list
  returned: always
"""

PLAN_RE = re.compile(r"^[a-z0-9][a-z0-9-]*:[a-z0-9][a-z0-9.-]*$")


def _service(addon: dict) -> str | None:
    return (addon.get("addon_service") or {}).get("name")


def _summary(addon: dict) -> dict:
    return {
        "service": _service(addon),
        "plan": (addon.get("plan") or {}).get("name"),
        "name": addon.get("name"),
        "id": addon.get("id"),
        "state": addon.get("state"),
        "config_vars": addon.get("config_vars") or [],
    }


def ensure_addons(
    client: HerokuClient,
    app: str,
    plans: list[str],
    check: bool,
    wait: bool,
    timeout: float,
    interval: float,
) -> dict:
    path = client.path("apps", app, "addons")
    try:
        existing = client.list(path)
    except NotFound:
        if not check:
            raise
        existing = []
    warnings, wanted, created = [], [], []
    for plan in plans:
        service = plan.split(":", 1)[0]
        found = next((a for a in existing if _service(a) == service), None)
        if found is None:
            created.append(plan)
            if check:
                wanted.append({"service": service, "plan": plan, "state": "provisioning"})
                continue
            found = client.post(path, {"plan": plan})
        elif (found.get("plan") or {}).get("name") != plan:
            warnings.append(
                f"{service} add-on {found.get('name')} is on plan "
                f"{(found.get('plan') or {}).get('name')}, not {plan}; left as it is (change "
                "a plan with `heroku addons:upgrade` when you mean it)"
            )
        wanted.append(_summary(found))

    if wait and not check:
        for index, addon in enumerate(wanted):
            if addon["state"] == "provisioned":
                continue
            one = client.path("apps", app, "addons", addon["id"])
            last, finished = wait_until(
                lambda one=one: client.get(one),
                lambda a: a.get("state") != "provisioning",
                timeout,
                interval,
            )
            state = last.get("state")
            if state == "deprovisioned":
                raise HerokuError(
                    f"add-on {last.get('name')} ({addon['plan']}) was deprovisioned while "
                    f"provisioning: {last.get('provision_message') or 'no message'}; check the "
                    "plan name and your account's limits, then run again"
                )
            if not finished:
                raise HerokuError(
                    f"add-on {last.get('name')} ({addon['plan']}) is still {state} after "
                    f"{int(timeout)} s; run again later or raise heroku_app_addon_timeout"
                )
            wanted[index] = _summary(last)

    before = sorted(f"{_service(a)}: {(a.get('plan') or {}).get('name')}" for a in existing)
    after = sorted(set(before) | {f"{p.split(':', 1)[0]}: {p}" for p in created})
    return {
        "changed": bool(created),
        "addons": wanted,
        "created": created,
        "warnings": warnings,
        "diff": {"before": {"addons": before}, "after": {"addons": after}},
    }


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        plans=dict(type="list", elements="str", required=True),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=900),
        poll_interval=dict(type="int", default=5),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    client = module_client(module)
    p = module.params
    bad = [plan for plan in p["plans"] if not PLAN_RE.match(plan or "")]
    if bad:
        module.fail_json(
            msg=f"add-on plans {bad} are not of the form <service>:<plan>, such as "
            "heroku-postgresql:essential-0"
        )
    services = [plan.split(":", 1)[0] for plan in p["plans"]]
    if len(set(services)) != len(services):
        module.fail_json(msg=f"plans {p['plans']} name a service twice: keep one plan each")
    if p["timeout"] < 0 or p["poll_interval"] < 1:
        module.fail_json(msg="timeout must be >= 0 and poll_interval >= 1 second")
    try:
        result = ensure_addons(
            client,
            p["app"],
            p["plans"],
            module.check_mode,
            p["wait"],
            p["timeout"],
            p["poll_interval"],
        )
    except HerokuError as exc:
        module.fail_json(msg=str(exc), api_writes=client.writes)
    for warning in result.pop("warnings"):
        module.warn(warning)
    if not module._diff:
        result.pop("diff")
    module.exit_json(api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
