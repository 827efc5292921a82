#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Ensure Heroku add-ons exist (matched by service), remove unwanted ones, wait for them."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: heroku_addons
short_description: Create Heroku add-ons that are absent and wait until they are provisioned
author:
  - double-boiler contributors (@double-boiler)
description:
  - Lists the app's add-ons (C(GET /apps/{app}/addons)). For each plan in O(plans) whose
    add-on service (the part before C(:)) has no add-on yet, creates one
    (C(POST /apps/{app}/addons) with the plan).
  - An existing add-on of the same service on another plan is left alone (changing a
    database plan is a migration); the module warns.
  - Then waits until every wanted add-on is C(provisioned); fails on C(deprovisioned) or
    when O(timeout) passes.
  - Add-ons of the services in O(absent) that the app owns are deleted
    (C(DELETE /apps/{app}/addons/{addon}); their config vars go with them, as on Heroku). An
    add-on only attached to the app (owned by another app) is left alone, with a warning.
  - A creation answered with a 5xx or with no answer is retried only after the app's
    add-on list shows none of that service was created meanwhile.
options:
  app:
    description: App name.
    type: str
    required: true
  plans:
    description: Add-on plans, C(<service>:<plan>), such as C(heroku-postgresql:essential-0).
    type: list
    elements: str
    default: []
  absent:
    description:
      - Add-on services the app must not own, such as C(heroku-redis) once Celery's broker is
        the database. Deleting a database add-on destroys its data.
    type: list
    elements: str
    default: []
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
- name: Ensure Postgres and Redis add-ons, waiting until both are provisioned
  double_boiler.paas.heroku_addons:
    app: my-django-app
    plans:
      - heroku-postgresql:essential-0
      - heroku-redis:mini
    timeout: 900

- name: Keep Postgres and remove the Redis add-on the app no longer uses
  double_boiler.paas.heroku_addons:
    app: my-django-app
    plans:
      - heroku-postgresql:essential-0
    absent:
      - heroku-redis
"""

RETURN = r"""
addons:
  description: One entry per wanted plan with C(service), C(plan), C(name), C(id), C(state).
  type: list
  returned: always
removed:
  description: Names of the add-ons deleted (or that would be).
  type: list
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
    wait_until,
)

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


def _owner(addon: dict) -> str | None:
    return (addon.get("app") or {}).get("name")


def ensure_addons(
    client: HerokuClient,
    app: str,
    plans: list[str],
    check: bool,
    wait: bool,
    timeout: float,
    interval: float,
    absent: list[str] | None = None,
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
            found = client.create(
                path,
                {"plan": plan},
                lambda service=service: next(
                    (a for a in client.list(path) if _service(a) == service), None
                ),
            )
        elif (found.get("plan") or {}).get("name") != plan:
            warnings.append(
                f"{service} add-on {found.get('name')} is on plan "
                f"{(found.get('plan') or {}).get('name')}, not {plan}; left as it is (change "
                "a plan with `heroku addons:upgrade` when you mean it)"
            )
        wanted.append(_summary(found))

    removed = []
    for addon in existing:
        if _service(addon) not in (absent or []):
            continue
        owner = _owner(addon)
        if owner not in (None, app):
            warnings.append(
                f"{_service(addon)} add-on {addon.get('name')} is attached from app {owner}; "
                f"left alone (detach it with `heroku addons:detach -a {app}` if you mean it)"
            )
            continue
        removed.append(addon.get("name"))
        if not check:
            client.delete(client.path("apps", app, "addons", addon["id"]))
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
    gone = {
        f"{_service(a)}: {(a.get('plan') or {}).get('name')}"
        for a in existing
        if a.get("name") in removed
    }
    after = sorted((set(before) - gone) | {f"{p.split(':', 1)[0]}: {p}" for p in created})
    return {
        "changed": bool(created or removed),
        "addons": wanted,
        "created": created,
        "removed": removed,
        "warnings": warnings,
        "diff": {"before": {"addons": before}, "after": {"addons": after}},
    }


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        plans=dict(type="list", elements="str", default=[]),
        absent=dict(type="list", elements="str", default=[]),
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
    both = sorted(set(services) & set(p["absent"]))
    if both:
        module.fail_json(msg=f"{both} are both wanted (plans) and absent: keep one")
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
            absent=p["absent"],
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
