"""buildpacks:*, after Dokku's buildpacks plugin (plugins/buildpacks/*.go).

The list is the `buildpacks` property of the app. The stand-in's build does not run
buildpacks (it builds Python apps itself, see build.py); the list is kept and reported as
Dokku keeps it, so roles that pin a buildpack see what they set.
"""

from __future__ import annotations

import re

from . import out
from .core import Context, report_command
from .flags import FlagSet

HEROKU_SHORTHAND = re.compile(r"^([\w-]+/[\w-]+)$", re.MULTILINE)
BUILDPACK_URL = re.compile(
    r"^(http|https|git)(://|@)([^/:]+)[/:]([^/:]+)/(.+)(.git(#derp)?)?$", re.MULTILINE
)


def valid_buildpack_url(buildpack: str) -> str:
    """validBuildpackURL: heroku/x -> its GitHub URL; otherwise a git/http(s) URL."""
    if not buildpack:
        raise out.fail("Must specify a buildpack url or reference")
    if HEROKU_SHORTHAND.search(buildpack):
        owner, name = buildpack.split("/", 1)
        owner = "heroku" if owner == "heroku-community" else owner
        return f"https://github.com/{owner}/heroku-buildpack-{name}.git"
    if BUILDPACK_URL.search(buildpack):
        return buildpack
    raise out.fail(f"Invalid buildpack specified: {buildpack}")


def _list(ctx: Context, app: str) -> list[str]:
    return ctx.props.get_list("buildpacks", app, "buildpacks")


def _index_flag(name: str, argv: list[str]) -> tuple[int, list[str]]:
    flags, positional = FlagSet(
        name, strings={"index": ("0", "--index: the 1-based index of the URL in the list of URLs")}
    ).parse(argv)
    try:
        return int(str(flags["index"])), positional
    except ValueError:
        raise out.fail("--index must be a number") from None


def cmd_add(ctx: Context, argv: list[str]) -> None:
    """buildpacks:add [--index N] <app> <url> (common.PropertyListAdd: 0 appends)."""
    index, positional = _index_flag("buildpacks:add", argv)
    app, buildpack = ([*positional, "", ""])[:2]
    ctx.verify_app(app)
    url = valid_buildpack_url(buildpack)
    current = _list(ctx, app)
    if index <= 0 or index > len(current):
        current.append(url)
    else:
        current.insert(index - 1, url)
    ctx.props.set_list("buildpacks", app, "buildpacks", current)


def cmd_set(ctx: Context, argv: list[str]) -> None:
    """buildpacks:set [--index N] <app> <url>: replace the Nth (default first) URL."""
    index, positional = _index_flag("buildpacks:set", argv)
    app, buildpack = ([*positional, "", ""])[:2]
    ctx.verify_app(app)
    url = valid_buildpack_url(buildpack)
    current = _list(ctx, app)
    position = max(index - 1, 0)
    if position < len(current):
        current[position] = url
    else:
        current.append(url)
    ctx.props.set_list("buildpacks", app, "buildpacks", current)


def cmd_remove(ctx: Context, argv: list[str]) -> None:
    index, positional = _index_flag("buildpacks:remove", argv)
    app, buildpack = ([*positional, "", ""])[:2]
    ctx.verify_app(app)
    if index and buildpack:
        raise out.fail("Please choose either index or Buildpack, but not both")
    if not index and not buildpack:
        raise out.fail("Must specify a buildpack to remove, either by index or URL")
    current = _list(ctx, app)
    if not current:
        raise out.fail(
            f"No buildpacks were found, next release on {app} will detect buildpack normally"
        )
    if index:
        if index > len(current):
            raise out.fail(f"Index out of range: {index}")
        buildpack = current[index - 1]
    else:
        buildpack = valid_buildpack_url(buildpack)
        if buildpack not in current:
            raise out.fail(f"Unable to find buildpack {buildpack}")
    out.info1_quiet(f"Removing {buildpack}")
    ctx.props.set_list("buildpacks", app, "buildpacks", [b for b in current if b != buildpack])


def cmd_clear(ctx: Context, argv: list[str]) -> None:
    app = argv[0] if argv else ""
    ctx.verify_app(app)
    ctx.props.delete("buildpacks", app, "buildpacks")


def cmd_list(ctx: Context, argv: list[str]) -> None:
    app = argv[0] if argv else ""
    ctx.verify_app(app)
    out.info1_quiet(f"{app} buildpack urls")
    for buildpack in _list(ctx, app):
        out.verbose(buildpack)


def report_flags(ctx: Context):  # type: ignore[no-untyped-def]
    def stack(a: str) -> str:
        return ctx.props.get("buildpacks", a, "stack")

    def global_stack(a: str) -> str:
        return ctx.props.get("buildpacks", "--global", "stack")

    def flags_for(app: str) -> dict:
        if app == "--global":
            return {"--buildpacks-global-stack": global_stack}
        return {
            "--buildpacks-computed-stack": lambda a: stack(a) or global_stack(a),
            "--buildpacks-global-stack": global_stack,
            "--buildpacks-list": lambda a: ",".join(_list(ctx, a)),
            "--buildpacks-stack": stack,
        }

    return flags_for


def cmd_report(ctx: Context, argv: list[str]) -> None:
    report_command(ctx, "buildpacks", argv, report_flags(ctx), legacy_prefix=True)
