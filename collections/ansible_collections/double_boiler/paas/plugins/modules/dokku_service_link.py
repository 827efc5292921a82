#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Create a Dokku datastore service (postgres, redis) and link it to an app."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dokku_service_link
short_description: Ensure a Dokku postgres/redis service exists and is linked to an app
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads C(dokku <service>:exists) and C(dokku <service>:linked) first and runs
    C(<service>:create) and C(<service>:link) only for what is missing.
  - Linking sets the app's C(DATABASE_URL) (postgres) or C(REDIS_URL) (redis) config var with
    C(--no-restart). Without it the plugin's C(service_link) restarts a deployed app through
    C(config:set), whose C(triggerRestart) only warns when that restart fails and exits 0
    (dokku/dokku-postgres common-functions C(service_link); dokku/dokku
    plugins/config/config.go). Restart the app afterwards when RV(linked) is true (the
    dokku_deploy_archive module's C(restart) does, and fails when the restart fails).
  - Never unlinks nor destroys a service.
options:
  app:
    description: Name of an existing app.
    type: str
    required: true
  service:
    description: Datastore plugin providing the service.
    type: str
    required: true
    choices: [postgres, redis]
  name:
    description: Name of the service (letters, digits, underscores and hyphens).
    type: str
    required: true
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Database for the app
  double_boiler.paas.dokku_service_link:
    app: double-boiler
    service: postgres
    name: double-boiler-db
"""

RETURN = r"""
created:
  description: Whether the service was (or would be) created.
  type: bool
  returned: always
linked:
  description: Whether the link was (or would be) made by this run.
  type: bool
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.dokku_cli import (
    APP_NAME_RE,
    SERVICE_NAME_RE,
    DokkuCli,
    DokkuError,
    find_dokku,
    module_runner,
)


def service_exists(cli: DokkuCli, service: str, name: str) -> bool:
    # <service>:exists exits 0, or fails (1) with "<Service> service <name> does not exist".
    result = cli.run(f"{service}:exists", name, ok=(0, 1))
    if result.rc == 0:
        return True
    if "does not exist" in result.output:
        return False
    raise cli.error_for(result)


def service_linked(cli: DokkuCli, service: str, name: str, app: str) -> bool:
    # <service>:linked exits 0, or 1 with "Service <name> is not linked to <app>".
    result = cli.run(f"{service}:linked", name, app, ok=(0, 1))
    if result.rc == 0:
        return True
    if "not linked" in result.output:
        return False
    raise cli.error_for(result)


def ensure_link(cli: DokkuCli, service: str, name: str, app: str, check_mode: bool) -> dict:
    if not cli.plugin_installed(service):
        raise DokkuError(
            f"The Dokku '{service}' plugin is not installed: add it with the dokku_host role"
            " (dokku_host_plugins)"
        )
    app_exists = cli.app_exists(app)
    if not app_exists and not check_mode:
        raise DokkuError(f"App {app!r} does not exist: create it first (dokku_app module)")

    created = not service_exists(cli, service, name)
    if created and not check_mode:
        cli.run(f"{service}:create", name)

    # A new service (or, in check mode, a missing app) cannot be linked yet.
    linked_before = (not created and app_exists) and service_linked(cli, service, name, app)
    if not linked_before and not check_mode:
        cli.run(f"{service}:link", name, app, "--no-restart")

    changed = created or not linked_before
    result: dict = {"changed": changed, "created": created, "linked": not linked_before}
    if changed:
        result["diff"] = {
            "before": f"{service} {name}: {'absent' if created else 'present'}, "
            f"{'linked' if linked_before else 'not linked'} to {app}\n",
            "after": f"{service} {name}: present, linked to {app}\n",
        }
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app": {"type": "str", "required": True},
            "service": {"type": "str", "required": True, "choices": ["postgres", "redis"]},
            "name": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    app, service, name = (module.params[key] for key in ("app", "service", "name"))
    if not APP_NAME_RE.match(app):
        module.fail_json(msg=f"Invalid Dokku app name {app!r}")
    if not SERVICE_NAME_RE.match(name):
        module.fail_json(
            msg=f"Invalid {service} service name {name!r}: use only letters, digits,"
            " underscores and hyphens"
        )
    cli = DokkuCli(module_runner(module), find_dokku(module))
    try:
        result = ensure_link(cli, service, name, app, module.check_mode)
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
