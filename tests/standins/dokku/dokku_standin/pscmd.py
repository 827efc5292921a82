"""ps:* commands, after Dokku's ps plugin (plugins/ps)."""

from __future__ import annotations

from . import deploy, out, proxy
from .core import Context, report_command
from .flags import FlagSet
from .scale import ScaleError, can_scale, get_formations, parse_tuples, scale_report, update_scale
from .state import read_file


def _running_build(ctx: Context, app: str) -> int | None:
    number = ctx.props.get("standin", app, "build")
    return int(number) if number else None


def cmd_scale(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "ps:scale",
        bools={"skip-deploy": "--skip-deploy: skip deploy of the app"},
        strings={"format": ("stdout", "format: [ stdout | json ]")},
    ).parse(argv)
    app = positional[0] if positional else ""
    ctx.verify_app(app)
    tuples = positional[1:]
    if not tuples:
        scale_report(ctx, app, str(flags["format"]))
        return
    if not can_scale(ctx, app):
        raise out.fail(
            f"App {app} contains an app.json file with a formations key and cannot be"
            " manually scaled"
        )
    out.info1(f"Scaling {app} processes: {' '.join(tuples)}")
    with ctx.app_lock(app):
        try:
            existing = dict(get_formations(ctx, app))
            formations = parse_tuples(tuples)
            update_scale(ctx, app, formations)
        except ScaleError as exc:
            raise out.fail(str(exc)) from None
        if flags["skip-deploy"] or not ctx.is_deployed(app):
            return
        build_no = _running_build(ctx, app)
        if build_no is None:
            return
        for name, qty in formations:
            if existing.get(name) == qty:
                continue
            try:
                deploy.deploy(ctx, app, build_no, only_type=name)
            except deploy.DeployError as exc:
                raise out.fail(str(exc)) from None


def restart(ctx: Context, app: str) -> None:
    if not ctx.is_deployed(app):
        out.warn(f"App {app} has not been deployed")
        return
    build_no = _running_build(ctx, app)
    if build_no is None:
        return
    with ctx.app_lock(app):
        try:
            deploy.deploy(ctx, app, build_no)
        except deploy.DeployError as exc:
            raise out.fail(str(exc)) from None


def cmd_restart(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "ps:restart",
        bools={"all": "--all: restart all apps"},
        strings={"parallel": ("", "--parallel: number of apps to restart in parallel")},
    ).parse(argv)
    if flags["all"]:
        if len(positional) > 1:
            raise out.fail("Unable to restart all apps when specifying a process name")
        for app in ctx.apps():
            restart(ctx, app)
        return
    app = positional[0] if positional else ""
    ctx.verify_app(app)
    if len(positional) > 1:
        if not ctx.is_deployed(app):
            out.warn(f"App {app} has not been deployed")
            return
        build_no = _running_build(ctx, app)
        with ctx.app_lock(app):
            try:
                deploy.deploy(ctx, app, build_no or 0, only_type=positional[1])
            except deploy.DeployError as exc:
                raise out.fail(str(exc)) from None
        return
    restart(ctx, app)


def cmd_rebuild(ctx: Context, argv: list[str]) -> None:
    from .gitcmd import receive

    _, positional = FlagSet("ps:rebuild", bools={"all": "--all: rebuild all apps"}).parse(argv)
    app = positional[0] if positional else ""
    ctx.verify_app(app)
    from .gitcmd import _git, deploy_branch

    rev = _git("rev-parse", f"refs/heads/{deploy_branch(ctx, app)}", cwd=ctx.paths.app(app))
    if rev.returncode != 0:
        out.warn(f"App {app} has not been deployed")
        return
    with ctx.app_lock(app):
        code = receive(ctx, app, rev.stdout.strip())
    if code:
        raise out.DokkuExit(code)


def cmd_stop(ctx: Context, argv: list[str]) -> None:
    _, positional = FlagSet("ps:stop", bools={"all": "--all: stop all apps"}).parse(argv)
    app = positional[0] if positional else ""
    ctx.verify_app(app)
    out.info1(f"Stopping {app}")
    deploy.stop_app(ctx, app)
    ctx.props.set("ps", app, "restore", "false")
    if ctx.is_deployed(app):
        proxy.configure(ctx, app, [])


def cmd_start(ctx: Context, argv: list[str]) -> None:
    _, positional = FlagSet("ps:start", bools={"all": "--all: start all apps"}).parse(argv)
    app = positional[0] if positional else ""
    ctx.verify_app(app)
    if not ctx.is_deployed(app):
        out.warn(f"App {app} has not been deployed")
        return
    _, running = deploy.running_state(ctx, app)
    if running == "true":
        return
    restart(ctx, app)


def cmd_set(ctx: Context, argv: list[str]) -> None:
    flags, positional = FlagSet(
        "ps:set", bools={"global": "--global: set a global property"}
    ).parse(argv)
    if flags["global"]:
        app, rest = "--global", positional
    else:
        app, rest = (positional[0] if positional else ""), positional[1:]
        ctx.verify_app(app)
    if not rest:
        raise out.fail("No property specified")
    prop, value = rest[0], rest[1] if len(rest) > 1 else ""
    valid = {
        "procfile-path",
        "restart-policy",
        "stop-timeout-seconds",
        "start-cmd",
        "dockerfile-start-cmd",
        "skip-deploy",
    }
    if prop not in valid:
        raise out.fail(
            f"Invalid property specified, valid properties include: {', '.join(sorted(valid))}"
        )
    if value:
        out.info2(f"Setting {prop} to {value}")
        ctx.props.set("ps", app, prop, value)
    else:
        out.info2(f"Unsetting {prop}")
        ctx.props.delete("ps", app, prop)


def ps_report_flags(ctx: Context):  # type: ignore[no-untyped-def]
    sup = None

    def status_flags(app: str) -> dict:
        nonlocal sup
        sup = sup or deploy.supervisor(ctx)
        flags = {}
        for name, inst in deploy.current_instances(ctx, app).items():
            dyno = name[len(app) + 1 :]
            cid = read_file(ctx.paths.app(app) / f"CONTAINER.{dyno}").strip() or "0" * 12
            flags[f"--status-{dyno}"] = lambda a, n=inst.container, c=cid: (
                f"{sup.status(n).state} (CID: {c[:11]})"
            )
        return flags

    def computed(prop: str, default: str):  # type: ignore[no-untyped-def]
        return lambda a: (
            ctx.props.get("ps", a, prop) or ctx.props.get("ps", "--global", prop) or default
        )

    def flags_for(app: str) -> dict:
        flags = {
            "--ps-computed-procfile-path": computed("procfile-path", "Procfile"),
            "--ps-computed-restart-policy": computed("restart-policy", "on-failure:10"),
            "--ps-computed-skip-deploy": computed("skip-deploy", "false"),
            "--ps-computed-stop-timeout-seconds": computed("stop-timeout-seconds", "30"),
            "--ps-global-procfile-path": lambda a: ctx.props.get("ps", "--global", "procfile-path"),
            "--ps-global-restart-policy": lambda a: ctx.props.get(
                "ps", "--global", "restart-policy"
            ),
            "--ps-global-skip-deploy": lambda a: ctx.props.get("ps", "--global", "skip-deploy"),
            "--ps-global-stop-timeout-seconds": lambda a: ctx.props.get(
                "ps", "--global", "stop-timeout-seconds"
            ),
        }
        if app == "--global":
            return flags
        flags.update(
            {
                "--deployed": lambda a: "true" if ctx.is_deployed(a) else "false",
                "--processes": lambda a: str(deploy.running_state(ctx, a)[0]),
                "--running": lambda a: deploy.running_state(ctx, a)[1],
                "--restore": lambda a: ctx.props.get("ps", a, "restore", "true"),
                "--ps-can-scale": lambda a: "true" if can_scale(ctx, a) else "false",
                "--ps-computed-dockerfile-start-cmd": lambda a: ctx.props.get(
                    "ps", a, "dockerfile-start-cmd"
                ),
                "--ps-computed-start-cmd": lambda a: ctx.props.get("ps", a, "start-cmd"),
                "--ps-dockerfile-start-cmd": lambda a: ctx.props.get(
                    "ps", a, "dockerfile-start-cmd"
                ),
                "--ps-procfile-path": lambda a: ctx.props.get("ps", a, "procfile-path"),
                "--ps-restart-policy": lambda a: ctx.props.get("ps", a, "restart-policy"),
                "--ps-skip-deploy": lambda a: ctx.props.get("ps", a, "skip-deploy"),
                "--ps-start-cmd": lambda a: ctx.props.get("ps", a, "start-cmd"),
                "--ps-stop-timeout-seconds": lambda a: ctx.props.get(
                    "ps", a, "stop-timeout-seconds"
                ),
            }
        )
        flags.update(status_flags(app))
        return flags

    return flags_for


def cmd_report(ctx: Context, argv: list[str]) -> None:
    report_command(ctx, "ps", argv, ps_report_flags(ctx), legacy_prefix=True)
