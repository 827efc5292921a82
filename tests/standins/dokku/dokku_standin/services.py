"""postgres:* and redis:*, after the dokku-postgres and dokku-redis plugins (common-functions).

The plugins run one container per service; the stand-in backs every service with the VM's
own server instead: a PostgreSQL role and database per service (so the user part of
DATABASE_URL is the service's database name, not the container's `postgres` superuser),
and a password on Redis's default user per service (services share Redis's keyspace).
The URL's host is the plugin's `dokku-<plugin>-<service>` alias, which /etc/hosts points at
127.0.0.1, and its port the plugin's (5432, 6379).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import out
from .core import Context
from .state import read_file, write_file

SERVICE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
COLORS = [
    "AQUA",
    "BLACK",
    "BLUE",
    "FUCHSIA",
    "GRAY",
    "GREEN",
    "LIME",
    "MAROON",
    "NAVY",
    "OLIVE",
    "PURPLE",
    "RED",
    "SILVER",
    "TEAL",
    "WHITE",
    "YELLOW",
]


@dataclass(frozen=True)
class Plugin:
    prefix: str  # postgres
    service: str  # Postgres
    scheme: str
    port: int
    default_alias: str
    alt_alias: str
    image: str
    version: str


POSTGRES = Plugin(
    "postgres", "Postgres", "postgres", 5432, "DATABASE", "DOKKU_POSTGRES", "postgres", "18.4"
)
REDIS = Plugin("redis", "Redis", "redis", 6379, "REDIS", "DOKKU_REDIS", "redis", "8.8.0")


def root(ctx: Context, plugin: Plugin, service: str = "") -> Path:
    base = ctx.paths.services(plugin.prefix)
    return base / service if service else base


def dns_hostname(plugin: Plugin, service: str) -> str:
    return f"dokku.{plugin.prefix}.{service}".replace(".", "-").replace("_", "-")


def database_name(ctx: Context, plugin: Plugin, service: str) -> str:
    path = root(ctx, plugin, service) / "DATABASE_NAME"
    if not path.exists():
        write_file(path, service + "\n")
    return read_file(path).strip()


def password(ctx: Context, plugin: Plugin, service: str) -> str:
    return read_file(root(ctx, plugin, service) / "PASSWORD").strip()


def service_url(ctx: Context, plugin: Plugin, service: str) -> str:
    host = dns_hostname(plugin, service)
    if plugin is POSTGRES:
        user = database_name(ctx, plugin, service)
        return (
            f"postgres://{user}:{password(ctx, plugin, service)}@{host}:{plugin.port}/"
            f"{database_name(ctx, plugin, service)}"
        )
    return f"redis://:{password(ctx, plugin, service)}@{host}:{plugin.port}"


def services(ctx: Context, plugin: Plugin) -> list[str]:
    base = root(ctx, plugin)
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def verify_service(ctx: Context, plugin: Plugin, service: str) -> None:
    if not service:
        raise out.fail("SERVICE must not be empty")
    if not root(ctx, plugin, service).is_dir():
        raise out.fail(f"{plugin.service} service {service} does not exist")


def links(ctx: Context, plugin: Plugin, service: str) -> list[str]:
    return [a for a in read_file(root(ctx, plugin, service) / "LINKS").split() if a]


def _hosts_entry(ctx: Context, hostname: str, present: bool) -> None:
    path = Path(ctx.settings.hosts_file)
    lines = read_file(path).splitlines()
    kept = [line for line in lines if line.split()[1:2] != [hostname]]
    if present:
        kept.append(f"127.0.0.1 {hostname}  # dokku stand-in service alias")
    if kept != lines:
        # /etc/hosts is often a bind mount: rewrite in place, never replace the file.
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(kept) + "\n")


# -- the backing servers ------------------------------------------------------------------


def _psql(ctx: Context, sql: str) -> None:
    """Run SQL as the postgres superuser; the SQL (with passwords) goes on stdin."""
    args = [
        *ctx.settings.postgres_admin,
        "psql",
        "-v",
        "ON_ERROR_STOP=1",
        "-q",
        "-X",
        "-h",
        ctx.settings.postgres_host,
        "-p",
        str(ctx.settings.postgres_port),
        "postgres",
    ]
    if ctx.settings.postgres_host in ("127.0.0.1", "localhost"):
        args = [
            *ctx.settings.postgres_admin,
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-X",
            "-p",
            str(ctx.settings.postgres_port),
            "postgres",
        ]
    result = subprocess.run(args, input=sql, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise out.fail(f"PostgreSQL said: {result.stderr.strip()}")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _postgres_create(ctx: Context, service: str) -> None:
    name = database_name(ctx, POSTGRES, service)
    pw = password(ctx, POSTGRES, service)
    _psql(ctx, f"CREATE ROLE {_quote_ident(name)} LOGIN PASSWORD {_quote_literal(pw)};\n")
    _psql(
        ctx,
        f"CREATE DATABASE {_quote_ident(name)} OWNER {_quote_ident(name)} ENCODING 'UTF8'"
        " TEMPLATE template0;\n",
    )


def _postgres_destroy(ctx: Context, service: str) -> None:
    name = database_name(ctx, POSTGRES, service)
    _psql(
        ctx,
        f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE);\n"
        f"DROP ROLE IF EXISTS {_quote_ident(name)};\n",
    )


def _redis_command(ctx: Context, *args: str, auth: str | None = None) -> str:
    def encode(items: tuple[str, ...]) -> bytes:
        parts = [f"*{len(items)}\r\n".encode()]
        for item in items:
            data = item.encode()
            parts.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
        return b"".join(parts)

    with socket.create_connection((ctx.settings.redis_host, ctx.settings.redis_port), 5) as sock:
        stream = sock.makefile("rb")
        if auth:
            sock.sendall(encode(("AUTH", auth)))
            stream.readline()
        sock.sendall(encode(args))
        reply = stream.readline().decode().rstrip("\r\n")
    if reply.startswith("-"):
        raise out.fail(f"Redis said: {reply[1:]}")
    return reply


def _redis_sync_passwords(ctx: Context, removed: str | None = None) -> None:
    """Redis's default user accepts exactly the passwords of the existing redis services."""
    passwords = [password(ctx, REDIS, s) for s in services(ctx, REDIS)]
    candidates = [*passwords, *([removed] if removed else [])]
    auth = None
    for candidate in [None, *candidates]:
        try:
            _redis_command(ctx, "PING", auth=candidate)
            auth = candidate
            break
        except out.DokkuExit:
            continue
    rules = ["default", "on", "resetpass", "~*", "&*", "+@all"]
    rules += [f">{p}" for p in passwords] if passwords else ["nopass"]
    _redis_command(ctx, "ACL", "SETUSER", *rules, auth=auth)
    new_auth = passwords[0] if passwords else None
    # Persisting is best effort: a read-only redis.conf keeps the live setting.
    with contextlib.suppress(out.DokkuExit):
        _redis_command(ctx, "CONFIG", "REWRITE", auth=new_auth)


def _backend_enabled(ctx: Context, plugin: Plugin) -> bool:
    """The plugin is installed (plugin:install) and the stand-in's backend for it is on."""
    from .misc import installed_plugin

    return installed_plugin(ctx, "postgres" if plugin is POSTGRES else "redis") is not None


# -- commands -------------------------------------------------------------------------------


def info_map(ctx: Context, plugin: Plugin, service: str) -> list[tuple[str, str]]:
    service_root = root(ctx, plugin, service)
    linked = links(ctx, plugin, service)
    suffix = "data" if plugin is POSTGRES else "config"
    return [
        ("--config-dir", f"{service_root}/{suffix}"),
        ("--config-options", read_file(service_root / "CONFIG_OPTIONS").strip()),
        ("--data-dir", f"{service_root}/data"),
        ("--dsn", service_url(ctx, plugin, service)),
        ("--exposed-ports", "-"),
        ("--id", read_file(service_root / "ID").strip()),
        ("--internal-ip", "127.0.0.1"),
        ("--initial-network", ""),
        ("--links", " ".join(linked) if linked else "-"),
        ("--post-create-network", ""),
        ("--post-start-network", ""),
        ("--service-root", str(service_root)),
        ("--status", "running"),
        ("--version", f"{plugin.image}:{plugin.version}"),
    ]


def print_info(ctx: Context, plugin: Plugin, service: str, flag: str = "") -> None:
    entries = info_map(ctx, plugin, service)
    if not flag:
        out.info2_quiet(f"{service} {plugin.prefix} service information")
        for key, value in entries:
            label = key[2:].replace("-", " ")
            label = label[:1].upper() + label[1:]
            out.verbose(f"{label:<20} {value:<25}")
        return
    for key, value in entries:
        if key == flag:
            out.log(value)
            return
    valid = " ".join(key for key, _ in entries)
    raise out.fail(f"Invalid flag passed, valid flags: {valid}")


def parse_service_flags(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """service_parse_args: long and short options anywhere after the names (getopts)."""
    long_to_short = {
        "--alias": "a",
        "--config-options": "c",
        "--custom-env": "C",
        "--database": "d",
        "--image-version": "I",
        "--initial-network": "N",
        "--image": "i",
        "--memory": "m",
        "--no-restart": "n",
        "--password": "p",
        "--post-create-network": "P",
        "--post-start-network": "S",
        "--querystring": "q",
        "--restart-apps": "R",
        "--root-password": "r",
        "--shm-size": "s",
        "--user": "u",
    }
    takes_value = set("acCdiImNpPqRrsSu")
    positional: list[str] = []
    opts: dict[str, str] = {}
    items = [long_to_short.get(a, a) if a.startswith("--") else a for a in argv]
    index = 0
    while index < len(items):
        item = items[index]
        index += 1
        short = item if len(item) == 1 and item in long_to_short.values() else None
        if short is None and item.startswith("-") and len(item) == 2:
            short = item[1]
        if short is None:
            positional.append(item)
            continue
        if short == "n":
            opts["n"] = "true"
        elif short in takes_value and index < len(items):
            opts[short] = items[index]
            index += 1
    return positional, opts


def cmd_create(ctx: Context, plugin: Plugin, argv: list[str]) -> None:
    service = argv[0] if argv else ""
    if not service or not SERVICE_NAME_RE.match(service):
        raise out.fail(
            "Please specify a valid name for the service. Valid characters are: [A-Za-z0-9_]+"
        )
    service_root = root(ctx, plugin, service)
    if service_root.is_dir():
        raise out.fail(f"{plugin.service} service {service} already exists")
    _, opts = parse_service_flags(argv[1:])
    (service_root / "data").mkdir(parents=True)
    (service_root / "LINKS").touch()
    pw = secrets.token_hex(16)
    if opts.get("p"):
        pw = opts["p"]
        out.warn("Specified password may not be as secure as the auto-generated password")
    write_file(service_root / "PASSWORD", pw + "\n", 0o640)
    write_file(service_root / "ID", secrets.token_hex(32) + "\n")
    write_file(service_root / "IMAGE", plugin.image + "\n")
    write_file(service_root / "IMAGE_VERSION", plugin.version + "\n")
    if plugin is POSTGRES:
        write_file(
            service_root / "DATABASE_NAME", service.replace(".", "_").replace("-", "_") + "\n"
        )
    try:
        out.verbose_quiet("Waiting for container to be ready")
        if plugin is POSTGRES:
            out.verbose_quiet("Creating container database")
            _postgres_create(ctx, service)
            out.verbose_quiet("Securing connection to database")
        else:
            _redis_sync_passwords(ctx)
    except out.DokkuExit:
        shutil.rmtree(service_root, ignore_errors=True)
        raise
    _hosts_entry(ctx, dns_hostname(plugin, service), present=True)
    out.info2(f"{plugin.service} container created: {service}")
    print_info(ctx, plugin, service)


def cmd_exists(ctx: Context, plugin: Plugin, argv: list[str]) -> None:
    service = argv[0] if argv else ""
    if not service:
        raise out.fail("Please specify a valid name for the service")
    verify_service(ctx, plugin, service)
    out.info1(f"Service {service} exists")


def cmd_list(ctx: Context, plugin: Plugin, argv: list[str]) -> None:
    names = services(ctx, plugin)
    if not names:
        out.warn(f"There are no {plugin.service} services")
        return
    out.info2_quiet(f"{plugin.service} services")
    for name in names:
        out.log(name)


def cmd_info(ctx: Context, plugin: Plugin, argv: list[str]) -> None:
    service = argv[0] if argv else ""
    if not service:
        raise out.fail("Please specify a valid name for the service")
    verify_service(ctx, plugin, service)
    print_info(ctx, plugin, service, argv[1] if len(argv) > 1 else "")


def _service_and_app(ctx: Context, plugin: Plugin, argv: list[str]) -> tuple[str, str, dict]:
    positional, opts = parse_service_flags(argv)
    service = positional[0] if positional else ""
    app = positional[1] if len(positional) > 1 else os.environ.get("DOKKU_APP_NAME", "")
    if not service:
        raise out.fail("Please specify a valid name for the service")
    if not app:
        raise out.fail("Please specify an app to run the command on")
    ctx.verify_app(app)
    verify_service(ctx, plugin, service)
    return service, app, opts


def _link_key(ctx: Context, plugin: Plugin, service: str, app: str) -> str | None:
    url = service_url(ctx, plugin, service)
    for key, value in ctx.load_env(app).items():
        if url in value:
            return key
    return None


def cmd_link(ctx: Context, plugin: Plugin, argv: list[str]) -> None:
    from .configcmd import set_many

    service, app, opts = _service_and_app(ctx, plugin, argv)
    env = ctx.load_env(app)
    url = service_url(ctx, plugin, service)
    if opts.get("a"):
        alias = opts["a"].upper().removesuffix("_URL")
        if f"{alias}_URL" in env:
            raise out.fail(f"Specified alias {alias} already in use")
    else:
        alias = plugin.default_alias
        if f"{alias}_URL" in env:
            alias = next(
                (
                    f"{plugin.alt_alias}_{c}"
                    for c in COLORS
                    if f"{plugin.alt_alias}_{c}_URL" not in env
                ),
                "",
            )
        if not alias:
            raise out.fail("Unable to use default or generated URL alias")
    existing = _link_key(ctx, plugin, service, app)
    if existing:
        raise out.fail(f"Already linked as {existing}")
    service_root = root(ctx, plugin, service)
    linked = links(ctx, plugin, service)
    if app not in linked:
        write_file(service_root / "LINKS", "".join(f"{a}\n" for a in sorted([*linked, app])))
    if opts.get("q"):
        url = f"{url}?{opts['q'].lstrip('?')}"
    no_restart = (
        "--no-restart" in ctx.global_flags or opts.get("n") == "true" or opts.get("R") == "false"
    )
    with ctx.app_lock(app):
        set_many(ctx, app, {f"{alias}_URL": url}, restart=not no_restart)
    if no_restart:
        out.verbose("Skipping restart of linked app")


def cmd_unlink(ctx: Context, plugin: Plugin, argv: list[str]) -> None:
    from .configcmd import cmd_unset

    service, app, opts = _service_and_app(ctx, plugin, argv)
    key = _link_key(ctx, plugin, service, app)
    linked = [a for a in links(ctx, plugin, service) if a != app]
    write_file(root(ctx, plugin, service) / "LINKS", "".join(f"{a}\n" for a in linked))
    if not key:
        raise out.fail(f"Not linked to app {app}")
    no_restart = "--no-restart" in ctx.global_flags or opts.get("n") == "true"
    cmd_unset(ctx, (["--no-restart"] if no_restart else []) + [app, key])
    if no_restart:
        out.verbose("Skipping restart of linked app")


def cmd_linked(ctx: Context, plugin: Plugin, argv: list[str]) -> None:
    service, app, _ = _service_and_app(ctx, plugin, argv)
    if not _link_key(ctx, plugin, service, app):
        out.warn(f"Service {service} is not linked to {app}")
        raise out.DokkuExit(1)
    out.info1(f"Service {service} is linked to {app}")


def cmd_links(ctx: Context, plugin: Plugin, argv: list[str]) -> None:
    service = argv[0] if argv else ""
    if not service:
        raise out.fail("Please specify a valid name for the service")
    verify_service(ctx, plugin, service)
    for app in links(ctx, plugin, service):
        out.log(app)


def cmd_app_links(ctx: Context, plugin: Plugin, argv: list[str]) -> None:
    app = argv[0] if argv else os.environ.get("DOKKU_APP_NAME", "")
    if not app:
        raise out.fail("Please specify an app to run the command on")
    ctx.verify_app(app)
    for service in services(ctx, plugin):
        if app in links(ctx, plugin, service):
            out.log(service)


def cmd_destroy(ctx: Context, plugin: Plugin, argv: list[str]) -> None:
    service = argv[0] if argv else ""
    force_flag = argv[1] if len(argv) > 1 else ""
    if not service:
        raise out.fail("Please specify a valid name for the service")
    verify_service(ctx, plugin, service)
    if links(ctx, plugin, service):
        raise out.fail("Cannot delete linked service")
    forced = force_flag in ("force", "-f", "--force") or "--force" in ctx.global_flags
    if not forced:
        import sys

        out.warn("WARNING: Potentially Destructive Action")
        out.warn(f"This command will destroy {service} {plugin.service} service.")
        out.warn(f'To proceed, type "{service}"')
        out.log("")
        sys.stdout.write("> ")
        sys.stdout.flush()
        if sys.stdin.readline().strip() != service:
            out.warn(f"Confirmation did not match {service}. Aborted.")
            raise out.DokkuExit(1)
    out.info2_quiet(f"Deleting {service}")
    if plugin is POSTGRES:
        _postgres_destroy(ctx, service)
    out.verbose_quiet("Removing data")
    service_root = root(ctx, plugin, service)
    removed_password = password(ctx, plugin, service)
    shutil.rmtree(service_root)
    if plugin is REDIS:
        _redis_sync_passwords(ctx, removed=removed_password)
    _hosts_entry(ctx, dns_hostname(plugin, service), present=False)
    out.info2(f"{plugin.service} container deleted: {service}")


def unlink_all(ctx: Context, app: str) -> None:
    """pre-delete of an app: forget it in every service's LINKS file."""
    for plugin in (POSTGRES, REDIS):
        for service in services(ctx, plugin):
            linked = links(ctx, plugin, service)
            if app in linked:
                write_file(
                    root(ctx, plugin, service) / "LINKS",
                    "".join(f"{a}\n" for a in linked if a != app),
                )


COMMANDS = {
    "create": cmd_create,
    "exists": cmd_exists,
    "list": cmd_list,
    "info": cmd_info,
    "link": cmd_link,
    "unlink": cmd_unlink,
    "linked": cmd_linked,
    "links": cmd_links,
    "app-links": cmd_app_links,
    "destroy": cmd_destroy,
}


def dispatch(ctx: Context, plugin: Plugin, sub: str, argv: list[str]) -> bool:
    handler = COMMANDS.get(sub)
    if handler is None or not _backend_enabled(ctx, plugin):
        return False
    handler(ctx, plugin, argv)
    return True
