"""version, plugin:*, ssh-keys:*, logs and run."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from . import out
from .core import Context, go_json
from .state import read_file

CORE_PLUGINS = {
    "00_dokku-standard": "dokku core standard plugin",
    "20_events": "dokku core events logging plugin",
    "app-json": "dokku core app-json plugin",
    "apps": "dokku core apps plugin",
    "builder": "dokku core builder plugin",
    "builder-dockerfile": "dokku core builder-dockerfile plugin",
    "builder-herokuish": "dokku core builder-herokuish plugin",
    "builder-lambda": "dokku core builder-lambda plugin",
    "builder-nixpacks": "dokku core builder-nixpacks plugin",
    "builder-null": "dokku core builder-null plugin",
    "builder-pack": "dokku core builder-pack plugin",
    "builder-railpack": "dokku core builder-railpack plugin",
    "buildpacks": "dokku core buildpacks plugin",
    "builds": "dokku core builds plugin",
    "caddy-vhosts": "dokku core caddy-vhosts plugin",
    "certs": "dokku core certificate management plugin",
    "checks": "dokku core checks plugin",
    "common": "dokku core common plugin",
    "config": "dokku core config plugin",
    "cron": "dokku core cron plugin",
    "docker-options": "dokku core docker-options plugin",
    "domains": "dokku core domains plugin",
    "enter": "dokku core enter plugin",
    "git": "dokku core git plugin",
    "haproxy-vhosts": "dokku core haproxy-vhosts plugin",
    "logs": "dokku core logs plugin",
    "network": "dokku core network plugin",
    "nginx-vhosts": "dokku core nginx-vhosts plugin",
    "openresty-vhosts": "dokku core openresty-vhosts plugin",
    "plugin": "dokku core plugin plugin",
    "ports": "dokku core ports plugin",
    "proxy": "dokku core proxy plugin",
    "ps": "dokku core ps plugin",
    "registry": "dokku core registry plugin",
    "repo": "dokku core repo plugin",
    "resource": "dokku core resource plugin",
    "run": "dokku core run plugin",
    "scheduler": "dokku core scheduler plugin",
    "scheduler-docker-local": "dokku core scheduler-docker-local plugin",
    "scheduler-k3s": "dokku core scheduler-k3s plugin",
    "scheduler-null": "dokku core scheduler-null plugin",
    "shell": "dokku core shell plugin",
    "ssh-keys": "dokku core ssh-keys plugin",
    "storage": "dokku core storage plugin",
    "trace": "dokku core trace plugin",
    "traefik-vhosts": "dokku core traefik-vhosts plugin",
}
# The datastore plugins the stand-in implements (versions of dokku-postgres / dokku-redis).
SERVICE_PLUGINS = {
    "postgres": ("1.48.0", "dokku postgres service plugin"),
    "redis": ("1.43.0", "dokku redis service plugin"),
}


def cmd_version(ctx: Context, argv: list[str]) -> None:
    path = ctx.paths.lib / "VERSION"
    version = read_file(ctx.paths.lib / "STABLE_VERSION").strip() or read_file(path).strip()
    if not version:
        raise out.fail("Unable to determine dokku's version")
    out.log(f"dokku version {version}")


def plugins(ctx: Context) -> list[tuple[str, str, bool, bool, str]]:
    """(name, version, enabled, core, description) like `plugn list`."""
    version = read_file(ctx.paths.lib / "VERSION").strip() or ctx.settings.version
    rows = [(name, version, True, True, desc) for name, desc in CORE_PLUGINS.items()]
    for name, (plugin_version, desc) in SERVICE_PLUGINS.items():
        if getattr(ctx.settings, name):
            rows.append((name, plugin_version, True, False, desc))
    return sorted(rows)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise out.fail("This command must be run as root")


def cmd_plugin_list(ctx: Context, argv: list[str]) -> None:
    fmt = "stdout"
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg == "--format":
            fmt = argv[index] if index < len(argv) else ""
            index += 1
        elif arg.startswith("--format="):
            fmt = arg.split("=", 1)[1]
    if fmt not in ("stdout", "json"):
        raise out.fail("Invalid output format specified, supported formats: json, stdout")
    rows = plugins(ctx)
    if fmt == "json":
        out.log(
            go_json(
                [
                    {
                        "name": n,
                        "version": v,
                        "enabled": e,
                        "core": c,
                        "description": d,
                        "source_url": "",
                        "committish": "",
                        "branch": "",
                    }
                    for n, v, e, c, d in rows
                ],
                sort_keys=False,
            )
        )
        return
    out.log("plugn: dev")
    for name, version, enabled, _, desc in rows:
        out.log(f"  {name:<20} {version:<5} {'enabled' if enabled else 'disabled':<10} {desc}")


def cmd_plugin_installed(ctx: Context, argv: list[str]) -> None:
    _require_root()
    name = argv[0] if argv else ""
    if name not in {row[0] for row in plugins(ctx)}:
        raise out.DokkuExit(1)


def cmd_plugin_install(ctx: Context, argv: list[str]) -> None:
    _require_root()
    positional = [a for a in argv if not a.startswith("--")]
    name = ""
    if "--name" in argv and argv.index("--name") + 1 < len(argv):
        name = argv[argv.index("--name") + 1]
    if not positional:
        out.info1("Priming bash-completion cache")
        return
    url = positional[0]
    name = name or re.sub(r"(\.git)?/?$", "", url).rsplit("/", 1)[-1].removeprefix("dokku-")
    if name in {row[0] for row in plugins(ctx)}:
        raise out.fail(f"Plugin {name} is already installed")
    # The stand-in cannot fetch plugins (no network to GitHub, no Docker to run them).
    raise out.fail(
        f"The Dokku stand-in cannot install plugins: {name} ({url}) is not one it implements"
    )


# -- ssh-keys (sshcommand) ------------------------------------------------------------------


def key_fingerprint(line: str) -> str | None:
    """ssh-keygen -lf: SHA256 fingerprint of `<type> <base64> [comment]`, None if invalid."""
    fields = line.strip().split()
    if len(fields) < 2:
        return None
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(blob) < 4:
        return None
    length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + length].decode("ascii", "replace") != fields[0]:
        return None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


KEY_LINE = re.compile(r'^command="FINGERPRINT=(\S+) NAME=(\\"|)(.*)\2 `.*",(\S+) (.*)$')


def _authorized_keys(ctx: Context) -> Path:
    return ctx.paths.root / ".ssh" / "authorized_keys"


def cmd_ssh_keys_add(ctx: Context, argv: list[str]) -> None:
    _require_root()
    name = argv[0] if argv else ""
    key_file = argv[1] if len(argv) > 1 else ""
    if key_file:
        content = read_file(Path(key_file))
    elif stat.S_ISFIFO(os.fstat(0).st_mode):
        content = sys.stdin.readline()  # `read -r`: only the first line of a pipe
    else:
        raise out.fail("No key specified via file or pipe")
    if not content.strip():
        raise out.fail("Empty key was specified")
    if len(content.rstrip("\n").splitlines()) > 1:
        raise out.fail(
            "Too many keys provided, set one per invocation of dokku ssh-keys:add <NAME> <KEY_FILE>"
        )
    key = content.strip()
    fingerprint = key_fingerprint(key)
    if fingerprint is None:
        raise out.fail("Key specified in is not a valid ssh public key")
    path = _authorized_keys(ctx)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = read_file(path)
    if not name:
        out.stderr("Usage: sshcommand acl-add USER NAME [KEY_FILE]")
        raise out.fail("sshcommand returned an error: 1")
    if f'NAME=\\"{name}\\"' in existing:
        out.stderr("Duplicate ssh key name")
        raise out.fail("sshcommand returned an error: 1")
    if fingerprint in existing:
        out.stderr("Duplicate ssh public key specified")
        raise out.fail("sshcommand returned an error: 1")
    allowed = "no-agent-forwarding,no-user-rc,no-X11-forwarding,no-port-forwarding"
    prefix = (
        f'command="FINGERPRINT={fingerprint} NAME=\\"{name}\\" '
        f'`cat {ctx.paths.root}/.sshcommand` $SSH_ORIGINAL_COMMAND",{allowed}'
    )
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{prefix} {key}\n")
    os.chmod(path, 0o700)
    out.log(fingerprint)


def cmd_ssh_keys_list(ctx: Context, argv: list[str]) -> None:
    name = argv[0] if argv else ""
    fmt = "text"
    if name == "--format":
        fmt = argv[1] if len(argv) > 1 else ""
        name = argv[2] if len(argv) > 2 else ""
    if fmt not in ("text", "json"):
        raise out.fail("Invalid output format specified, supported formats: json, text")
    path = _authorized_keys(ctx)
    if not path.exists():
        out.stderr("authorized_keys not found for dokku")
        raise out.DokkuExit(1)
    entries = []
    for line in read_file(path).splitlines():
        match = KEY_LINE.match(line)
        if match:
            entries.append((match.group(1), match.group(3), match.group(4), match.group(5)))
    if not read_file(path).strip():
        out.stderr("authorized_keys is empty for dokku")
        raise out.DokkuExit(1)
    if name:
        entries = [e for e in entries if e[1] == name]
    if fmt == "json":
        out.log(
            go_json(
                [
                    {"fingerprint": f, "name": n, "SSHCOMMAND_ALLOWED_KEYS": a, "public-key": k}
                    for f, n, a, k in entries
                ],
                sort_keys=False,
            )
        )
        return
    if name and not entries:
        raise out.DokkuExit(1)  # grep found nothing
    for fingerprint, key_name, allowed, _ in entries:
        out.log(f'{fingerprint} NAME="{key_name}" SSHCOMMAND_ALLOWED_KEYS="{allowed}"')


def cmd_ssh_keys_remove(ctx: Context, argv: list[str]) -> None:
    _require_root()
    path = _authorized_keys(ctx)
    lines = read_file(path).splitlines()
    if argv[:1] == ["--fingerprint"]:
        target = argv[1] if len(argv) > 1 else ""
        kept = [line for line in lines if f"FINGERPRINT={target} " not in line]
    else:
        target = argv[0] if argv else ""
        kept = [line for line in lines if f'NAME=\\"{target}\\"' not in line]
    if len(kept) == len(lines):
        raise out.fail(f"No matching keys found: {target}")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in kept))


# -- logs / run -----------------------------------------------------------------------------


def cmd_logs(ctx: Context, argv: list[str]) -> None:
    from .deploy import current_instances, supervisor

    num, ps, quiet, tail = 100, "", False, False
    positional: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if arg in ("-n", "--num"):
            num = int(argv[index]) if index < len(argv) else 100
            index += 1
        elif arg.startswith("--num="):
            num = int(arg.split("=", 1)[1])
        elif arg in ("-p", "--ps"):
            ps = argv[index] if index < len(argv) else ""
            index += 1
        elif arg in ("-q", "--quiet"):
            quiet = True
        elif arg in ("-t", "--tail"):
            tail = True
        else:
            positional.append(arg)
    app = positional[0] if positional else ""
    ctx.verify_app(app)
    if not ctx.is_deployed(app):
        raise out.fail(f"App {app} has not been deployed")
    sup = supervisor(ctx)
    colors = [36, 33, 32, 35, 31]
    names = sorted(n for n in current_instances(ctx, app) if not ps or n.startswith(f"{app}.{ps}."))
    for position, name in enumerate(names):
        dyno = name[len(app) + 1 :]
        for stamp, line in sup.log_lines(name, num):
            if quiet:
                out.log(line)
                continue
            when = datetime.datetime.fromtimestamp(stamp, datetime.UTC)
            text = when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
            color = colors[position % len(colors)]
            out.log(f"\x1b[{color}m{text} app[{dyno}]:\x1b[0m {line}")
    if tail:
        out.warn("The Dokku stand-in does not follow logs (--tail)")


def cmd_run(ctx: Context, argv: list[str]) -> None:
    from .deploy import app_dir, process_env

    extra_env: dict[str, str] = {}
    args = list(argv)
    while args and args[0].startswith("-"):
        arg = args.pop(0)
        if arg in ("-e", "--env") and args:
            key, _, value = args.pop(0).partition("=")
            extra_env[key] = value
        elif arg.startswith(("-e=", "--env=")):
            key, _, value = arg.split("=", 1)[1].partition("=")
            extra_env[key] = value
        elif arg in ("--no-tty", "--force-tty") or arg.startswith(
            ("--ttl-seconds", "--cron-id", "--concurrency-policy")
        ):
            continue
        else:
            args.insert(0, arg)
            break
    app = args[0] if args else ""
    ctx.verify_app(app)
    build_no = ctx.props.get("standin", app, "build")
    if not ctx.is_deployed(app) or not build_no:
        raise out.fail(f"App {app} has not been deployed")
    command = args[1:]
    if not command:
        raise out.fail("No command specified")
    env = process_env(ctx, app, int(build_no), "run.1")
    env.update(extra_env)
    line = " ".join(command)
    run_args = ["/bin/bash", "-c", line]
    if ctx.settings.app_user and os.geteuid() == 0:
        run_args = ["runuser", "-u", ctx.settings.app_user, "--", *run_args]
    result = subprocess.run(run_args, cwd=app_dir(ctx, app, int(build_no)), env=env, check=False)
    if result.returncode:
        raise out.DokkuExit(result.returncode)
