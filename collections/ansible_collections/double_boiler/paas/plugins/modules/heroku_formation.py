#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Scale a Heroku app's process types with one batch update of what differs."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: heroku_formation
short_description: Set dyno quantity and size per process type with one batch update
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads C(GET /apps/{app}/formation) and sends one C(PATCH /apps/{app}/formation)
    (batch C(updates)) holding only the process types whose quantity or size differs.
  - A process type that the app's Procfile does not declare is an error when it should
    run (quantity above 0) and is ignored when it should be stopped (quantity 0).
  - Warns when a process type runs on Eco dynos. An Eco web dyno that gets no web traffic
    for 30 minutes sleeps, and the app's worker dynos sleep with it
    (U(https://devcenter.heroku.com/articles/eco-dyno-hours)), so Celery jobs and their
    schedule stop until the next request wakes the app.
options:
  app:
    description: App name.
    type: str
    required: true
  formation:
    description: Process types to set.
    type: list
    elements: dict
    required: true
    suboptions:
      type:
        description: Process type (C(web), C(worker)).
        type: str
        required: true
      quantity:
        description: Number of dynos.
        type: int
        required: true
      size:
        description: Dyno size name (C(Basic), C(Standard-1X)); omit to keep the current one.
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
- name: One web dyno, no worker dyno
  double_boiler.paas.heroku_formation:
    app: my-django-app
    formation:
      - type: web
        quantity: 1
        size: Basic
      - type: worker
        quantity: 0
"""

RETURN = r"""
formation:
  description: Process types after the run, each with C(type), C(quantity), C(size).
  type: list
  returned: always
updates:
  description: The batch updates sent (or that would be sent).
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
)

TYPE_RE = re.compile(r"^[-\w]{1,128}$")
SIZE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


def _size(entry: dict) -> str | None:
    return (entry.get("dyno_size") or {}).get("name") or entry.get("size")


def _state(entry: dict) -> dict:
    return {"type": entry.get("type"), "quantity": entry.get("quantity"), "size": _size(entry)}


def eco_warnings(formation: list[dict]) -> list[str]:
    """A warning per process type that runs on Eco dynos (they sleep)."""
    return [
        f"{entry['type']} runs on Eco dynos: with no web traffic for 30 minutes the app's Eco "
        "dynos sleep (https://devcenter.heroku.com/articles/eco-dyno-hours), and the Celery "
        "worker and its schedule stop with them until a request wakes the app; pick Basic "
        "or larger for jobs that must run on time"
        for entry in formation
        if (entry.get("size") or "").lower() == "eco" and (entry.get("quantity") or 0) > 0
    ]


def ensure_formation(client: HerokuClient, app: str, wanted: list[dict], check: bool) -> dict:
    path = client.path("apps", app, "formation")
    try:
        current = {f["type"]: f for f in client.list(path)}
    except NotFound:
        if not check:
            raise
        current = {}
    updates = []
    for item in wanted:
        existing = current.get(item["type"])
        if existing is None:
            if item["quantity"] == 0:
                continue  # nothing runs a type the Procfile does not declare
            if not check:
                declared = ", ".join(sorted(current)) or "none yet (no release with a slug)"
                raise HerokuError(
                    f"process type {item['type']} is not in the app's formation (declared: "
                    f"{declared}); add it to the Procfile or stop asking for it"
                )
        update: dict = {}
        if existing is None or existing.get("quantity") != item["quantity"]:
            update["quantity"] = item["quantity"]
        size = item.get("size")
        if size and (existing is None or (_size(existing) or "").lower() != size.lower()):
            update["dyno_size"] = {"name": size}
        if update:
            updates.append({"type": item["type"], **update})
    if updates and not check:
        client.patch(path, {"updates": updates})
    before = sorted((_state(f) for f in current.values()), key=lambda s: s["type"])
    after_map = {s["type"]: dict(s) for s in before}
    for update in updates:
        entry = after_map.setdefault(update["type"], {"type": update["type"]})
        if "quantity" in update:
            entry["quantity"] = update["quantity"]
        if "dyno_size" in update:
            entry["size"] = update["dyno_size"]["name"]
    after = sorted(after_map.values(), key=lambda s: s["type"])
    return {
        "changed": bool(updates),
        "updates": updates,
        "formation": after,
        "diff": {"before": {"formation": before}, "after": {"formation": after}},
    }


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        formation=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                type=dict(type="str", required=True),
                quantity=dict(type="int", required=True),
                size=dict(type="str"),
            ),
        )
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    client = module_client(module)
    wanted = module.params["formation"]
    problems = []
    for item in wanted:
        if not TYPE_RE.match(item["type"]):
            problems.append(f"process type {item['type']!r} is not a Procfile process name")
        if item["quantity"] < 0:
            problems.append(f"{item['type']} quantity must be 0 or more")
        if item.get("size") and not SIZE_RE.match(item["size"]):
            problems.append(f"{item['type']} size {item['size']!r} is not a dyno size name")
    types = [item["type"] for item in wanted]
    if len(set(types)) != len(types):
        problems.append(f"process types {types} repeat: list each once")
    if problems:
        module.fail_json(msg="; ".join(problems))
    try:
        result = ensure_formation(client, module.params["app"], wanted, module.check_mode)
        for warning in eco_warnings(result["formation"]):
            module.warn(warning)
    except HerokuError as exc:
        module.fail_json(msg=str(exc), api_writes=client.writes)
    if not module._diff:
        result.pop("diff")
    module.exit_json(api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
