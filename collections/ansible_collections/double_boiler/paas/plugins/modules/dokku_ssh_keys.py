#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Give deploy users SSH access to Dokku: add only the keys that are missing."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dokku_ssh_keys
short_description: Ensure named SSH public keys may push to Dokku
author:
  - double-boiler contributors (@double-boiler)
description:
  - Reads C(dokku ssh-keys:list) and compares fingerprints (SHA256, computed here from each
    public key). Runs C(dokku ssh-keys:add <name>) with the key on standard input only for
    keys that are missing; a name registered with a different key is replaced
    (C(ssh-keys:remove <name>), then C(ssh-keys:add)).
  - Keys registered on the host that are not listed are left alone.
options:
  keys:
    description: Keys to register.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Dokku's name for the key (the deploy user).
        type: str
        required: true
      key:
        description: One OpenSSH public key line (C(<type> <base64> [comment])).
        type: str
        required: true
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - Must run as root.
"""

EXAMPLES = r"""
- name: Deploy users
  double_boiler.paas.dokku_ssh_keys:
    keys:
      - name: alice
        key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... alice@laptop
"""

RETURN = r"""
added:
  description: Names whose key was (or would be) added or replaced.
  type: list
  elements: str
  returned: always
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.dokku_cli import (
    DokkuCli,
    DokkuError,
    find_dokku,
    module_runner,
    parse_ssh_keys,
    ssh_fingerprint,
)

KEY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


def registered_keys(cli: DokkuCli) -> dict[str, str]:
    result = cli.run("ssh-keys:list", ok=(0, 1))
    if result.rc == 0:
        return parse_ssh_keys(result.stdout)
    # sshcommand exits 1 when authorized_keys is missing or empty: no keys yet.
    if "authorized_keys" in result.output or "No public keys" in result.output:
        return {}
    raise cli.error_for(result)


def ensure_keys(cli: DokkuCli, keys: list[dict], check_mode: bool) -> dict:
    wanted: dict[str, tuple[str, str]] = {}
    for entry in keys:
        name, key = entry["name"], entry["key"].strip()
        if not KEY_NAME_RE.match(name):
            raise ValueError(f"Invalid SSH key name {name!r}")
        if name in wanted:
            raise ValueError(f"SSH key name {name!r} is listed twice")
        if "\n" in key:
            raise ValueError(f"The key for {name} must be a single line")
        try:
            wanted[name] = (ssh_fingerprint(key), key)
        except ValueError as exc:
            raise ValueError(f"The key for {name} is not usable: {exc}") from exc

    current = registered_keys(cli)
    owners = {fingerprint: name for name, fingerprint in current.items()}
    added: list[str] = []
    for name, (fingerprint, key) in wanted.items():
        if current.get(name) == fingerprint:
            continue
        owner = owners.get(fingerprint)
        if owner is not None and owner != name:
            raise DokkuError(
                f"The key given for {name} is already registered as {owner!r}: remove it with"
                f" 'dokku ssh-keys:remove {owner}' or use that name"
            )
        if not check_mode:
            if name in current:
                cli.run("ssh-keys:remove", name)
            cli.run("ssh-keys:add", name, stdin=(key + "\n").encode())
        added.append(name)

    result: dict = {"changed": bool(added), "added": added}
    if added:
        result["diff"] = {
            "before": "".join(f"{n} {current[n]}\n" for n in added if n in current),
            "after": "".join(f"{n} {wanted[n][0]}\n" for n in added),
        }
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "keys": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "no_log": False,
                "options": {
                    "name": {"type": "str", "required": True},
                    "key": {"type": "str", "required": True, "no_log": False},
                },
            },
        },
        supports_check_mode=True,
    )
    cli = DokkuCli(module_runner(module), find_dokku(module))
    try:
        result = ensure_keys(cli, module.params["keys"], module.check_mode)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    except DokkuError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
