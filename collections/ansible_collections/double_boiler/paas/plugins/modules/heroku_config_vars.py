#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Ensure Heroku config vars with one PATCH of only what changed; keep the secret key."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: heroku_config_vars
short_description: Set Heroku config vars with one PATCH of what changed
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads C(GET /apps/{app}/config-vars), compares with O(config), O(secret_config),
    O(absent) and the generated secret, and sends one C(PATCH) holding only the keys
    whose value changes (every config change makes a release and restarts the dynos).
  - O(secret_key_name) gets a random value (the OS CSPRNG, O(secret_key_length)
    characters) only when the app has none, or when O(rotate_secret_key) is true.
  - Keys the module does not manage (such as C(DATABASE_URL) set by add-ons) are left
    alone and their values are never returned.
  - Values of secret keys (O(secret_config), O(secret_key_name), names that look
    sensitive such as C(*_KEY), C(*TOKEN*), C(*_URL)) are masked in the diff and results.
  - After a change, waits for the release it makes (the release phase runs again); a
    failed release fails the task with the release output.
options:
  app:
    description: App name.
    type: str
    required: true
  config:
    description: Config vars to set (values are shown in diffs unless the name looks sensitive).
    type: dict
    default: {}
  secret_config:
    description: Config vars whose values are secrets (never shown).
    type: dict
    default: {}
  absent:
    description: Config var names to remove.
    type: list
    elements: str
    default: []
  secret_key_name:
    description: Config var that holds a generated secret; empty to generate none.
    type: str
    default: DJANGO_SECRET_KEY
  secret_key_length:
    description: Length of the generated secret (at least 50).
    type: int
    default: 64
  rotate_secret_key:
    description: Replace the generated secret even if the app has one.
    type: bool
    default: false
  wait_release:
    description: After a change, wait for the release it creates and fail if it fails.
    type: bool
    default: true
  release_timeout:
    description: Seconds to wait for that release.
    type: int
    default: 600
  poll_interval:
    description: Seconds between two reads while waiting.
    type: int
    default: 3
extends_documentation_fragment:
  - double_boiler.paas.heroku
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
    details: An app that does not exist yet counts as having no config var.
  diff_mode:
    support: full
    details: Secret values are masked.
"""

EXAMPLES = r"""
- name: Set config vars in one PATCH; generate DJANGO_SECRET_KEY once
  double_boiler.paas.heroku_config_vars:
    app: my-django-app
    config:
      DOUBLE_BOILER_MODE: one-dyno
      WEB_CONCURRENCY: "2"
    secret_config:
      SENTRY_DSN: "{{ vault_sentry_dsn }}"
    secret_key_name: DJANGO_SECRET_KEY
  no_log: true
"""

RETURN = r"""
changed_keys:
  description: Names of the config vars set or removed (or that would be).
  type: list
  returned: always
secret_generated:
  description: Whether a new value of O(secret_key_name) was generated (never the value).
  type: bool
  returned: always
release:
  description: C(id), C(version), C(status) of the release the change made, when waited for.
  type: dict
  returned: when a change was made and O(wait_release) is true
api_writes:
  description: Writing requests sent (method and path).
  type: list
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.common import MASK, generate_secret
from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import (
    CONFIG_KEY_RE,
    HerokuClient,
    HerokuError,
    NotFound,
    common_argument_spec,
    mask_config,
    module_client,
    wait_until,
)


def plan_changes(
    current: dict[str, str],
    config: dict[str, str],
    secret_config: dict[str, str],
    absent: list[str],
    secret_key_name: str,
    rotate: bool,
    secret_length: int,
) -> tuple[dict[str, str | None], bool]:
    """Return (the PATCH body: only what changes, whether a secret was generated)."""
    desired: dict[str, str | None] = {**config, **secret_config}
    generated = False
    if secret_key_name and (rotate or not current.get(secret_key_name)):
        desired[secret_key_name] = generate_secret(secret_length)
        generated = True
    for key in absent:
        desired[key] = None
    changes = {
        key: value
        for key, value in desired.items()
        if (value is None and key in current) or (value is not None and current.get(key) != value)
    }
    return changes, generated


def latest_release(client: HerokuClient, app: str) -> dict | None:
    path = client.path("apps", app, "releases")
    page = client.list(path, "version ..; max=1, order=desc", all_pages=False)
    return max(page, key=lambda r: r.get("version", 0)) if page else None


def ensure_config_vars(client: HerokuClient, params: dict, check: bool) -> dict:
    app = params["app"]
    path = client.path("apps", app, "config-vars")
    try:
        current = client.get(path) or {}
    except NotFound:
        if not check:
            raise
        current = {}
    secret_names = set(params["secret_config"])
    if params["secret_key_name"]:
        secret_names.add(params["secret_key_name"])
    changes, generated = plan_changes(
        current,
        params["config"],
        params["secret_config"],
        params["absent"],
        params["secret_key_name"],
        params["rotate_secret_key"],
        params["secret_key_length"],
    )
    before = mask_config({k: current[k] for k in changes if k in current}, secret_names)
    after = mask_config({k: v for k, v in changes.items() if v is not None}, secret_names)
    result: dict = {
        "changed": bool(changes),
        "changed_keys": sorted(changes),
        "secret_generated": generated,
        "diff": {"before": before, "after": after},
    }
    if changes and not check:
        previous = latest_release(client, app) if params["wait_release"] else None
        client.patch(path, changes)
        if params["wait_release"]:
            result["release"] = wait_new_release(client, app, previous, params)
    return result


def wait_new_release(client: HerokuClient, app: str, previous: dict | None, params) -> dict:
    """Wait for the release a config change made; fail if its release phase failed."""
    previous_version = (previous or {}).get("version", 0)
    release, finished = wait_until(
        lambda: latest_release(client, app),
        lambda r: (
            bool(r) and r.get("version", 0) > previous_version and r.get("status") != "pending"
        ),
        params["release_timeout"],
        params["poll_interval"],
    )
    if not release or release.get("version", 0) <= previous_version:
        # Heroku always makes a release for a config change; none means we cannot tell.
        return {}
    summary = {k: release.get(k) for k in ("id", "version", "status", "current")}
    if not finished:
        raise HerokuError(
            f"release v{release.get('version')} (config change) is still "
            f"{release.get('status')} after {params['release_timeout']} s; check "
            "`heroku releases` and run again"
        )
    if release.get("status") == "failed":
        output = ""
        if release.get("output_stream_url"):
            data, _ended = client.read_stream(release["output_stream_url"])
            output = data.decode("utf-8", "replace")[-4000:]
        raise HerokuError(
            f"release v{release.get('version')} made by the config change failed (its "
            "release phase exited non-zero); the previous release keeps serving.\n" + output
        )
    return summary


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        config=dict(type="dict", default={}),
        secret_config=dict(type="dict", default={}, no_log=True),
        absent=dict(type="list", elements="str", default=[]),
        secret_key_name=dict(type="str", default="DJANGO_SECRET_KEY", no_log=False),
        secret_key_length=dict(type="int", default=64, no_log=False),
        rotate_secret_key=dict(type="bool", default=False, no_log=False),
        wait_release=dict(type="bool", default=True),
        release_timeout=dict(type="int", default=600),
        poll_interval=dict(type="int", default=3),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    client = module_client(module)
    p = module.params
    problems = []
    for name in ("config", "secret_config"):
        for key, value in p[name].items():
            if not CONFIG_KEY_RE.match(key):
                problems.append(f"{name} key {key!r} is not a config var name (letters, digits, _)")
            if not isinstance(value, str):
                shown = MASK if name == "secret_config" else repr(value)
                problems.append(
                    f"{name}[{key}] = {shown} is a {type(value).__name__}: config vars are "
                    'strings, quote it ("false", "2")'
                )
    problems += [
        f"absent key {k!r} is not a config var name"
        for k in p["absent"]
        if not CONFIG_KEY_RE.match(k)
    ]
    both = (set(p["config"]) | set(p["secret_config"])) & set(p["absent"])
    if both:
        problems.append(f"{sorted(both)} are both set and listed in absent: keep one")
    managed = set(p["config"]) | set(p["secret_config"]) | set(p["absent"])
    if p["secret_key_name"]:
        if not CONFIG_KEY_RE.match(p["secret_key_name"]):
            problems.append(f"secret_key_name {p['secret_key_name']!r} is not a config var name")
        if p["secret_key_name"] in managed:
            problems.append(
                f"{p['secret_key_name']} is generated here: do not also set or remove it"
            )
    if p["secret_key_length"] < 50:
        problems.append("secret_key_length must be at least 50 (Django warns below 50)")
    if problems:
        module.fail_json(msg="; ".join(problems))
    try:
        result = ensure_config_vars(client, p, module.check_mode)
    except HerokuError as exc:
        module.fail_json(msg=str(exc), api_writes=client.writes)
    if not module._diff:
        result.pop("diff")
    module.exit_json(api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
