"""Where the stand-in keeps things, laid out like a Dokku host.

- ``$DOKKU_ROOT`` (``/home/dokku``): one directory per app (a bare git repository plus
  ``ENV``, ``VHOST``, ``nginx.conf``), the global ``ENV`` and ``VHOST`` files and
  ``.ssh/authorized_keys``.
- ``$DOKKU_LIB_ROOT`` (``/var/lib/dokku``): ``VERSION``, plugin properties under
  ``config/<plugin>/<app>/<property>``, datastore services under ``services/<plugin>/``,
  and the stand-in's own release directories under ``data/standin/``.

The stand-in's settings (not Dokku's) come from a JSON file, ``/etc/dokku-standin/config.json``
or the path in ``DOKKU_STANDIN_CONFIG``; every key is optional.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG_PATH = "/etc/dokku-standin/config.json"

APP_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
APP_NAME_OLD_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass
class Settings:
    dokku_root: str = "/home/dokku"
    lib_root: str = "/var/lib/dokku"
    version: str = "0.38.27"
    # The port every web process binds (Dokku's containers all use 5000 inside).
    port: int = 5000
    # "systemd" (units with Restart=on-failure) or "process" (detached supervisor processes,
    # for machines without systemd such as the stand-in's own pytest run).
    supervisor: str = "systemd"
    systemd_unit_dir: str = "/etc/systemd/system"
    # User the app processes and builds run as (herokuish runs apps as an unprivileged user).
    app_user: str = ""
    python: str = "/usr/bin/python3"
    pip_cache_dir: str = "/var/cache/dokku-standin/pip"
    pip_extra_args: list[str] = field(default_factory=list)
    # nginx: where the per-app nginx.conf files are included from, and how to reload.
    nginx: bool = True
    nginx_reload: list[str] = field(default_factory=lambda: ["systemctl", "reload", "nginx"])
    nginx_test: list[str] = field(default_factory=lambda: ["nginx", "-t", "-q"])
    # Datastore plugins backed by the instance's own servers; off: the plugin is absent.
    postgres: bool = True
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_admin: list[str] = field(default_factory=lambda: ["runuser", "-u", "postgres", "--"])
    redis: bool = True
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    # /etc/hosts gets "127.0.0.1 dokku-<plugin>-<service>" so service URLs resolve on the VM.
    hosts_file: str = "/etc/hosts"
    # Seconds of Dokku's defaults, shortened only where a test asks for it.
    checks_default_wait: int = 10
    wait_to_retire: int = 60
    stop_timeout: int = 30
    releases_kept: int = 3

    @classmethod
    def load(cls) -> Settings:
        path = os.environ.get("DOKKU_STANDIN_CONFIG", DEFAULT_CONFIG_PATH)
        data: dict = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}")
        return cls(**data)


class Paths:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.dokku_root)
        self.lib = Path(settings.lib_root)

    def app(self, app: str) -> Path:
        return self.root / app

    def property_dir(self, plugin: str, app: str) -> Path:
        return self.lib / "config" / plugin / app

    def services(self, plugin: str) -> Path:
        return self.lib / "services" / plugin

    def standin(self, *parts: str) -> Path:
        return self.lib.joinpath("data", "standin", *parts)


# -- files ------------------------------------------------------------------------------


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Atomic write: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_file(path: Path, default: str = "") -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default


# -- properties (common.PropertyGet/PropertyWrite) -----------------------------------------


class Properties:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def _file(self, plugin: str, app: str, name: str) -> Path:
        return self.paths.property_dir(plugin, app) / name

    def get(self, plugin: str, app: str, name: str, default: str = "") -> str:
        value = read_file(self._file(plugin, app, name), default="\0")
        return default if value == "\0" else value.rstrip("\n")

    def exists(self, plugin: str, app: str, name: str) -> bool:
        return self._file(plugin, app, name).exists()

    def set(self, plugin: str, app: str, name: str, value: str) -> None:
        write_file(self._file(plugin, app, name), value + "\n", 0o640)

    def delete(self, plugin: str, app: str, name: str) -> None:
        self._file(plugin, app, name).unlink(missing_ok=True)

    def get_list(self, plugin: str, app: str, name: str) -> list[str]:
        text = read_file(self._file(plugin, app, name))
        return [line for line in text.splitlines() if line]

    def set_list(self, plugin: str, app: str, name: str, values: list[str]) -> None:
        write_file(self._file(plugin, app, name), "".join(f"{v}\n" for v in values), 0o640)

    def destroy_app(self, app: str) -> None:
        config = self.paths.lib / "config"
        if not config.is_dir():
            return
        for plugin_dir in config.iterdir():
            target = plugin_dir / app
            if target.is_dir():
                for item in target.iterdir():
                    item.unlink()
                target.rmdir()


# -- env files (the config plugin stores them with godotenv) --------------------------------

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", '"': '\\"', "!": "\\!", "$": "\\$", "`": "\\`"}


def _quote(value: str) -> str:
    if re.fullmatch(r"-?\d+", value):
        return value
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def dump_env(env: dict[str, str]) -> str:
    """godotenv.Marshal: sorted ``KEY="value"`` lines (integers unquoted)."""
    return "".join(f"{key}={_quote(env[key])}\n" for key in sorted(env))


_UNESCAPES = {"n": "\n", "r": "\r"}


def parse_env(text: str) -> dict[str, str]:
    """Read what dump_env writes (and plain ``export KEY=value`` / single-quoted lines)."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = key.strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            out: list[str] = []
            chars = iter(value[1:-1])
            for ch in chars:
                if ch == "\\":
                    nxt = next(chars, "")
                    out.append(_UNESCAPES.get(nxt, nxt))
                else:
                    out.append(ch)
            value = "".join(out)
        env[key] = value
    return env


# -- apps ---------------------------------------------------------------------------------


def valid_app_name(app: str) -> str | None:
    """None when valid, else Dokku's message (common.IsValidAppName)."""
    if not app:
        return "Please specify an app to run the command on"
    if APP_NAME_RE.match(app):
        return None
    return (
        "App name must begin with lowercase alphanumeric character, and may only contain"
        " lowercase alphanumerics, dots, and hyphens"
    )


def list_apps(paths: Paths) -> list[str]:
    if not paths.root.is_dir():
        return []
    return sorted(
        entry.name
        for entry in paths.root.iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    )
