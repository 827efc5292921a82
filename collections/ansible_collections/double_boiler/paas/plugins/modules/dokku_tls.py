#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dokku_tls
short_description: Put a Dokku app on plain HTTP, a given certificate, or Let's Encrypt
author:
  - double-boiler contributors (@double-boiler)
description:
  - O(mode=none) serves plain HTTP. A certificate the app still has is removed with
    C(certs:remove), since with one Dokku's nginx answers port 80 with a redirect to 443
    (dokku/dokku plugins/nginx-vhosts templates).
  - O(mode=certificate) installs the given certificate and key with
    C(dokku certs:add <app> <crt> <key>) when C(certs:show <app> crt|key) differ from the files
    (dokku/dokku plugins/certs/subcommands/add and show).
  - O(mode=letsencrypt) uses the dokku-letsencrypt plugin's documented commands, C(letsencrypt:set
    <app> email <email>) when C(letsencrypt:report <app> --letsencrypt-email) differs,
    C(letsencrypt:enable <app>) when C(letsencrypt:active <app>) is not C(true), and
    C(letsencrypt:cron-job --add) unless C(letsencrypt:report <app> --letsencrypt-autorenew)
    says C(true), for renewals (dokku/dokku-letsencrypt README.md,
    command-functions). The app must be deployed and its domains must resolve to the host.
  - Returns RV(https), which the app is told through its config (C(DJANGO_HTTPS_ONLY)).
options:
  app:
    description: Name of an existing app.
    type: str
    required: true
  mode:
    description: How the app is served.
    type: str
    choices: [none, certificate, letsencrypt]
    required: true
  certificate:
    description: Path on the Dokku host of the PEM certificate (chain) for O(mode=certificate).
    type: path
  key:
    description: Path on the Dokku host of its PEM private key for O(mode=certificate).
    type: path
  email:
    description: Let's Encrypt account e-mail for O(mode=letsencrypt).
    type: str
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Serve the app with our certificate
  double_boiler.paas.dokku_tls:
    app: double-boiler
    mode: certificate
    certificate: /var/lib/double-boiler/dokku/double-boiler/server.crt
    key: /var/lib/double-boiler/dokku/double-boiler/server.key
"""

RETURN = r"""
https:
  description: Whether the app is served over HTTPS once this task is done.
  type: bool
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.dokku_cli import (
    APP_NAME_RE,
    DokkuCli,
    DokkuError,
    find_dokku,
    module_runner,
)


def ssl_enabled(cli: DokkuCli, app: str) -> bool:
    return cli.run("certs:report", app, "--ssl-enabled").stdout.strip() == "true"


def shown(cli: DokkuCli, app: str, kind: str) -> str:
    # certs:show fails when the app has no certificate; the key never leaves this function.
    result = cli.run("certs:show", app, kind, ok=range(256), shown_args=["certs:show", app, kind])
    return result.stdout.strip() if result.rc == 0 else ""


def with_diff(result: dict, before: str, after: str) -> dict:
    if result["changed"]:
        result["diff"] = {"before": f"tls: {before}\n", "after": f"tls: {after}\n"}
    return result


def ensure_tls(
    cli: DokkuCli,
    app: str,
    mode: str,
    read_file,  # type: ignore[no-untyped-def]
    certificate: str | None = None,
    key: str | None = None,
    email: str | None = None,
    check_mode: bool = False,
) -> dict:
    if not cli.app_exists(app):
        if not check_mode:
            raise DokkuError(f"App {app!r} does not exist: create it first (dokku_app module)")
        return {"changed": True, "https": mode != "none"}
    if mode == "none":
        changed = ssl_enabled(cli, app)
        if changed and not check_mode:
            cli.run("certs:remove", app)
        return with_diff({"changed": changed, "https": False}, "certificate", "none")
    if mode == "certificate":
        if not certificate or not key:
            raise DokkuError("mode=certificate needs certificate and key (paths on the host)")
        try:
            wanted_crt, wanted_key = read_file(certificate).strip(), read_file(key).strip()
        except DokkuError:
            if not check_mode:
                raise
            # In check mode the files may not have been copied to the host yet.
            return with_diff({"changed": True, "https": True}, "unknown", certificate)
        cli.hide(wanted_key)
        changed = shown(cli, app, "crt") != wanted_crt or shown(cli, app, "key") != wanted_key
        if changed and not check_mode:
            cli.run("certs:add", app, certificate, key)
        return with_diff({"changed": changed, "https": True}, "another certificate", certificate)
    if not email:
        raise DokkuError("mode=letsencrypt needs the e-mail Let's Encrypt writes to")
    if not cli.plugin_installed("letsencrypt"):
        raise DokkuError(
            "The dokku-letsencrypt plugin is not installed: the dokku_host role installs it"
            " when dokku_host_letsencrypt is true"
        )
    current = cli.run("letsencrypt:report", app, "--letsencrypt-email").stdout.strip()
    active = cli.run("letsencrypt:active", app, ok=range(256)).stdout.strip() == "true"
    # The renewal cron job is global (internal-functions fn-letsencrypt-is-autorenew-enabled).
    renews = cli.run("letsencrypt:report", app, "--letsencrypt-autorenew").stdout.strip()
    changed = current != email or not active or renews != "true"
    if not check_mode:
        if current != email:
            cli.run("letsencrypt:set", app, "email", email)
        if not active:
            cli.run("letsencrypt:enable", app)
        if renews != "true":
            cli.run("letsencrypt:cron-job", "--add")
    before = f"letsencrypt {'active' if active else 'inactive'}, e-mail {current or '(none)'}"
    return with_diff(
        {"changed": changed, "https": True}, before, f"letsencrypt active, e-mail {email}"
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app": {"type": "str", "required": True},
            "mode": {
                "type": "str",
                "required": True,
                "choices": ["none", "certificate", "letsencrypt"],
            },
            "certificate": {"type": "path"},
            "key": {"type": "path", "no_log": False},
            "email": {"type": "str"},
        },
        required_if=[
            ("mode", "certificate", ("certificate", "key")),
            ("mode", "letsencrypt", ("email",)),
        ],
        supports_check_mode=True,
    )
    params = module.params
    if not APP_NAME_RE.match(params["app"]):
        module.fail_json(msg=f"Invalid Dokku app name {params['app']!r}")

    def read_file(path: str) -> str:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except OSError as exc:
            raise DokkuError(f"Cannot read {path} on the Dokku host: {exc.strerror}") from exc

    cli = DokkuCli(module_runner(module), find_dokku(module))
    try:
        result = ensure_tls(
            cli,
            params["app"],
            params["mode"],
            read_file,
            certificate=params["certificate"],
            key=params["key"],
            email=params["email"],
            check_mode=module.check_mode,
        )
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
