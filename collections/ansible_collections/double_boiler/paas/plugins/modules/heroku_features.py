#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Turn a Heroku app's features (preboot, runtime-dyno-metadata, ...) on or off."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: heroku_features
short_description: Turn a Heroku app's features on or off
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads C(GET /apps/{app}/features) and sends C(PATCH /apps/{app}/features/{feature})
    with C(enabled) only for the features in O(features) whose state differs.
  - C(preboot) starts the new web dynos and moves traffic to them before the old ones
    stop, so a deploy does not drop requests; Heroku offers it on Standard and
    Performance dynos only, not Eco or Basic, and turning it on or off restarts nothing
    (U(https://devcenter.heroku.com/articles/preboot)).
  - C(runtime-dyno-metadata) gives the dynos C(HEROKU_RELEASE_VERSION), C(HEROKU_SLUG_COMMIT)
    and related variables (U(https://devcenter.heroku.com/articles/dyno-metadata)).
  - A feature the app does not offer is an error, before any change.
options:
  app:
    description: App name.
    type: str
    required: true
  features:
    description: Feature names mapped to whether they should be enabled.
    type: dict
    required: true
extends_documentation_fragment:
  - double_boiler.paas.heroku
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
    details: An app that does not exist yet counts as having every feature off.
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Deploy without dropping requests and tell the dynos their release
  double_boiler.paas.heroku_features:
    app: my-django-app
    features:
      preboot: true
      runtime-dyno-metadata: true
"""

RETURN = r"""
features:
  description: The features in O(features) and whether each is enabled after the run.
  type: dict
  returned: always
updated:
  description: Names of the features switched (or that would be).
  type: list
  returned: always
api_writes:
  description: Writing requests sent (method and path).
  type: list
  returned: always
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import (
    HerokuClient,
    HerokuError,
    NotFound,
    common_argument_spec,
    module_client,
)

FEATURE_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def ensure_features(client: HerokuClient, app: str, wanted: dict[str, bool], check: bool) -> dict:
    try:
        current = {
            f["name"]: bool(f.get("enabled"))
            for f in client.list(client.path("apps", app, "features"))
        }
    except NotFound:
        if not check:
            raise
        current = {name: False for name in wanted}
    unknown = sorted(set(wanted) - set(current))
    if unknown:
        raise HerokuError(
            f"app {app} offers no feature {', '.join(unknown)} (it offers: "
            f"{', '.join(sorted(current))}); fix heroku_app_features"
        )
    updated = sorted(name for name, on in wanted.items() if current[name] != on)
    if not check:
        for name in updated:
            client.patch(client.path("apps", app, "features", name), {"enabled": wanted[name]})
    return {
        "changed": bool(updated),
        "updated": updated,
        "features": dict(wanted),
        "diff": {
            "before": {name: current[name] for name in sorted(wanted)},
            "after": {name: wanted[name] for name in sorted(wanted)},
        },
    }


def main() -> None:
    spec = common_argument_spec()
    spec.update(features=dict(type="dict", required=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    client = module_client(module)
    problems = [
        f"{name!r} is not a feature name"
        for name in module.params["features"]
        if not FEATURE_RE.match(name)
    ]
    features = {}
    for name, value in module.params["features"].items():
        try:
            features[name] = boolean(value, strict=True)
        except TypeError:
            problems.append(f"features[{name}] must be true or false, not {value!r}")
    if problems:
        module.fail_json(msg="; ".join(problems))
    try:
        result = ensure_features(client, module.params["app"], features, module.check_mode)
    except HerokuError as exc:
        module.fail_json(msg=str(exc), api_writes=client.writes)
    if not module._diff:
        result.pop("diff")
    module.exit_json(api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
