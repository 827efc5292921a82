"""An in-memory `dokku` for unit tests: documented arguments, outputs and exit codes.

Only what the dokku_app / dokku_host modules call is implemented. Behaviour follows Dokku's
documentation and sources (exit 20 for a missing app, `No changes detected` for an
identical archive, `config:set` echoing the values it sets, restarts on config writes and
service links unless `--no-restart`, ...). Every call is recorded in `calls`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

SECRET_IN_BUILD_LOG = "build env: DJANGO_SECRET_KEY={secret}"


@dataclass
class App:
    config: dict[str, str] = field(default_factory=dict)
    domains: list[str] = field(default_factory=list)
    scale: dict[str, int] = field(default_factory=dict)
    deployed: bool = False
    git_sha: str = ""
    source_sha: str = ""
    restarts: int = 0
    releases: int = 0
    # The commit whose release is running (git_sha is the repository's last commit: a build
    # interrupted after `git:from-archive` committed leaves the two apart).
    running_sha: str = ""
    buildpacks: list[str] = field(default_factory=list)
    cert: str = ""
    cert_key: str = ""
    formation_in_app_json: bool = False


def fingerprint(key: str) -> str:
    raw = base64.b64decode(key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


class FakeDokku:
    def __init__(self, version: str = "0.37.4") -> None:
        self.version = version
        self.apps: dict[str, App] = {}
        self.plugins: set[str] = {"postgres", "redis"}
        self.services: dict[str, dict[str, set[str]]] = {"postgres": {}, "redis": {}}
        self.global_domains = ["dokku.me"]
        self.keys: dict[str, str] = {}
        self.calls: list[list[str]] = []
        self.stdin: list[bytes | None] = []
        self.release_fails = False
        self.restart_fails = False
        self.print_env_in_build = False
        self.build_interrupted = False
        self.files: dict[str, str] = {}  # host files certs:add reads
        self.letsencrypt_email: dict[str, str] = {}
        self.letsencrypt_cron = False

    # -- helpers for tests ------------------------------------------------------------

    def mutating_calls(self) -> list[list[str]]:
        readers = (
            "version",
            "apps:exists",
            "config:export",
            "plugin:installed",
            "domains:report",
            "git:report",
            "ps:report",
            "ssh-keys:list",
            "buildpacks:report",
            "certs:report",
            "certs:show",
            "letsencrypt:report",
            "letsencrypt:active",
        )
        out = []
        for call in self.calls:
            if call[0] in readers or call[0].endswith((":exists", ":linked")):
                continue
            if call[0] == "ps:scale" and len([a for a in call if "=" in a]) == 0:
                continue
            out.append(call)
        return out

    # -- the executable -----------------------------------------------------------------

    def __call__(self, argv: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        assert argv[0].endswith("dokku")
        args = list(argv[1:])
        self.calls.append(args)
        self.stdin.append(stdin)
        cmd, rest = args[0], args[1:]
        handler = getattr(self, "cmd_" + cmd.replace(":", "_").replace("-", "_"), None)
        if cmd.startswith(("postgres:", "redis:")) and cmd.split(":")[0] not in self.plugins:
            handler = None
        if handler is None:
            return 1, "", f" !     `{cmd}` is not a dokku command.\n"
        return handler(rest, stdin)

    def _app(self, name: str) -> App | None:
        return self.apps.get(name)

    @staticmethod
    def _missing(name: str) -> tuple[int, str, str]:
        return 20, "", f" !     App {name} does not exist\n"

    def cmd_version(self, rest, stdin):
        return 0, f"dokku version {self.version}\n", ""

    def cmd_apps_exists(self, rest, stdin):
        return (0, "", "") if rest[0] in self.apps else self._missing(rest[0])

    def cmd_apps_create(self, rest, stdin):
        if rest[0] in self.apps:
            return 1, "", " !     Name is already taken\n"
        # get_default_vhosts (plugins/domains/functions) skips global domains that are IPs.
        names = [d for d in self.global_domains if not d.replace(".", "").isdigit()]
        self.apps[rest[0]] = App(domains=[f"{rest[0]}.{d}" for d in names])
        return 0, f"-----> Creating {rest[0]}...\n", ""

    def cmd_config_export(self, rest, stdin):
        assert rest[:2] == ["--format", "json"]
        app = self._app(rest[2])
        if app is None:
            return self._missing(rest[2])
        return 0, json.dumps(app.config) + "\n", ""

    def _set(self, app: App, values: dict[str, str], restart: bool) -> str:
        app.config.update(values)
        if restart and app.deployed:
            app.restarts += 1
        lines = "".join(f"       {k}:  {v}\n" for k, v in values.items())
        return "-----> Setting config vars\n" + lines

    def _restart(self, app: App) -> tuple[int, str, str] | None:
        """A restart's result, or None when it succeeded."""
        if self.restart_fails:
            return (
                1,
                "-----> Deploying web (count=1)\n",
                " !     Could not start due to 1 failed checks (web.1)\n",
            )
        app.restarts += 1
        return None

    def cmd_config_set(self, rest, stdin):
        flags = [a for a in rest if a.startswith("--")]
        rest = [a for a in rest if not a.startswith("--")]
        app = self._app(rest[0])
        if app is None:
            return self._missing(rest[0])
        values = {}
        for pair in rest[1:]:
            key, _, value = pair.partition("=")
            if "--encoded" in flags:
                value = base64.b64decode(value).decode()
            values[key] = value
        return 0, self._set(app, values, "--no-restart" not in flags), ""

    def cmd_config_import(self, rest, stdin):
        restart = "--no-restart" not in rest
        assert rest[rest.index("--format") + 1] == "json"
        positional = [a for a in rest if not a.startswith("--") and a != "json"]
        app = self._app(positional[0])
        if app is None:
            return self._missing(positional[0])
        assert positional[1] == "-" and stdin is not None
        values = json.loads(stdin.decode())
        assert all(isinstance(v, str) for v in values.values())
        out = "-----> Reading config vars from stdin\n" + self._set(app, values, restart)
        return 0, out, ""

    def cmd_plugin_installed(self, rest, stdin):
        return (0, "", "") if rest[0] in self.plugins else (1, "", "")

    def cmd_plugin_install(self, rest, stdin):
        name = rest[rest.index("--name") + 1]
        self.plugins.add(name)
        self.services.setdefault(name, {})
        return 0, f"-----> Plugin {name} enabled\n", ""

    def _service_cmd(self, kind, sub, rest):
        services = self.services[kind]
        flags = [a for a in rest if a.startswith("-")]
        rest = [a for a in rest if not a.startswith("-")]
        name = rest[0]
        if sub == "create":
            if name in services:
                return 1, "", f" !     {kind} service {name} already exists\n"
            services[name] = set()
            return 0, f"       {kind} container created: {name}\n", ""
        if name not in services:
            return 1, "", f" !     {kind} service {name} does not exist\n"
        if sub == "exists":
            return 0, f"-----> Service {name} exists\n", ""
        app = self._app(rest[1])
        if app is None:
            return self._missing(rest[1])
        if sub == "linked":
            if rest[1] in services[name]:
                return 0, f"-----> Service {name} is linked to {rest[1]}\n", ""
            return 1, "", f" !     Service {name} is not linked to {rest[1]}\n"
        if sub == "link":
            if rest[1] in services[name]:
                return 1, "", f" !     Already linked as {kind.upper()}_URL\n"
            services[name].add(rest[1])
            var = "DATABASE_URL" if kind == "postgres" else "REDIS_URL"
            scheme = "postgres" if kind == "postgres" else "redis"
            url = f"{scheme}://user:pw-{name}-secretpass@dokku-{kind}-{name}:1/{name}"
            # service_link (dokku-postgres common-functions): `--no-restart` skips the restart;
            # otherwise config:set's triggerRestart only WARNS when the restart fails and the
            # link exits 0 (dokku/dokku plugins/config/config.go).
            no_restart = "--no-restart" in flags or "-n" in flags
            out = self._set(app, {var: url}, restart=False)
            if not no_restart and app.deployed:
                failed = self._restart(app)
                if failed is not None:
                    return 0, out, " !     Failure while restarting app: exit status 1\n"
            return 0, out, ""
        raise AssertionError(sub)

    def cmd_postgres_exists(self, rest, stdin):
        return self._service_cmd("postgres", "exists", rest)

    def cmd_postgres_create(self, rest, stdin):
        return self._service_cmd("postgres", "create", rest)

    def cmd_postgres_linked(self, rest, stdin):
        return self._service_cmd("postgres", "linked", rest)

    def cmd_postgres_link(self, rest, stdin):
        return self._service_cmd("postgres", "link", rest)

    def cmd_redis_exists(self, rest, stdin):
        return self._service_cmd("redis", "exists", rest)

    def cmd_redis_create(self, rest, stdin):
        return self._service_cmd("redis", "create", rest)

    def cmd_redis_linked(self, rest, stdin):
        return self._service_cmd("redis", "linked", rest)

    def cmd_redis_link(self, rest, stdin):
        return self._service_cmd("redis", "link", rest)

    def cmd_domains_report(self, rest, stdin):
        if rest[0] == "--global":
            assert rest[1] == "--domains-global-vhosts"
            return 0, " ".join(self.global_domains) + "\n", ""
        app = self._app(rest[0])
        if app is None:
            return self._missing(rest[0])
        assert rest[1] == "--domains-app-vhosts"
        return 0, " ".join(app.domains) + "\n", ""

    def cmd_domains_set(self, rest, stdin):
        app = self._app(rest[0])
        if app is None:
            return self._missing(rest[0])
        app.domains = list(rest[1:])
        return 0, "-----> Set domains\n", ""

    def cmd_domains_set_global(self, rest, stdin):
        self.global_domains = list(rest)
        return 0, f"-----> Set {' '.join(rest)}\n", ""

    def cmd_git_report(self, rest, stdin):
        app = self._app(rest[0])
        if app is None:
            return self._missing(rest[0])
        assert rest[1] == "--git-sha"
        return 0, app.git_sha + "\n", ""

    def cmd_git_from_archive(self, rest, stdin):
        assert rest[0] == "--archive-type" and rest[1] in ("tar", "tar.gz", "zip")
        name, source = rest[2], rest[3]
        app = self._app(name)
        if app is None:
            return self._missing(name)
        assert source == "--" and stdin is not None
        out = f"-----> Fetching {rest[1]} file from stdin\n"
        digest = hashlib.sha256(stdin).hexdigest()
        if digest == app.source_sha:
            # git-from-directory returns 1 after this warning (set -e makes it the exit code).
            return (
                1,
                out,
                (
                    " !     No changes detected, skipping git commit\n"
                    " !     Call 'ps:rebuild' on app to rebuild the app from existing source\n"
                ),
            )
        out += "-----> Building with herokuish\n"
        if self.print_env_in_build:
            secret = app.config.get("DJANGO_SECRET_KEY", "")
            out += SECRET_IN_BUILD_LOG.format(secret=secret) + "\n"
        out += "-----> Running release command: python app/manage.py migrate --noinput\n"
        if self.release_fails:
            # Dokku keeps the running release and rolls the repository back.
            return (
                1,
                out + "django.db.utils.ProgrammingError: boom\n",
                (" !     Execution of release command failed: python app/manage.py migrate\n"),
            )
        app.source_sha = digest
        app.git_sha = hashlib.sha1(stdin).hexdigest()[:7]  # noqa: S324 - a fake commit id
        app.config["GIT_REV"] = app.git_sha  # git_build sets it before building (plugins/git)
        if self.build_interrupted:
            # The commit is made, the build never finishes: the old release keeps running.
            return 1, out, " !     Interrupted\n"
        return self._release(app, out)

    def _release(self, app: App, out: str) -> tuple[int, str, str]:
        app.running_sha = app.git_sha
        app.deployed = True
        app.releases += 1
        app.scale.setdefault("web", 1)
        return 0, out + "=====> Application deployed\n", ""

    def cmd_ps_rebuild(self, rest, stdin):
        app = self._app(rest[0])
        if app is None:
            return self._missing(rest[0])
        if not app.git_sha:
            return 1, "", " !     No source to rebuild\n"
        out = "-----> Building with herokuish\n"
        if self.release_fails:
            return 1, out, " !     Execution of release command failed\n"
        return self._release(app, out)

    def cmd_buildpacks_report(self, rest, stdin):
        app = self._app(rest[0])
        if app is None:
            return self._missing(rest[0])
        assert rest[1] == "--buildpacks-list"
        return 0, ",".join(app.buildpacks) + "\n", ""  # plugins/buildpacks/report.go reportList

    def cmd_buildpacks_clear(self, rest, stdin):
        self.apps[rest[0]].buildpacks = []
        return 0, "", ""

    def cmd_buildpacks_add(self, rest, stdin):
        self.apps[rest[0]].buildpacks.append(rest[1])
        return 0, "", ""

    def cmd_certs_report(self, rest, stdin):
        app = self._app(rest[0])
        if app is None:
            return self._missing(rest[0])
        assert rest[1] == "--ssl-enabled"
        return 0, ("true" if app.cert else "false") + "\n", ""

    def cmd_certs_show(self, rest, stdin):
        app = self._app(rest[0])
        if not app.cert:
            return 1, "", f" !     {rest[0]} doesn't have an SSL endpoint defined\n"
        return 0, app.cert if rest[1] == "crt" else app.cert_key, ""

    # dokku-letsencrypt (command-functions): report, active, set, enable, cron-job.
    def cmd_letsencrypt_report(self, rest, stdin):
        if rest[1] == "--letsencrypt-autorenew":
            return 0, ("true" if self.letsencrypt_cron else "false") + "\n", ""
        assert rest[1] == "--letsencrypt-email"
        return 0, self.letsencrypt_email.get(rest[0], "") + "\n", ""

    def cmd_letsencrypt_active(self, rest, stdin):
        return 0, ("true" if self.apps[rest[0]].cert == "letsencrypt" else "false") + "\n", ""

    def cmd_letsencrypt_set(self, rest, stdin):
        assert rest[1] == "email"
        self.letsencrypt_email[rest[0]] = rest[2]
        return 0, "", ""

    def cmd_letsencrypt_enable(self, rest, stdin):
        if rest[0] not in self.letsencrypt_email:
            return 1, "", " !     Missing email\n"
        self.apps[rest[0]].cert = "letsencrypt"
        return 0, "-----> Certificate retrieved successfully.\n", ""

    def cmd_letsencrypt_cron_job(self, rest, stdin):
        assert rest == ["--add"]
        self.letsencrypt_cron = True
        return 0, "", ""

    def cmd_certs_remove(self, rest, stdin):
        self.apps[rest[0]].cert = ""
        return 0, "", ""

    def cmd_certs_add(self, rest, stdin):
        app = self._app(rest[0])
        app.cert, app.cert_key = self.files[rest[1]], self.files[rest[2]]
        return 0, "-----> Adding double-boiler to certs\n", ""

    def cmd_ps_report(self, rest, stdin):
        app = self._app(rest[0])
        if app is None:
            return self._missing(rest[0])
        values = {
            "--deployed": "true" if app.deployed else "false",
            "--ps-can-scale": "false" if app.formation_in_app_json else "true",
        }
        return 0, values[rest[1]] + "\n", ""

    def cmd_ps_restart(self, rest, stdin):
        app = self._app(rest[0])
        if app is None:
            return self._missing(rest[0])
        failed = self._restart(app)
        return failed or (0, f"-----> Restarting {rest[0]}\n", "")

    def cmd_ps_scale(self, rest, stdin):
        app = self._app(rest[0])
        if app is None:
            return self._missing(rest[0])
        if len(rest) > 1 and app.formation_in_app_json:
            return (
                1,
                "",
                (
                    f" !     App {rest[0]} contains an app.json file with a formations key and"
                    " cannot be manually scaled\n"
                ),
            )
        if len(rest) == 1:
            body = "".join(f"{(p + ':').ljust(5)} {n}\n" for p, n in sorted(app.scale.items()))
            header = f"-----> Scaling for {rest[0]}\nproctype: qty\n--------: ---\n"
            return 0, header + body, ""
        for pair in rest[1:]:
            proc, _, count = pair.partition("=")
            app.scale[proc] = int(count)
        return 0, f"-----> Scaling {rest[0]} processes\n", ""

    def cmd_ssh_keys_list(self, rest, stdin):
        if not self.keys:
            return 1, "", " !     authorized_keys not found for dokku\n"
        lines = "".join(
            f'{fp} NAME="{name}" SSHCOMMAND_ALLOWED_KEYS="no-agent-forwarding"\n'
            for name, fp in self.keys.items()
        )
        return 0, lines, ""

    def cmd_ssh_keys_add(self, rest, stdin):
        assert stdin is not None
        name = rest[0]
        if name in self.keys:
            return 1, "", " !     Duplicate ssh key name\n"
        self.keys[name] = fingerprint(stdin.decode().strip())
        return 0, self.keys[name] + "\n", ""

    def cmd_ssh_keys_remove(self, rest, stdin):
        if rest[0] not in self.keys:
            return 1, "", " !     No ssh key named {rest[0]}\n"
        del self.keys[rest[0]]
        return 0, "", ""
