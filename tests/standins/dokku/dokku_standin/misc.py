"""version, plugin:*, ssh-keys:*, logs and run."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
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


def plugin_dir(ctx: Context, name: str) -> Path:
    """$PLUGIN_AVAILABLE_PATH/<name> (plugn's install directory)."""
    return ctx.paths.lib / "plugins" / "available" / name


def installed_plugin(ctx: Context, name: str) -> dict[str, str] | None:
    """A datastore plugin `plugin:install` put in place: its plugin.toml, source, committish.
    The stand-in runs none of the plugin's code; it implements postgres and redis itself."""
    if name not in SERVICE_PLUGINS or not getattr(ctx.settings, name):
        return None
    toml_path = plugin_dir(ctx, name) / "plugin.toml"
    if not toml_path.is_file():
        return None
    try:
        meta = tomllib.loads(toml_path.read_text()).get("plugin", {})
    except (tomllib.TOMLDecodeError, OSError):
        return None
    git = plugin_dir(ctx, name)
    url = subprocess.run(
        ["git", "-C", str(git), "config", "remote.origin.url"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "version": str(meta.get("version", SERVICE_PLUGINS[name][0])),
        "description": str(meta.get("description", SERVICE_PLUGINS[name][1])),
        "source_url": url,
        "committish": read_file(git / ".standin-committish").strip(),
    }


def plugins(ctx: Context) -> list[tuple[str, str, bool, bool, str]]:
    """(name, version, enabled, core, description) like `plugn list`."""
    version = read_file(ctx.paths.lib / "VERSION").strip() or ctx.settings.version
    rows = [(name, version, True, True, desc) for name, desc in CORE_PLUGINS.items()]
    for name in SERVICE_PLUGINS:
        meta = installed_plugin(ctx, name)
        if meta:
            rows.append((name, meta["version"], True, False, meta["description"]))
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
                        "source_url": (installed_plugin(ctx, n) or {}).get("source_url", ""),
                        "committish": (installed_plugin(ctx, n) or {}).get("committish", ""),
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


PLUGIN_URL_RE = re.compile(r"^(https:|git|ssh:|file:).*|.*\.(tar\.gz|tgz)$")


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def _checkout(ctx: Context, name: str, committish: str) -> None:
    """plugn update <name> <committish>: fetch, then check the committish out."""
    where = str(plugin_dir(ctx, name))
    _git("-C", where, "fetch", "--quiet", "--tags", "origin")
    result = _git("-C", where, "checkout", "--quiet", committish)
    if result.returncode != 0:
        result = _git("-C", where, "checkout", "--quiet", f"origin/{committish}")
    if result.returncode != 0:
        raise out.fail(
            f"Unable to check out {committish} for plugin {name}: {result.stderr.strip()}"
        )
    (plugin_dir(ctx, name) / ".standin-committish").write_text(committish + "\n")
    out.info1_quiet(f"Plugin {name} updated to {committish}")


def cmd_plugin_install(ctx: Context, argv: list[str]) -> None:
    """plugin:install [--core | <url> [--committish C] [--name N] [--skip-install-trigger]]
    (dokku/dokku plugins/plugin/subcommands/install, functions download_and_enable_plugin).
    The plugin's repository is cloned as plugn does; the stand-in then serves the plugin
    only if it is one it implements (postgres, redis): it never runs the plugin's code."""
    _require_root()
    flag = argv[0] if argv else ""
    if flag and flag != "--core" and not PLUGIN_URL_RE.match(flag):
        out.warn("First argument must be --core or url to plugin")
        out.warn("Valid prefixes: https:, git:, ssh:, file:")
        out.warn("Valid suffixes: .tar.gz, .tgz")
        raise out.fail("Please retry with valid arguments")
    if flag and flag != "--core":
        url, rest = flag, argv[1:]
        options: dict[str, str] = {}
        index = 0
        while index < len(rest):
            if rest[index] in ("--committish", "--name") and index + 1 < len(rest):
                options[rest[index][2:]] = rest[index + 1]
                index += 2
            else:
                index += 1
        name = options.get("name") or re.sub(r"\.git$", "", url.split("/")[-1]).removeprefix(
            "dokku-"
        )
        target = plugin_dir(ctx, name)
        out.info1_quiet(f"Cloning plugin repo {url} to {target}")
        if target.exists():
            raise out.fail(f"Plugin {name} is already installed")
        target.parent.mkdir(parents=True, exist_ok=True)
        cloned = _git("clone", "--quiet", url, str(target))
        if cloned.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise out.fail(f"Unable to clone {url}: {cloned.stderr.strip()}")
        if name not in SERVICE_PLUGINS or not getattr(ctx.settings, name):
            shutil.rmtree(target, ignore_errors=True)
            raise out.fail(
                f"The Dokku stand-in cannot run the {name} plugin ({url}):"
                " it implements only postgres and redis"
            )
        out.info1_quiet(f"Plugin {name} enabled")
        if options.get("committish"):
            _checkout(ctx, name, options["committish"])
        if installed_plugin(ctx, name) is None:
            shutil.rmtree(target, ignore_errors=True)
            raise out.fail(f"{url} has no plugin.toml: not a Dokku plugin")
    out.info1("Priming bash-completion cache")


def cmd_plugin_update(ctx: Context, argv: list[str]) -> None:
    """plugin:update <name> [<committish>] (plugins/plugin/functions update_plugin)."""
    _require_root()
    name = argv[0] if argv else ""
    if not name:
        raise out.fail("Please specify a plugin name")
    if not plugin_dir(ctx, name).exists():
        raise out.fail(f"Plugin ({name}) is not currently installed")
    committish = argv[1] if len(argv) > 1 else ""
    if committish:
        _checkout(ctx, name, committish)
    else:
        where = str(plugin_dir(ctx, name))
        _git("-C", where, "pull", "--quiet")
        (plugin_dir(ctx, name) / ".standin-committish").unlink(missing_ok=True)
        out.info1_quiet(f"Plugin {name} updated")


def cmd_plugin_uninstall(ctx: Context, argv: list[str]) -> None:
    _require_root()
    name = argv[0] if argv else ""
    if name in CORE_PLUGINS:
        raise out.fail("Cannot uninstall a core plugin")
    if not plugin_dir(ctx, name).exists():
        raise out.fail(f"Plugin ({name}) is not currently installed")
    shutil.rmtree(plugin_dir(ctx, name))
    out.info1_quiet(f"Plugin {name} uninstalled")


def cmd_plugin_install_dependencies(ctx: Context, argv: list[str]) -> None:
    """plugin:install-dependencies [--core]: `plugn trigger dependencies`. A Dokku host's
    plugins apt-install what they need here; the stand-in's packages are all in place, so
    it records the run (data/standin/dependencies-installed) and changes nothing else."""
    _require_root()
    marker = ctx.paths.standin("dependencies-installed")
    marker.parent.mkdir(parents=True, exist_ok=True)
    with open(marker, "a", encoding="utf-8") as handle:
        handle.write(f"{int(time.time())} {' '.join(argv) or '(all)'}\n")


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
    instances = current_instances(ctx, app)
    names = sorted(n for n in instances if not ps or n.startswith(f"{app}.{ps}."))
    for position, name in enumerate(names):
        dyno = name[len(app) + 1 :]
        for stamp, line in sup.log_lines(instances[name].container, num):
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
