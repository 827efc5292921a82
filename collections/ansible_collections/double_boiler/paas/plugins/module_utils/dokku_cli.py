# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Run the ``dokku`` CLI, parse what it prints and turn its exit codes into clear errors.

Shared by the modules of the ``dokku_app`` and ``dokku_host`` roles . Everything here talks to
Dokku only through its documented command line, so a test can swap the runner for a fake.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ansible_collections.double_boiler.paas.plugins.module_utils.common import mask_values

# Dokku exits 20 when a command names an app that does not exist
# (common.AppDoesNotExist in plugins/common/common.go); `apps:exists` uses it too.
EXIT_APP_MISSING = 20
# DOKKU_NOT_IMPLEMENTED_EXIT: no plugin implements the command.
EXIT_NOT_IMPLEMENTED = 10

# Dokku's own rule (common.IsValidAppName).
APP_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
# Names the datastore plugins accept for a service (is_valid_service_name in dokku-postgres).
SERVICE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# Config keys Dokku accepts (config plugin validateKey).
CONFIG_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

NO_CHANGES_MARKER = "No changes detected"

# (argv, stdin bytes or None) -> (exit code, stdout, stderr)
Runner = Callable[[list[str], "bytes | None"], tuple[int, str, str]]


@dataclass(frozen=True)
class Result:
    """One finished ``dokku`` invocation."""

    args: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """Stdout and stderr together (Dokku splits its messages between both)."""
        return "\n".join(part for part in (self.stdout.strip(), self.stderr.strip()) if part)


class DokkuError(Exception):
    """A ``dokku`` command failed; ``details`` is safe to show (secrets already masked)."""

    def __init__(self, msg: str, details: Mapping[str, object] | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = dict(details or {})


class DokkuCli:
    """Thin, testable wrapper around the ``dokku`` executable."""

    def __init__(self, runner: Runner, binary: str = "dokku") -> None:
        self._runner = runner
        self.binary = binary
        self._hidden: set[str] = set()

    # -- secrets -----------------------------------------------------------------------

    def hide(self, *values: str | None) -> None:
        """Never let these values out of this object (errors, details)."""
        for value in values:
            if value and len(value) >= 4:
                self._hidden.add(value)

    def scrub(self, text: str) -> str:
        return mask_values(text, self._hidden)

    # -- running -----------------------------------------------------------------------

    def run(
        self,
        *args: str,
        stdin: bytes | None = None,
        ok: Iterable[int] = (0,),
        shown_args: Iterable[str] | None = None,
    ) -> Result:
        """Run ``dokku <args>``; raise DokkuError unless the exit code is in ``ok``.

        ``shown_args`` replaces ``args`` in error messages when the real arguments
        carry values that must not be shown.
        """
        rc, out, err = self._runner([self.binary, *args], stdin)
        result = Result(tuple(args), rc, out or "", err or "")
        if rc not in tuple(ok):
            raise self.error_for(result, shown_args=shown_args)
        return result

    def details(self, result: Result, shown_args: Iterable[str] | None = None) -> dict:
        shown = list(shown_args) if shown_args is not None else list(result.args)
        return {
            "cmd": self.scrub(" ".join(["dokku", *shown])),
            "rc": result.rc,
            "stdout": self.scrub(result.stdout),
            "stderr": self.scrub(result.stderr),
        }

    def error_for(self, result: Result, shown_args: Iterable[str] | None = None) -> DokkuError:
        details = self.details(result, shown_args)
        command = result.args[0] if result.args else ""
        text = self.scrub(result.output)
        if result.rc == EXIT_APP_MISSING:
            msg = f"Dokku says the app does not exist ({details['cmd']}): {last_line(text)}"
        elif result.rc == EXIT_NOT_IMPLEMENTED or "is not a dokku command" in text:
            msg = (
                f"This Dokku has no '{command}' command: the plugin that provides it is not"
                " installed, or Dokku is older than this role needs"
            )
        elif "must be run as root" in text:
            msg = f"'dokku {command}' must run as root: run the role with become: true"
        else:
            msg = f"'{details['cmd']}' failed with exit code {result.rc}: {last_line(text)}"
        return DokkuError(msg, details)

    # -- reads shared by several modules -----------------------------------------------

    def version(self) -> str:
        """The installed Dokku version, e.g. ``0.37.4``."""
        result = self.run("version")
        return parse_version(result.stdout)

    def app_exists(self, app: str) -> bool:
        result = self.run("apps:exists", app, ok=(0, 1, EXIT_APP_MISSING))
        # Older Dokku exits 1 with "App <app> does not exist"; anything else is an error.
        if result.rc == 1 and "does not exist" not in result.output:
            raise self.error_for(result)
        return result.rc == 0

    def config(self, app: str) -> dict[str, str]:
        result = self.run("config:export", "--format", "json", app)
        return parse_config_json(result.stdout)

    def is_deployed(self, app: str) -> bool:
        result = self.run("ps:report", app, "--deployed")
        return result.stdout.strip().lower() == "true"

    def plugin_installed(self, name: str) -> bool:
        # plugin:installed exits 0 when installed and 1 when not.
        return self.run("plugin:installed", name, ok=(0, 1)).rc == 0


# -- parsers (pure functions, unit-tested against documented outputs) ----------------------


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def parse_version(text: str) -> str:
    """``dokku version 0.37.4`` (or ``v0.37.4``) -> ``0.37.4``."""
    match = re.search(r"(\d+\.\d+\.\d+)", text)
    if not match:
        raise DokkuError(f"Cannot read a version from 'dokku version': {last_line(text)}")
    return match.group(1)


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def parse_config_json(text: str) -> dict[str, str]:
    """Parse ``config:export --format json`` (an object of strings)."""
    text = text.strip()
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DokkuError(f"'config:export --format json' did not print JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DokkuError("'config:export --format json' did not print a JSON object")
    return {str(key): "" if value is None else str(value) for key, value in data.items()}


_SCALE_LINE = re.compile(r"^\s*([A-Za-z0-9_-]+):\s+(\d+)\s*$")


def parse_scale(text: str) -> dict[str, int]:
    """Parse ``ps:scale <app>``: lines ``web:  1`` under an optional ``proctype: qty`` header.

    Also accepts the ``--format json`` list ``[{"process_type": "web", "quantity": 1}]``.
    """
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            entries = json.loads(stripped)
            return {str(e["process_type"]): int(e["quantity"]) for e in entries}
        except (ValueError, KeyError, TypeError) as exc:
            raise DokkuError(f"Cannot read 'ps:scale --format json' output: {exc}") from exc
    scale: dict[str, int] = {}
    for line in text.splitlines():
        match = _SCALE_LINE.match(line)
        if match:
            scale[match.group(1)] = int(match.group(2))
    return scale


def parse_words(text: str) -> list[str]:
    """A ``*:report <app> --<flag>`` value that is a space-separated list."""
    return text.split()


_SSH_KEY_LINE = re.compile(r'^(?P<fingerprint>\S+)\s+NAME="(?P<name>.*?)"(?:\s|$)')


def parse_ssh_keys(text: str) -> dict[str, str]:
    """``ssh-keys:list`` (text format) -> {name: fingerprint}."""
    keys: dict[str, str] = {}
    for line in text.splitlines():
        match = _SSH_KEY_LINE.match(line.strip())
        if match:
            keys[match.group("name")] = match.group("fingerprint")
    return keys


def ssh_fingerprint(public_key: str) -> str:
    """OpenSSH SHA256 fingerprint of a public key line (what ssh-keygen -lf prints)."""
    fields = public_key.strip().split()
    key_type = blob = None
    # The base64 blob follows the key type; options may precede it in authorized_keys lines.
    for index, value in enumerate(fields[:-1]):
        if value.startswith(("ssh-", "ecdsa-", "sk-")):
            key_type, blob = value, fields[index + 1]
            break
    if key_type is None or blob is None:
        raise ValueError("not an OpenSSH public key line (expected '<type> <base64> [comment]')")
    try:
        raw = base64.b64decode(blob, validate=True)
    except ValueError as exc:
        raise ValueError(f"the key's base64 part does not decode: {exc}") from exc
    # The blob starts with its own type name (a length-prefixed string): it must match.
    length = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else -1
    if raw[4 : 4 + length].decode("ascii", "replace") != key_type:
        raise ValueError(f"the key's base64 part is not a {key_type} key")
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def module_runner(module) -> Runner:  # type: ignore[no-untyped-def]
    """Runner backed by AnsibleModule.run_command (argv list, never a shell)."""

    def run(argv: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        rc, out, err = module.run_command(argv, data=stdin, binary_data=True, check_rc=False)
        return rc, out, err

    return run


def find_dokku(module) -> str:  # type: ignore[no-untyped-def]
    """Path of the dokku executable; end the module clearly when it is missing.

    In check mode a missing Dokku is what a first run against a fresh host looks like
    (dokku_host only pretended to install it): report the change instead of failing.
    """
    path = module.get_bin_path("dokku", required=False, opt_dirs=["/usr/bin", "/usr/local/bin"])
    if path is None:
        if module.check_mode:
            module.exit_json(changed=True, msg="Dokku is not installed yet: this would be done")
        module.fail_json(
            msg="Dokku is not installed on this host (no 'dokku' executable in PATH):"
            " run the dokku_host role first"
        )
    return path
