#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Wait until every dyno of a process type runs a release and is up (heroku ps:wait)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: heroku_dynos_wait
short_description: Wait until every dyno of a process type runs a release and is up
author:
  - double-boiler contributors (@double-boiler)
description:
  - As C(heroku ps:wait) does (Heroku CLI 11, C(commands/ps/wait.js)), polls
    C(GET /apps/{app}/dynos) until every dyno of O(type) runs O(release) or a later one
    (the dyno's C(release.version)) and is C(up); unlike it, also until as many run as the
    formation asks for (C(GET /apps/{app}/formation/{type})), so a dyno not started yet
    is waited for too.
  - Without O(release), waits for the app's current release (the newest release whose
    C(current) is true).
  - Until then an old dyno may still answer the app's URL (a restart, or preboot's
    overlap), so a health check made earlier can be green for the previous release.
  - Never writes; fails when O(timeout) passes, naming the dynos that lag behind.
options:
  app:
    description: App name.
    type: str
    required: true
  type:
    description: Process type whose dynos are waited for.
    type: str
    default: web
  release:
    description: Release version to wait for; defaults to the app's current release.
    type: int
  timeout:
    description: Seconds to wait.
    type: int
    default: 600
  poll_interval:
    description: Seconds between two reads of the dynos.
    type: int
    default: 3
extends_documentation_fragment:
  - double_boiler.paas.heroku
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
    details: Reads only; in check mode it reports what runs and does not wait.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Wait until every web dyno runs the release just made
  double_boiler.paas.heroku_dynos_wait:
    app: my-django-app
    type: web
    release: "{{ build.release.version }}"
    timeout: 600
"""

RETURN = r"""
release:
  description: The release version waited for.
  type: int
  returned: always
dynos:
  description: The dynos of O(type) at the end, each with C(name), C(state), C(release).
  type: list
  returned: always
api_writes:
  description: Always empty (the module only reads).
  type: list
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import (
    HerokuClient,
    HerokuError,
    common_argument_spec,
    module_client,
    wait_until,
)


def current_release_version(client: HerokuClient, app: str) -> int | None:
    path = client.path("apps", app, "releases")
    page = client.list(path, "version ..; max=10, order=desc", all_pages=False)
    current = [r.get("version", 0) for r in page if r.get("current")]
    return max(current) if current else None


def dyno_summary(dyno: dict) -> dict:
    return {
        "name": dyno.get("name"),
        "state": dyno.get("state"),
        "release": (dyno.get("release") or {}).get("version"),
    }


def lagging(dynos: list[dict], version: int, quantity: int) -> list[str]:
    """Why the dynos are not yet all on `version` and up (empty: they are)."""

    def on_version(d: dict) -> bool:
        # a later release may have come meanwhile: it counts, as for `heroku ps:wait`
        return d["state"] == "up" and (d["release"] or 0) >= version

    reasons = [f"{d['name']} ({d['state']}, v{d['release']})" for d in dynos if not on_version(d)]
    up = sum(1 for d in dynos if on_version(d))
    if up < quantity:
        reasons.append(f"{up} of {quantity} dynos up on v{version}")
    return reasons


def wait_for_dynos(client: HerokuClient, params: dict, check: bool) -> dict:
    app, ptype = params["app"], params["type"]
    version = params["release"] or current_release_version(client, app)
    if version is None:
        raise HerokuError(f"app {app} has no current release yet: deploy it first")
    formation = client.get(client.path("apps", app, "formation", ptype))
    quantity = int(formation.get("quantity") or 0)

    def read() -> list[dict]:
        dynos = client.list(client.path("apps", app, "dynos"))
        return [dyno_summary(d) for d in dynos if d.get("type") == ptype]

    if check:
        dynos = read()
    else:
        dynos, finished = wait_until(
            read,
            lambda ds: not lagging(ds, version, quantity),
            params["timeout"],
            params["poll_interval"],
        )
        if not finished:
            raise HerokuError(
                f"after {params['timeout']} s not every {ptype} dyno runs v{version}: "
                + "; ".join(lagging(dynos, version, quantity))
                + f". Look at `heroku ps -a {app}` and `heroku logs -a {app}`."
            )
    return {"changed": False, "release": version, "dynos": dynos}


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        type=dict(type="str", default="web"),
        release=dict(type="int"),
        timeout=dict(type="int", default=600),
        poll_interval=dict(type="int", default=3),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    client = module_client(module)
    p = module.params
    if (
        p["timeout"] < 1
        or p["poll_interval"] < 1
        or (p["release"] is not None and p["release"] < 1)
    ):
        module.fail_json(msg="timeout, poll_interval and release must be at least 1")
    try:
        result = wait_for_dynos(client, p, module.check_mode)
    except HerokuError as exc:
        module.fail_json(msg=str(exc), api_writes=client.writes)
    module.exit_json(api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
