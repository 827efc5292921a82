"""apps:* and domains:* commands, after Dokku's apps and domains plugins."""

from __future__ import annotations

import re
import shutil
import sys
import time

from . import deploy, out, proxy
from .core import Context, go_json, report_command
from .flags import FlagSet
from .scale import update_scale
from .state import read_file, valid_app_name, write_file

HOSTNAME_RE = re.compile(r"^[a-z0-9.*-]*[a-z0-9*-]$")
IPV4_RE = re.compile(r"^(\d{1,3}\.){3}\d{1,3}$")


# -- apps -----------------------------------------------------------------------------------


def create_app(ctx: Context, app: str) -> None:
    problem = valid_app_name(app)
    if problem:
        raise out.fail(problem)
    if ctx.app_exists(app):
        raise out.fail("Name is already taken")
    out.info1_quiet(f"Creating {app}...")
    ctx.paths.app(app).mkdir(parents=True, mode=0o755)
    ctx.props.set("apps", app, "created-at", str(int(time.time())))
    # post-create triggers: domains (vhost file) and ps (web=1)
    domains_setup(ctx, app)
    update_scale(ctx, app, [("web", 1)], valid=None)


def cmd_create(ctx: Context, argv: list[str]) -> None:
    _, positional = FlagSet("apps:create").parse(argv)
    create_app(ctx, positional[0] if positional else "")


def cmd_exists(ctx: Context, argv: list[str]) -> None:
    _, positional = FlagSet("apps:exists").parse(argv)
    ctx.verify_app(positional[0] if positional else "")


def cmd_list(ctx: Context, argv: list[str]) -> None:
    flags, _ = FlagSet(
        "apps:list", strings={"format": ("stdout", "format: [ stdout | json ]")}
    ).parse(argv)
    apps = ctx.apps()
    if flags["format"] == "json":
        out.log(go_json(apps))
        return
    out.info2_quiet("My Apps")
    if not apps:
        out.warn("You haven't deployed any applications yet")
        return
    for app in apps:
        out.log(app)


def cmd_destroy(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "apps:destroy", bools={"force": "--force: force destroy without confirmation"}
    ).parse(argv)
    app = positional[0] if positional else ""
    ctx.verify_app(app)
    forced = flags["force"] or "--force" in ctx.global_flags
    if not forced:
        out.warn("WARNING: Potentially Destructive Action")
        out.warn(f"This command will destroy app {app}.")
        out.warn(f'To proceed, type "{app}"')
        sys.stdout.write("> ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip()
        if answer != app:
            out.stderr("Confirmation did not match test. Aborted.")
            raise out.DokkuExit(1)
    out.info1(f"Destroying {app} (including all add-ons)")
    from .services import unlink_all

    unlink_all(ctx, app)
    deploy.remove_app(ctx, app)
    proxy.remove(ctx, app)
    ctx.props.destroy_app(app)
    shutil.rmtree(ctx.paths.app(app), ignore_errors=True)


# -- domains --------------------------------------------------------------------------------


def valid_hostname(name: str) -> bool:
    name = name.lower()
    return name == "_" or bool(HOSTNAME_RE.match(name))


def default_vhosts(ctx: Context, app: str) -> list[str]:
    hosts = []
    if not any(valid_hostname(v) for v in ctx.global_vhosts()):
        return hosts
    for vhost in ctx.global_vhosts():
        if IPV4_RE.match(vhost) or ":" in vhost:
            continue
        hosts.append(app if "." in app else f"{app}.{vhost}")
    return hosts


def domains_setup(ctx: Context, app: str) -> None:
    """domains post-create: write the VHOST file, or turn vhosts off without a global one."""
    if not ctx.vhost_enabled(app):
        out.info1("App virtual host support disabled, skipping domain setup")
        return
    vhost_file = ctx.paths.app(app) / "VHOST"
    if vhost_file.exists():
        return
    defaults = default_vhosts(ctx, app)
    if defaults:
        out.info1_quiet("Creating new app virtual host file...")
        write_file(vhost_file, "\n".join(defaults) + "\n")
    else:
        out.info1_quiet("Global server virtual host not set, disabling app vhost...")
        env = ctx.load_env(app)
        env["NO_VHOST"] = "1"
        ctx.save_env(app, env)


def _after_update(ctx: Context, app: str) -> None:
    """post-domains-update: rebuild the proxy config of a deployed app."""
    if ctx.is_deployed(app):
        proxy.configure(ctx, app, deploy.web_listeners(deploy.current_instances(ctx, app)))


def _enable_if_disabled(ctx: Context, app: str) -> None:
    if not ctx.vhost_enabled(app):
        env = ctx.load_env(app)
        env["NO_VHOST"] = "0"
        ctx.save_env(app, env)


def _check_domains(domains: list[str]) -> None:
    for domain in domains:
        if not valid_hostname(domain):
            raise out.fail(f"{domain} is invalid. exiting...")


def cmd_domains_set(ctx: Context, argv: list[str]) -> None:
    if len(argv) < 2:
        raise out.fail(
            f"Please specify a domain name. Usage: dokku domains:set {' '.join(argv)}"
            " <domain> [<domain> ...]"
        )
    app, domains = argv[0], argv[1:]
    ctx.verify_app(app)
    vhost_file = ctx.paths.app(app) / "VHOST"
    _check_domains(domains)
    write_file(vhost_file, "\n".join(" ".join(domains).split(" ")) + "\n")
    out.info1(f"Set {' '.join(domains)} for {app}")
    _enable_if_disabled(ctx, app)
    _after_update(ctx, app)


def cmd_domains_add(ctx: Context, argv: list[str]) -> None:
    if len(argv) < 2:
        raise out.fail(
            f"Please specify a domain name. Usage: dokku domains:add {' '.join(argv)}"
            " <domain> [<domain> ...]"
        )
    app, domains = argv[0], argv[1:]
    ctx.verify_app(app)
    _check_domains(domains)
    vhost_file = ctx.paths.app(app) / "VHOST"
    current = read_file(vhost_file).splitlines()
    for domain in domains:
        if domain in current:
            out.info1(f"Skipping: {domain} already added to {app}")
        else:
            current.append(domain)
            out.info1(f"Added {domain} to {app}")
    write_file(vhost_file, "".join(f"{d}\n" for d in current))
    _enable_if_disabled(ctx, app)
    _after_update(ctx, app)


def cmd_domains_remove(ctx: Context, argv: list[str]) -> None:
    if len(argv) < 2:
        raise out.fail("Please specify a domain name. Usage: dokku domains:remove <app> <domain>")
    app, domains = argv[0], argv[1:]
    ctx.verify_app(app)
    vhost_file = ctx.paths.app(app) / "VHOST"
    current = [d for d in read_file(vhost_file).splitlines() if d not in domains]
    write_file(vhost_file, "".join(f"{d}\n" for d in current))
    for domain in domains:
        out.info1(f"Removed {domain} from {app}")
    _after_update(ctx, app)


def cmd_domains_clear(ctx: Context, argv: list[str]) -> None:
    app = argv[0] if argv else ""
    ctx.verify_app(app)
    (ctx.paths.app(app) / "VHOST").unlink(missing_ok=True)
    out.info1(f"Cleared domains in {app}")
    _after_update(ctx, app)


def cmd_domains_set_global(ctx: Context, argv: list[str]) -> None:
    if not argv:
        raise out.fail("Please specify a global domain name")
    _check_domains(argv)
    write_file(ctx.paths.root / "VHOST", "\n".join(" ".join(argv).split(" ")) + "\n")
    out.info1(f"Set {' '.join(argv)}")


def cmd_domains_add_global(ctx: Context, argv: list[str]) -> None:
    if not argv:
        raise out.fail("Please specify at least one domain")
    _check_domains(argv)
    current = read_file(ctx.paths.root / "VHOST").splitlines()
    for domain in argv:
        if domain in current:
            out.info1(f"Skipping {domain}: already added")
        else:
            current.append(domain)
            out.info1(f"Added {domain}")
    write_file(ctx.paths.root / "VHOST", "".join(f"{d}\n" for d in current))


def cmd_domains_remove_global(ctx: Context, argv: list[str]) -> None:
    current = [d for d in read_file(ctx.paths.root / "VHOST").splitlines() if d not in argv]
    write_file(ctx.paths.root / "VHOST", "".join(f"{d}\n" for d in current))
    for domain in argv:
        out.info1(f"Removed {domain}")


def cmd_domains_clear_global(ctx: Context, argv: list[str]) -> None:
    write_file(ctx.paths.root / "VHOST", "")


def domains_report_flags(ctx: Context):  # type: ignore[no-untyped-def]
    def global_enabled(_: str) -> str:
        return "true" if any(valid_hostname(v) for v in ctx.global_vhosts()) else "false"

    def global_vhosts(_: str) -> str:
        return " ".join(ctx.global_vhosts()) if global_enabled(_) == "true" else ""

    def flags_for(app: str) -> dict:
        flags = {
            "--domains-global-enabled": global_enabled,
            "--domains-global-vhosts": global_vhosts,
        }
        if app != "--global":
            flags["--domains-app-enabled"] = lambda a: "true" if ctx.vhost_enabled(a) else "false"
            flags["--domains-app-vhosts"] = lambda a: " ".join(ctx.app_vhosts(a))
        return flags

    return flags_for


def cmd_domains_report(ctx: Context, argv: list[str]) -> None:
    report_command(ctx, "domains", argv, domains_report_flags(ctx))


def _clear_proxy_ports(ctx: Context, app: str, *, only_defaults: bool) -> None:
    """nginx-vhosts pre-disable-vhost (only 80/443) and pre-enable-vhost (any): forget the
    stored proxy ports so they are computed again for the new vhost state."""
    for prop, default in (("proxy-port", "80"), ("proxy-ssl-port", "443")):
        value = ctx.props.get("proxy", app, prop)
        if value and (not only_defaults or value == default):
            ctx.props.delete("proxy", app, prop)


def cmd_domains_disable(ctx: Context, argv: list[str]) -> None:
    """domains:disable (plugins/domains/functions domains_disable -> disable_app_vhost
    --no-restart): drop the VHOST file, NO_VHOST=1 without a restart, rebuild the proxy."""
    from .configcmd import set_many

    app = argv[0] if argv else ""
    ctx.verify_app(app)
    vhost_file = ctx.paths.app(app) / "VHOST"
    if not ctx.vhost_enabled(app):
        vhost_file.touch()
        out.info1(f"Domains (VHOST) support is already disabled for app ({app})")
        return
    _clear_proxy_ports(ctx, app, only_defaults=True)
    if vhost_file.exists():
        out.info1("App virtual host support disabled")
        vhost_file.unlink()
    with out.quieted():
        set_many(ctx, app, {"NO_VHOST": "1"}, restart=False)
    _after_update(ctx, app)


def cmd_domains_enable(ctx: Context, argv: list[str]) -> None:
    """domains:enable (domains_enable -> enable_app_vhost without --no-restart): the default
    vhosts into VHOST, NO_VHOST=0 through config:set, which restarts a deployed app."""
    from .configcmd import set_many

    app = argv[0] if argv else ""
    ctx.verify_app(app)
    vhost_file = ctx.paths.app(app) / "VHOST"
    vhost_file.touch()
    if ctx.vhost_enabled(app):
        out.info1(f"Domains (VHOST) support is already enabled for app ({app})")
        return
    defaults = default_vhosts(ctx, app)
    if defaults:
        write_file(vhost_file, "\n".join(defaults) + "\n")
    _clear_proxy_ports(ctx, app, only_defaults=False)
    with out.quieted():
        set_many(ctx, app, {"NO_VHOST": "0"}, restart=True)
