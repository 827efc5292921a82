"""Shared pieces: the context every command gets, app checks, config storage, reports."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from . import out
from .state import (
    APP_NAME_OLD_RE,
    Paths,
    Properties,
    Settings,
    dump_env,
    list_apps,
    parse_env,
    read_file,
    valid_app_name,
    write_file,
)


class Context:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.load()
        self.paths = Paths(self.settings)
        self.props = Properties(self.paths)
        # Flags seen anywhere on the command line (DOKKU_GLOBAL_FLAGS).
        self.global_flags: list[str] = []

    # -- apps ---------------------------------------------------------------------------

    def app_exists(self, app: str) -> bool:
        return bool(app) and self.paths.app(app).is_dir() and not app.startswith(".")

    def verify_app(self, app: str) -> None:
        """common.VerifyAppName: bad name -> exit 1, missing app -> exit 20."""
        problem = valid_app_name(app)
        if problem and not (app and APP_NAME_OLD_RE.match(app)):
            raise out.fail(problem)
        if not self.app_exists(app):
            raise out.fail(f"App {app} does not exist", 20)

    def apps(self) -> list[str]:
        return list_apps(self.paths)

    def is_deployed(self, app: str) -> bool:
        return self.props.get("common", app, "deployed") == "true"

    # -- config (plugins/config) --------------------------------------------------------

    def env_file(self, app: str | None) -> Path:
        return self.paths.root / "ENV" if not app else self.paths.app(app) / "ENV"

    def load_env(self, app: str | None) -> dict[str, str]:
        return parse_env(read_file(self.env_file(app)))

    def save_env(self, app: str | None, env: dict[str, str]) -> None:
        write_file(self.env_file(app), dump_env(env), 0o600)

    def merged_env(self, app: str) -> dict[str, str]:
        merged = self.load_env(None)
        merged.update(self.load_env(app))
        return merged

    # -- vhosts (plugins/domains) -------------------------------------------------------

    def global_vhosts(self) -> list[str]:
        return [v for v in read_file(self.paths.root / "VHOST").split() if v]

    def app_vhosts(self, app: str) -> list[str]:
        return [v for v in read_file(self.paths.app(app) / "VHOST").split() if v]

    def vhost_enabled(self, app: str) -> bool:
        return self.load_env(app).get("NO_VHOST") != "1"

    # -- locking ------------------------------------------------------------------------

    @contextlib.contextmanager
    def app_lock(self, app: str) -> Iterator[None]:
        """One deploy/config change at a time per app (Dokku's app deploy lock)."""
        lock_path = self.paths.standin("locks", f"{app}.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# -- reports (common.ReportSingleApp) ------------------------------------------------------

ReportFlags = dict[str, Callable[[str], str]]


def go_json(data: object, *, sort_keys: bool = True) -> str:
    """encoding/json.Marshal: compact, <, > and & escaped; maps sorted by key (structs keep
    their field order: pass dicts in that order with sort_keys=False)."""
    text = json.dumps(data, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def parse_report_args(plugin: str, argv: list[str]) -> tuple[list[str], str, bool, bool]:
    """common.ParseReportArgs -> (os args, info flag, is global, ok)."""
    os_args: list[str] = []
    info_flags: list[str] = []
    is_global = False
    skip = False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--format":
            os_args += [arg, argv[index + 1] if index + 1 < len(argv) else ""]
            skip = True
        elif arg == "--global":
            is_global = True
        elif arg.startswith("--"):
            info_flags.append(arg)
        else:
            os_args.append(arg)
    if len(info_flags) > 1:
        # Dokku computes this error and then drops it: the command prints nothing, exits 0.
        return os_args, "", is_global, False
    return os_args, info_flags[0] if info_flags else "", is_global, True


def render_report(
    report_type: str,
    app: str,
    info_flag: str,
    flags: ReportFlags,
    fmt: str,
    *,
    trim_prefix: bool = True,
    uppercase: bool = True,
    legacy_prefix: bool = False,
) -> None:
    values = {flag: fn(app) for flag, fn in flags.items()}
    if fmt not in ("", "stdout", "json"):
        raise out.fail(f"Invalid --format value specified: {fmt}")
    if fmt == "json":
        if info_flag:
            raise out.fail("--format flag cannot be specified when specifying an info flag")
        data: dict[str, str] = {}
        prefix = f"--{report_type}-"
        for key, value in values.items():
            legacy = key[2:]
            if trim_prefix and key.startswith(prefix):
                data[key[len(prefix) :]] = value
                if legacy_prefix:
                    data[legacy] = value
            else:
                data[legacy] = value
        out.log(go_json(data))
        return
    if info_flag:
        if info_flag in values:
            out.log(values[info_flag])
            return
        valid = ", ".join(sorted(flags))
        raise out.fail(f"Invalid flag passed, valid flags: {valid}")
    length = max([31, *(len(key) for key in values)])
    out.info2_quiet(f"{app} {report_type} information")
    for key in sorted(values):
        label = key[2:].replace("-", " ").replace(".", " ")
        if uppercase:
            label = label[:1].upper() + label[1:]
        out.verbose(f"{out.right_pad(label + ':', length)}{values[key]}")


def report_command(
    ctx: Context,
    plugin: str,
    argv: list[str],
    flags_for: Callable[[str], ReportFlags],
    **render: bool,
) -> None:
    """`<plugin>:report [<app>|--global] [--format stdout|json] [<flag>]` for all reports."""
    from .flags import FlagSet

    os_args, info_flag, is_global, ok = parse_report_args(plugin, argv)
    if not ok:
        return
    values, positional = FlagSet(
        f"{plugin}:report", strings={"format": ("stdout", "format")}
    ).parse(os_args)
    fmt = str(values["format"])
    app = "--global" if is_global else (positional[0] if positional else "")
    if app == "--global":
        render_report(plugin, app, info_flag, flags_for(app), fmt, **render)
        return
    if app:
        ctx.verify_app(app)
        render_report(plugin, app, info_flag, flags_for(app), fmt, **render)
        return
    apps = ctx.apps()
    if not apps:
        raise out.fail("You haven't deployed any applications yet")
    for name in apps:
        render_report(plugin, name, info_flag, flags_for(name), fmt, **render)


def env_bool(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
