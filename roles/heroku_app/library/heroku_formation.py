#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Scale a Heroku app's process types with one batch update of what differs."""

from __future__ import annotations

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.heroku_api import (
    HerokuClient,
    HerokuError,
    NotFound,
    common_argument_spec,
    module_client,
)

DOCUMENTATION = r"""
---
module: heroku_formation
short_description: Set dyno quantity and size per process type with one batch update
description:
  - Reads C(GET /apps/{app}/formation) and sends one C(PATCH /apps/{app}/formation)
    (batch C(updates)) holding only the process types whose quantity or size differs.
  - A process type that the app's Procfile does not declare is an error when it should
    run (quantity above 0) and is ignored when it should be stopped (quantity 0).
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

TYPE_RE = re.compile(r"^[-\w]{1,128}$")
SIZE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


def _size(entry: dict) -> str | None:
    return (entry.get("dyno_size") or {}).get("name") or entry.get("size")


def _state(entry: dict) -> dict:
    return {"type": entry.get("type"), "quantity": entry.get("quantity"), "size": _size(entry)}


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
    except HerokuError as exc:
        module.fail_json(msg=str(exc), api_writes=client.writes)
    if not module._diff:
        result.pop("diff")
    module.exit_json(api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
