"""Entry point: Dokku's top-level argument handling (the `dokku` script) and dispatch."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from . import (
    STANDIN_NOTICE,
    appscmd,
    buildpackscmd,
    configcmd,
    gitcmd,
    misc,
    out,
    proxycmd,
    pscmd,
    services,
)
from .core import Context

Handler = Callable[[Context, list[str]], None]

COMMANDS: dict[str, Handler] = {
    "apps:create": appscmd.cmd_create,
    "apps:destroy": appscmd.cmd_destroy,
    "apps:exists": appscmd.cmd_exists,
    "apps:list": appscmd.cmd_list,
    "buildpacks:add": buildpackscmd.cmd_add,
    "buildpacks:clear": buildpackscmd.cmd_clear,
    "buildpacks:list": buildpackscmd.cmd_list,
    "buildpacks:remove": buildpackscmd.cmd_remove,
    "buildpacks:report": buildpackscmd.cmd_report,
    "buildpacks:set": buildpackscmd.cmd_set,
    "certs:add": proxycmd.cmd_certs_add,
    "certs:remove": proxycmd.cmd_certs_remove,
    "certs:report": proxycmd.cmd_certs_report,
    "certs:show": proxycmd.cmd_certs_show,
    "certs:update": proxycmd.cmd_certs_add,
    "checks:report": proxycmd.cmd_checks_report,
    "checks:set": proxycmd.cmd_checks_set,
    "config": configcmd.cmd_show,
    "config:show": configcmd.cmd_show,
    "config:clear": configcmd.cmd_clear,
    "config:export": configcmd.cmd_export,
    "config:get": configcmd.cmd_get,
    "config:import": configcmd.cmd_import,
    "config:keys": configcmd.cmd_keys,
    "config:set": configcmd.cmd_set,
    "config:unset": configcmd.cmd_unset,
    "domains:add": appscmd.cmd_domains_add,
    "domains:add-global": appscmd.cmd_domains_add_global,
    "domains:clear": appscmd.cmd_domains_clear,
    "domains:clear-global": appscmd.cmd_domains_clear_global,
    "domains:disable": appscmd.cmd_domains_disable,
    "domains:enable": appscmd.cmd_domains_enable,
    "domains:remove": appscmd.cmd_domains_remove,
    "domains:remove-global": appscmd.cmd_domains_remove_global,
    "domains:report": appscmd.cmd_domains_report,
    "domains:set": appscmd.cmd_domains_set,
    "domains:set-global": appscmd.cmd_domains_set_global,
    "git:from-archive": gitcmd.cmd_from_archive,
    "git:report": gitcmd.cmd_report,
    "logs": misc.cmd_logs,
    "plugin:install": misc.cmd_plugin_install,
    "plugin:install-dependencies": misc.cmd_plugin_install_dependencies,
    "plugin:uninstall": misc.cmd_plugin_uninstall,
    "plugin:update": misc.cmd_plugin_update,
    "plugin:installed": misc.cmd_plugin_installed,
    "plugin:list": misc.cmd_plugin_list,
    "plugin": misc.cmd_plugin_list,
    "proxy:report": proxycmd.cmd_proxy_report,
    "ps:rebuild": pscmd.cmd_rebuild,
    "ps:report": pscmd.cmd_report,
    "ps:restart": pscmd.cmd_restart,
    "ps:scale": pscmd.cmd_scale,
    "ps:set": pscmd.cmd_set,
    "ps:start": pscmd.cmd_start,
    "ps:stop": pscmd.cmd_stop,
    "run": misc.cmd_run,
    "ssh-keys:add": misc.cmd_ssh_keys_add,
    "ssh-keys:list": misc.cmd_ssh_keys_list,
    "ssh-keys:remove": misc.cmd_ssh_keys_remove,
    "urls": proxycmd.cmd_urls,
    "version": misc.cmd_version,
}

HELP = (
    f"""Usage: dokku [--quiet|--trace|--force] COMMAND <app> [command-specific-options]

{STANDIN_NOTICE}
It implements these Dokku commands, as Dokku 0.38 documents them:

"""
    + "\n".join(f"    {name}" for name in sorted(COMMANDS))
    + """
    postgres:{app-links,create,destroy,exists,info,link,linked,links,list,unlink}
    redis:{app-links,create,destroy,exists,info,link,linked,links,list,unlink}
"""
)


def has_tty() -> bool:
    if os.environ.get("DOKKU_FORCE_TTY") == "true":
        return True
    if os.environ.get("DOKKU_DISABLE_TTY") == "true":
        return False
    return sys.stdin.isatty()


def parse_global_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """parse_args + the leading-flag shift of the `dokku` script.

    Flags anywhere on the line count (--quiet exports DOKKU_QUIET_OUTPUT, --force sets
    DOKKU_APPS_FORCE_DELETE, --app names the app); only the leading ones are removed.
    """
    flags: list[str] = []
    skip = False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--quiet":
            os.environ["DOKKU_QUIET_OUTPUT"] = "1"
        elif arg == "--trace":
            os.environ["DOKKU_TRACE"] = "1"
        elif arg == "--force":
            os.environ["DOKKU_APPS_FORCE_DELETE"] = "1"
        elif arg == "--app":
            os.environ["DOKKU_APP_NAME"] = argv[index + 1] if index + 1 < len(argv) else ""
            skip = True
        if arg.startswith("--"):
            flags.append(arg)
    rest = list(argv)
    if rest and rest[0].startswith("--"):
        while rest and rest[0].startswith("--") and rest[0] != "--version":
            rest = rest[2:] if rest[0] == "--app" else rest[1:]
    return rest, flags


def dispatch(ctx: Context, argv: list[str]) -> None:
    if not argv or argv[0] == "help":
        if has_tty():
            out.log(HELP)
        else:  # Dokku's usage line is dokku_log_quiet, hidden without a terminal
            out.log("\n".join(HELP.splitlines()[2:]))
        return
    if argv[0] in ("version", "-v", "--version"):
        misc.cmd_version(ctx, argv[1:])
        return
    command, args = argv[0], argv[1:]
    app_name = os.environ.get("DOKKU_APP_NAME")
    if app_name and command in COMMANDS and command not in ("version", "apps:list", "plugin:list"):
        args = [app_name, *args]
    handler = COMMANDS.get(command)
    if handler is not None:
        handler(ctx, args)
        return
    plugin, _, sub = command.partition(":")
    for service_plugin in (services.POSTGRES, services.REDIS):
        if plugin == service_plugin.prefix and services.dispatch(ctx, service_plugin, sub, args):
            return
    out.warn(f"`{' '.join(argv)}` is not a dokku command.")
    out.warn("See `dokku help` for a list of available commands.")
    raise out.DokkuExit(1)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, flags = parse_global_flags(argv)
    try:
        ctx = Context()
    except ValueError as exc:
        out.warn(f"Dokku stand-in configuration: {exc}")
        return 1
    ctx.global_flags = flags
    try:
        dispatch(ctx, rest)
    except out.DokkuExit as exc:
        return exc.code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
