"""config:* commands, after Dokku's config plugin (plugins/config)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys

from . import out
from .core import Context, go_json
from .flags import FlagSet
from .state import dump_env, parse_env

KEY_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _columnize(prefix: str, env: dict[str, str]) -> str:
    """prettyPrintEnvEntries: `KEY:  value` with values aligned (ryanuber/columnize)."""
    if not env:
        return ""
    width = max(len(k) + 1 for k in env)
    return "\n".join(f"{prefix}{(k + ':').ljust(width)}  {env[k]}".rstrip() for k in sorted(env))


def _single_quote(value: str) -> str:
    return value.replace("'", "'\\''")


def export_text(env: dict[str, str], fmt: str) -> str:
    if fmt == "json":
        return go_json(env) + "\n"
    if fmt == "json-list":
        # A nil Go slice marshals as null.
        items = [{"name": k, "value": env[k]} for k in sorted(env)]
        return (go_json(items) if items else "null") + "\n"
    if fmt == "exports":
        return "\n".join(f"export {k}='{_single_quote(env[k])}'" for k in sorted(env)) + "\n"
    if fmt == "shell":
        return " ".join(f"{k}='{_single_quote(env[k])}'" for k in sorted(env)) + " "
    if fmt == "envfile":
        return dump_env(env) or "\n"
    if fmt == "docker-args":
        return " ".join(f"--env={k}='{_single_quote(env[k])}'" for k in sorted(env)) + "\n"
    if fmt == "docker-args-keys":
        return " ".join(f"--env={k}" for k in sorted(env)) + "\n"
    if fmt == "pack-keys":
        return " ".join(f"--env {k}" for k in sorted(env)) + "\n"
    if fmt == "pretty":
        return _columnize("", env) + "\n"
    raise out.fail(f"Unknown export format: {fmt}")


def _target(ctx: Context, positional: list[str], is_global: bool) -> tuple[str | None, list[str]]:
    """(app or None for global, remaining args) with getAppNameOrGlobal's checks."""
    if is_global:
        return None, positional
    app = positional[0] if positional else ""
    ctx.verify_app(app)
    return app, positional[1:]


def _validate_key(key: str) -> None:
    if not KEY_RE.match(key):
        raise out.fail(f"Invalid key name: '{key}'")


def set_many(
    ctx: Context, app: str | None, entries: dict[str, str], *, restart: bool, replace: bool = False
) -> None:
    """config.SetMany."""
    for key in entries:
        _validate_key(key)
    env = {} if replace else ctx.load_env(app)
    env.update(entries)
    if entries:
        out.info1_quiet("Setting config vars")
        if not out.quiet():
            out.log(_columnize("       ", entries))
        ctx.save_env(app, env)
    if app and restart and ctx.props.get("ps", app, "restore", "true") != "false":
        trigger_restart(ctx, app)


def trigger_restart(ctx: Context, app: str) -> None:
    """release-and-deploy with the running image ("config-redeploy")."""
    if not ctx.is_deployed(app):
        return
    out.info1(f"Restarting app {app}")
    from .deploy import release_and_deploy

    build_no = ctx.props.get("standin", app, "build")
    if not build_no:
        return
    if release_and_deploy(ctx, app, int(build_no)) != 0:
        out.warn("Failure while restarting app: exit status 1")


def cmd_set(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "config:set",
        bools={
            "global": "--global: use the global environment",
            "encoded": "--encoded: interpret VALUEs as base64",
            "no-restart": "--no-restart: no restart",
        },
    ).parse(argv)
    app, pairs = _target(ctx, positional, bool(flags["global"]))
    if not pairs:
        raise out.fail("At least one env pair must be given")
    updated: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise out.fail(f"Invalid env pair: {pair}")
        if flags["encoded"]:
            try:
                value = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise out.fail(f"illegal base64 data at input byte 0 for key '{key}'") from exc
        updated[key] = value
    if app:
        with ctx.app_lock(app):
            set_many(ctx, app, updated, restart=not flags["no-restart"])
    else:
        set_many(ctx, None, updated, restart=False)


def cmd_unset(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "config:unset",
        bools={
            "global": "--global: use the global environment",
            "no-restart": "--no-restart: no restart",
        },
    ).parse(argv)
    app, keys = _target(ctx, positional, bool(flags["global"]))
    if not keys:
        raise out.fail("At least one key must be given")
    for key in keys:
        _validate_key(key)
    env = ctx.load_env(app)
    changed = False
    for key in keys:
        if key in env:
            out.info1_quiet(f"Unsetting {key}")
            del env[key]
            changed = True
        else:
            out.info1_quiet(f"Skipping {key}, it is not set in the environment")
    if changed:
        ctx.save_env(app, env)
    if app and not flags["no-restart"] and ctx.props.get("ps", app, "restore", "true") != "false":
        with ctx.app_lock(app):
            trigger_restart(ctx, app)


def cmd_clear(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "config:clear",
        bools={
            "global": "--global: use the global environment",
            "no-restart": "--no-restart: no restart",
        },
    ).parse(argv)
    app, _ = _target(ctx, positional, bool(flags["global"]))
    env = ctx.load_env(app)
    for key in env:
        out.info1_quiet(f"Unsetting {key}")
    if env:
        ctx.save_env(app, {})
    if app and not flags["no-restart"]:
        trigger_restart(ctx, app)


def cmd_get(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "config:get",
        bools={
            "global": "--global: use the global environment",
            "quoted": "--quoted: get the value quoted",
        },
    ).parse(argv)
    app, keys = _target(ctx, positional, bool(flags["global"]))
    if not keys:
        raise out.fail("Expected: key")
    if len(keys) != 1:
        raise out.fail(f"Unexpected argument(s): [{' '.join(keys[1:])}]")
    env = ctx.load_env(app)
    if not KEY_RE.match(keys[0]) or keys[0] not in env:
        raise out.DokkuExit(1)
    value = env[keys[0]]
    out.log(f"'{_single_quote(value)}'" if flags["quoted"] else value)


def cmd_export(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "config:export",
        bools={
            "global": "--global: use the global environment",
            "merged": "--merged: merge app environment and global environment",
        },
        strings={"format": ("exports", "--format: which format to export as")},
    ).parse(argv)
    app, _ = _target(ctx, positional, bool(flags["global"]))
    env = ctx.merged_env(app) if app and flags["merged"] else ctx.load_env(app)
    sys.stdout.write(export_text(env, str(flags["format"])))
    sys.stdout.flush()


def cmd_keys(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "config:keys",
        bools={
            "global": "--global: use the global environment",
            "merged": "--merged: merge app environment and global environment",
        },
    ).parse(argv)
    app, _ = _target(ctx, positional, bool(flags["global"]))
    env = ctx.merged_env(app) if app and flags["merged"] else ctx.load_env(app)
    for key in sorted(env):
        out.log(key)


def cmd_show(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "config:show",
        bools={
            "global": "--global: use the global environment",
            "merged": "--merged: display the app's environment merged with the global",
        },
    ).parse(argv)
    app, _ = _target(ctx, positional, bool(flags["global"]))
    env = ctx.merged_env(app) if app and flags["merged"] else ctx.load_env(app)
    out.info2_quiet(f"{app or 'global'} env vars")
    out.log(_columnize("", env))


def cmd_import(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "config:import",
        bools={
            "global": "--global: use the global environment",
            "no-restart": "--no-restart: no restart",
            "replace": "--replace: replace existing config vars",
        },
        strings={"format": ("envfile", "--format: [ envfile | json ] which format to export as)")},
    ).parse(argv)
    app, rest = _target(ctx, positional, bool(flags["global"]))
    filename = rest[0] if rest else ""
    fmt = str(flags["format"]) or "envfile"
    if filename == "-":
        out.info1_quiet("Reading config vars from stdin")
    if fmt == "envfile":
        if filename == "-":
            text = sys.stdin.read()
        else:
            try:
                with open(filename, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                text = ""
        entries = parse_env(text)
        entries = {k: v for k, v in entries.items() if KEY_RE.match(k)}
    elif fmt == "json":
        try:
            if filename == "-":
                data = json.load(sys.stdin)
            else:
                with open(filename, encoding="utf-8") as handle:
                    data = json.load(handle)
        except FileNotFoundError:
            raise out.fail(f"open {filename}: no such file or directory") from None
        except ValueError as exc:
            raise out.fail(str(exc)) from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise out.fail("json: cannot unmarshal into Go value of type map[string]string")
        entries = data
    else:
        raise out.fail(f"Unknown format: {fmt}")
    if not entries:
        raise out.fail("No config vars to set")
    for key, value in entries.items():
        out.info1_quiet(f"Setting config var {key}={value}")
    if app:
        with ctx.app_lock(app):
            set_many(
                ctx, app, entries, restart=not flags["no-restart"], replace=bool(flags["replace"])
            )
    else:
        set_many(ctx, None, entries, restart=False, replace=bool(flags["replace"]))
