#!/usr/bin/python
"""Create a secret in a file once; never read it back into Ansible."""

from __future__ import annotations

DOCUMENTATION = r"""
module: local_secret
short_description: Generate a random secret into a file once
author:
  - double-boiler contributors (@double-boiler)
description:
  - Writes a random URL-safe secret made with Python's C(secrets) module into O(path)
    with mode C(0600) when the file does not exist or is empty.
  - An existing secret is never rotated unless O(rotate=true).
  - The value is never returned, logged or shown in a diff.
options:
  path:
    description: File that holds the secret.
    type: path
    required: true
  length:
    description: Number of URL-safe characters (at least 50, as Django's C(check --deploy) asks).
    type: int
    default: 64
  rotate:
    description: Replace an existing secret.
    type: bool
    default: false
extends_documentation_fragment:
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    details: The secret is never shown, so there is no diff.
"""

EXAMPLES = r"""
- name: Generate the Django secret key once, readable by its owner only
  double_boiler.paas.local_secret:
    path: ~/.local/share/double-boiler/secret_key
    length: 64
"""

RETURN = r"""
path:
  description: The secret file.
  type: str
  returned: always
created:
  description: Whether a new secret was written.
  type: bool
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.common import generate_secret


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "length": {"type": "int", "default": 64},
            "rotate": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    if module.params["length"] < 50:
        module.fail_json(msg="length must be at least 50 characters for a Django secret key")
    exists = os.path.isfile(path) and os.path.getsize(path) > 0
    if exists and not module.params["rotate"]:
        mode = os.stat(path).st_mode & 0o777
        if mode & 0o077:
            module.fail_json(
                msg=f"{path} is readable by others (mode {mode:o}): run chmod 600 on it, "
                "or remove it to generate a new secret"
            )
        module.exit_json(changed=False, path=path, created=False)
    if module.check_mode:
        module.exit_json(changed=True, path=path, created=True)
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        module.fail_json(msg=f"the directory {directory} does not exist")
    value = generate_secret(module.params["length"])
    temporary = f"{path}.new"
    # Created 0600 from the start: the secret is never readable by others.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    os.replace(temporary, path)
    module.exit_json(changed=True, path=path, created=True)


if __name__ == "__main__":
    main()
