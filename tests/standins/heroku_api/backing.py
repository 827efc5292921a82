"""Real backing services for the stand-in's add-ons.

``heroku-postgresql`` add-ons get a database and a role of their own in a
private PostgreSQL cluster (Debian ``postgresql`` package) kept in the state
dir and listening on 127.0.0.1 only; like Heroku Postgres it accepts SSL
connections only. ``heroku-redis`` add-ons share one ``redis-server`` with a
password over TLS (``rediss://``, self-signed, as Heroku Redis 6+). Both start
on the first add-on that needs them and stop with the stand-in.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


class BackingError(RuntimeError):
    pass


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def preflight() -> list[str]:
    """What this machine lacks to back add-ons (Debian package names to install)."""
    problems = []
    try:
        bindir = _pg_bindir()
    except BackingError:
        problems.append("PostgreSQL server binaries (apt-get install postgresql)")
    else:
        if not shutil.which("psql") and not (bindir / "psql").exists():
            problems.append("psql (apt-get install postgresql-client)")
    if not shutil.which("redis-server"):
        problems.append("redis-server (apt-get install redis-server)")
    if not shutil.which("openssl"):
        problems.append("openssl (apt-get install openssl)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            problems.append("a 'postgres' user to run PostgreSQL as (the postgresql package)")
    return problems


def self_signed_certificate(crt: Path, key: Path) -> None:
    """A throwaway certificate for 127.0.0.1, as Heroku's data services use self-signed ones."""
    made = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(crt),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        raise BackingError(f"openssl could not make a certificate: {made.stderr.strip()}")
    key.chmod(0o600)


def _pg_bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise BackingError(
            "PostgreSQL server binaries not found (pg_ctl); install the Debian package "
            "'postgresql' to back heroku-postgresql add-ons"
        )
    return Path(candidates[-1]).parent


@dataclass
class PgDatabase:
    name: str
    user: str
    password: str


class Postgres:
    """A private cluster run as the ``postgres`` user when we are root."""

    def __init__(self, root: Path, port: int):
        self.root = root
        self.port = port
        self.data = root / "data"
        self.log = root / "postgresql.log"
        self._lock = threading.Lock()
        self._started = False
        self._superpass = secrets.token_urlsafe(24)

    def _owner(self) -> tuple[int, int] | None:
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise BackingError("running as root needs a 'postgres' user to run PostgreSQL") from exc
        return entry.pw_uid, entry.pw_gid

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
        owner = self._owner()
        user_kwargs = {}
        if owner:
            user_kwargs = {"user": owner[0], "group": owner[1], "extra_groups": []}
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(self.root)}
        return subprocess.run(
            args, env=env, capture_output=True, text=True, check=False, **user_kwargs, **kwargs
        )

    def ensure_started(self) -> None:
        with self._lock:
            if self._started:
                return
            if port_in_use(self.port):
                raise BackingError(
                    f"port {self.port} is taken: the stand-in's PostgreSQL cannot listen there"
                )
            bindir = _pg_bindir()
            owner = self._owner()
            self.root.mkdir(parents=True, exist_ok=True)
            if owner:
                os.chown(self.root, *owner)
                # postgres must be able to traverse every parent of the cluster.
                probe = self._run(["test", "-x", str(self.root)])
                if probe.returncode != 0:
                    raise BackingError(
                        f"the postgres user cannot reach {self.root}; choose a state dir "
                        "whose parents are world-traversable (e.g. under /tmp)"
                    )
            pwfile = self.root / "superuser.pw"
            pwfile.write_text(self._superpass + "\n")
            pwfile.chmod(0o600)
            if owner:
                os.chown(pwfile, *owner)
            initdb = self._run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )
            if initdb.returncode != 0:
                raise BackingError(f"initdb failed: {initdb.stderr.strip()[-800:]}")
            self._make_certificate(owner)
            conf = self.data / "postgresql.conf"
            with conf.open("a") as fh:
                fh.write(
                    "\n# double-boiler Heroku stand-in\n"
                    "listen_addresses = '127.0.0.1'\n"
                    f"port = {self.port}\n"
                    f"unix_socket_directories = '{self.root}'\n"
                    "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 200\n"
                )
            # Heroku Postgres refuses unencrypted connections.
            (self.data / "pg_hba.conf").write_text(
                "local all postgres scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
            )
            if owner:
                for path in (conf, self.data / "pg_hba.conf"):
                    os.chown(path, *owner)
            start = self._run(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            )
            if start.returncode != 0 or not _wait_port(self.port, 30):
                tail = self.log.read_text()[-800:] if self.log.exists() else start.stderr
                raise BackingError(f"PostgreSQL did not start: {tail.strip()}")
            self._started = True

    def _make_certificate(self, owner: tuple[int, int] | None) -> None:
        crt, key = self.data / "server.crt", self.data / "server.key"
        made = subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                str(key),
                "-out",
                str(crt),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise BackingError(f"openssl could not make the server certificate: {made.stderr}")
        key.chmod(0o600)
        if owner:
            os.chown(crt, *owner)
            os.chown(key, *owner)

    def _psql(self, sql: str) -> None:
        # The cluster's own client, not Debian's pg_wrapper (which looks for clusters).
        bundled = _pg_bindir() / "psql"
        psql = str(bundled) if bundled.exists() else (shutil.which("psql") or "psql")
        env_pass = {"PGPASSWORD": self._superpass}
        owner = self._owner()
        user_kwargs = {"user": owner[0], "group": owner[1], "extra_groups": []} if owner else {}
        done = subprocess.run(
            [
                psql,
                "-h",
                str(self.root),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-f",
                "-",
            ],
            input=sql,
            env={"PATH": "/usr/bin:/bin", **env_pass},
            capture_output=True,
            text=True,
            check=False,
            **user_kwargs,
        )
        if done.returncode != 0:
            raise BackingError(f"psql failed: {done.stderr.strip()[-400:]}")

    def create_database(self, slug: str, connection_limit: int) -> PgDatabase:
        self.ensure_started()
        db = PgDatabase(
            name="d" + secrets.token_hex(7),
            user="u" + secrets.token_hex(7),
            password=secrets.token_hex(32),
        )
        # Identifiers and the password are hex we generated: nothing to quote.
        self._psql(
            # The plan's connection limit, on the add-on's own role: past it PostgreSQL
            # answers `FATAL: too many connections for role "<user>"`.
            f"CREATE ROLE {db.user} LOGIN CONNECTION LIMIT {int(connection_limit)} "
            f"PASSWORD '{db.password}';\n"
            f"CREATE DATABASE {db.name} OWNER {db.user};\n"
            f"COMMENT ON DATABASE {db.name} IS 'stand-in add-on {slug}';\n"
        )
        return db

    def set_connection_limit(self, db: PgDatabase, limit: int) -> None:
        self._psql(f"ALTER ROLE {db.user} CONNECTION LIMIT {int(limit)};\n")

    def drop_database(self, db: PgDatabase) -> None:
        if not self._started:
            return
        self._psql(
            f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE);\nDROP ROLE IF EXISTS {db.user};\n"
        )

    def url(self, db: PgDatabase) -> str:
        return f"postgres://{db.user}:{db.password}@127.0.0.1:{self.port}/{db.name}"

    def stop(self) -> None:
        with self._lock:
            if not self._started:
                return
            self._run(
                [str(_pg_bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
            )
            self._started = False


class Redis:
    """One redis-server per add-on, its plan's connection limit as ``maxclients``.

    Redis has no per-user connection limit (ACL users cannot be capped), so a
    limit per add-on needs a server per add-on, as Heroku gives each add-on its
    own instance. Past the limit Redis answers ``ERR max number of clients reached``.
    """

    def __init__(self, root: Path, port: int, maxclients: int = 10000):
        self.root = root
        self.port = port
        self.maxclients = maxclients
        self.password = secrets.token_hex(32)
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        with self._lock:
            if self._proc and self._proc.poll() is None:
                return
            binary = shutil.which("redis-server")
            if not binary:
                raise BackingError(
                    "redis-server not found; install the Debian package 'redis-server' to back "
                    "heroku-redis add-ons"
                )
            if port_in_use(self.port):
                raise BackingError(f"port {self.port} is taken: the stand-in's Redis cannot listen")
            self.root.mkdir(parents=True, exist_ok=True)
            conf = self.root / "redis.conf"
            crt, key = self.root / "redis.crt", self.root / "redis.key"
            self_signed_certificate(crt, key)
            # Heroku Redis (6 and later) takes TLS connections only: rediss:// URLs with a
            # self-signed certificate. The password lives in a 0600 file, never in argv.
            conf.write_text(
                f"bind 127.0.0.1\nport 0\ntls-port {self.port}\ntls-cert-file {crt}\n"
                f"tls-key-file {key}\ntls-ca-cert-file {crt}\ntls-auth-clients no\n"
                f'dir {self.root}\nsave ""\nappendonly no\nrequirepass {self.password}\n'
                f"logfile {self.root / 'redis.log'}\nprotected-mode yes\n"
                f"maxclients {int(self.maxclients)}\n"
            )
            conf.chmod(0o600)
            self._proc = subprocess.Popen(
                [binary, str(conf)],
                cwd=self.root,  # lets `stop` recognise it as ours
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            if not _wait_port(self.port, 15):
                raise BackingError("redis-server did not start listening")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def set_maxclients(self, limit: int) -> None:
        """A plan change: CONFIG SET maxclients (the password via REDISCLI_AUTH, not argv)."""
        cli = shutil.which("redis-cli")
        if not cli:
            raise BackingError("redis-cli not found (Debian package redis-tools)")
        done = subprocess.run(
            [cli, "--tls", "--insecure", "-h", "127.0.0.1", "-p", str(self.port),
             "CONFIG", "SET", "maxclients", str(int(limit))],
            env={"PATH": "/usr/bin:/bin", "REDISCLI_AUTH": self.password},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0 or "OK" not in done.stdout:
            raise BackingError(f"redis-cli CONFIG SET failed: {done.stdout}{done.stderr}")
        self.maxclients = limit

    def url(self) -> str:
        return f"rediss://:{self.password}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        with self._lock:
            if self._proc and self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
