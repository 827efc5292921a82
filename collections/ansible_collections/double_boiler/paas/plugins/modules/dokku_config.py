#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Set a Dokku app's config vars: read them first, change only what differs, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dokku_config
short_description: Ensure config vars of a Dokku app, without restarting it
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads the app's config with C(dokku config:export --format json), compares, and writes
    only the keys whose value differs, in B(one) call with C(--no-restart), because every
    config write restarts a deployed app otherwise, even when the value is identical.
    Restarting (or deploying) afterwards is the caller's job; see RV(differing_keys).
  - Keys listed in O(generate) get a random value (Python C(secrets), 64 URL-safe
    characters) made on the Dokku host, only when the app does not have one yet, or when
    they are listed in O(rotate). Such values never leave the host through this module.
  - How values reach Dokku is chosen by O(method). C(import) pipes them as JSON into
    C(config:import --no-restart --format json <app> -) (Dokku 0.37.0 and later), so no
    value ever appears in a process's arguments. C(set) passes them base64-encoded to
    C(config:set --no-restart --encoded), where they are visible in the process list of
    the host for as long as the command runs. C(auto) picks C(import) when the installed
    Dokku has it.
  - Values of O(secrets), of generated keys and of O(sensitive_keys) are masked in the
    diff and in every message, including Dokku's output on failure.
  - Never unsets a key.
options:
  app:
    description: Name of the app.
    type: str
    required: true
  config:
    description:
      - Config vars that are not secret, KEY to value. Booleans become C(true)/C(false),
        numbers their decimal text.
    type: dict
    default: {}
  secrets:
    description: Secret config vars, KEY to value; never shown.
    type: dict
    default: {}
  generate:
    description: Keys whose value is generated on the host when the app has none.
    type: list
    elements: str
    default: []
  rotate:
    description: Keys of O(generate) to regenerate now even though the app has a value.
    type: list
    elements: str
    default: []
  sensitive_keys:
    description: Further keys whose values are masked (they are read, never written).
    type: list
    elements: str
    default: [DATABASE_URL, REDIS_URL, CELERY_BROKER_URL]
  method:
    description: How values reach Dokku (see above).
    type: str
    choices: [auto, import, set]
    default: auto
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Config vars
  double_boiler.paas.dokku_config:
    app: double-boiler
    config:
      DOUBLE_BOILER_MODE: one-dyno
      DJANGO_HTTPS_ONLY: false
    generate: [DJANGO_SECRET_KEY]
  no_log: true
  register: config_result
"""

RETURN = r"""
differing_keys:
  description: Keys written (or that would be written in check mode), sorted.
  type: list
  elements: str
  returned: always
generated:
  description: Keys given a newly generated value (or that would be).
  type: list
  elements: str
  returned: always
method:
  description: The method used (C(import) or C(set)); null when nothing was written.
  type: str
  returned: always
"""

import base64
import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.common import MASK, generate_secret
from ansible_collections.double_boiler.paas.plugins.module_utils.dokku_cli import (
    APP_NAME_RE,
    CONFIG_KEY_RE,
    DokkuCli,
    DokkuError,
    find_dokku,
    module_runner,
    version_tuple,
)

# config:import appeared in Dokku 0.37.0.
IMPORT_MIN_VERSION = (0, 37, 0)


def generate_value() -> str:
    return generate_secret(64)


def normalise(values: dict, what: str) -> dict[str, str]:
    """Validate keys and turn scalar values into the strings Dokku stores."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if not CONFIG_KEY_RE.match(str(key)):
            raise ValueError(
                f"Invalid config var name {key!r} in {what}: use letters, digits and"
                " underscores, not starting with a digit"
            )
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            out[key] = str(value)
        else:
            kind = "no value" if value is None else f"a {type(value).__name__}"
            raise ValueError(f"Config var {key} in {what} has {kind}: give it a string")
    return out


def choose_method(cli: DokkuCli, method: str) -> str:
    if method != "auto":
        return method
    return "import" if version_tuple(cli.version()) >= IMPORT_MIN_VERSION else "set"


def write(cli: DokkuCli, app: str, changes: dict[str, str], method: str) -> None:
    if method == "import":
        cli.run(
            "config:import",
            "--no-restart",
            "--format",
            "json",
            app,
            "-",
            stdin=json.dumps(changes, sort_keys=True).encode(),
        )
        return
    pairs = [f"{k}={base64.b64encode(v.encode()).decode()}" for k, v in sorted(changes.items())]
    shown = [f"{k}={MASK}" for k in sorted(changes)]
    cli.run(
        "config:set",
        "--no-restart",
        "--encoded",
        app,
        *pairs,
        shown_args=["config:set", "--no-restart", "--encoded", app, *shown],
    )


def ensure_config(
    cli: DokkuCli,
    app: str,
    config: dict,
    secrets: dict,
    generate: list[str],
    rotate: list[str],
    sensitive_keys: list[str],
    method: str,
    check_mode: bool,
    on_secret=None,  # type: ignore[no-untyped-def]
) -> dict:
    """Compute and (unless check_mode) apply the change; ``on_secret`` sees every new secret."""
    config = normalise(config, "config")
    secrets = normalise(secrets, "secrets")
    overlap = sorted(set(config) & set(secrets))
    if overlap:
        raise ValueError(f"Config var(s) {', '.join(overlap)} given both as config and secret")
    stray = sorted(set(rotate) - set(generate))
    if stray:
        raise ValueError(f"rotate names key(s) not in generate: {', '.join(stray)}")
    for key in generate:
        if not CONFIG_KEY_RE.match(key):
            raise ValueError(f"Invalid config var name {key!r} in generate")

    if cli.app_exists(app):
        existing = cli.config(app)
    elif check_mode:
        existing = {}
    else:
        raise DokkuError(f"App {app!r} does not exist: create it first (dokku_app module)")

    masked = set(secrets) | set(generate) | set(sensitive_keys)
    cli.hide(*(existing.get(key) for key in masked))
    cli.hide(*secrets.values())

    desired = {**config, **secrets}
    generated: list[str] = []
    for key in generate:
        if key in desired:
            continue  # the caller supplied it
        if key in rotate or not existing.get(key):
            generated.append(key)
            desired[key] = "" if check_mode else generate_value()
            cli.hide(desired[key])
            if on_secret is not None and desired[key]:
                on_secret(desired[key])

    changes = {
        key: value
        for key, value in desired.items()
        if key in generated or existing.get(key) != value
    }
    result: dict = {
        "changed": bool(changes),
        "differing_keys": sorted(changes),
        "generated": sorted(generated),
        "method": None,
    }
    if not changes:
        return result

    def show(key: str, value: str | None, new: bool) -> str:
        if value is None:
            return ""
        if key in masked:
            return f"{key}={MASK} ({'new value' if new else 'current value'})\n"
        return f"{key}={value}\n"

    result["diff"] = {
        "before": "".join(show(k, existing.get(k), False) for k in sorted(changes)),
        "after": "".join(show(k, changes[k], True) for k in sorted(changes)),
    }
    if not check_mode:
        result["method"] = choose_method(cli, method)
        write(cli, app, changes, result["method"])
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app": {"type": "str", "required": True},
            "config": {"type": "dict", "default": {}},
            "secrets": {"type": "dict", "default": {}, "no_log": True},
            "generate": {"type": "list", "elements": "str", "default": [], "no_log": False},
            "rotate": {"type": "list", "elements": "str", "default": [], "no_log": False},
            "sensitive_keys": {
                "type": "list",
                "elements": "str",
                "default": ["DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"],
                "no_log": False,
            },
            "method": {"type": "str", "choices": ["auto", "import", "set"], "default": "auto"},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not APP_NAME_RE.match(params["app"]):
        module.fail_json(msg=f"Invalid Dokku app name {params['app']!r}")
    cli = DokkuCli(module_runner(module), find_dokku(module))
    try:
        result = ensure_config(
            cli,
            params["app"],
            params["config"],
            params["secrets"],
            params["generate"],
            params["rotate"],
            params["sensitive_keys"],
            params["method"],
            module.check_mode,
            on_secret=module.no_log_values.add,
        )
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
