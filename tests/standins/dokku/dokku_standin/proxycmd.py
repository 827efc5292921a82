"""certs:*, checks:* and proxy port reports, after Dokku's certs, checks and ports plugins."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from . import deploy, out, proxy
from .core import Context, report_command


def _after_certs_update(ctx: Context, app: str) -> None:
    """post-certs-update / post-domains-update: rebuild the proxy config of a deployed app."""
    if ctx.is_deployed(app):
        proxy.configure(ctx, app, deploy.web_listeners(deploy.current_instances(ctx, app)))


def _install_pair(ctx: Context, app: str, crt: bytes, key: bytes) -> None:
    """certs fn-certs-set: tls/server.crt and server.key, 0640 in a 0750 directory."""
    tls = ctx.paths.app(app) / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    for name, data in (("server.crt", crt), ("server.key", key)):
        path = tls / name
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(path, 0o640)
    os.chmod(tls, 0o750)  # noqa: S103 - Dokku's mode: dokku's group reads it
    _after_certs_update(ctx, app)


def _from_tar(data: bytes) -> tuple[bytes, bytes]:
    """certs:add's tar import: exactly one *.crt and one *.key (hidden files ignored)."""
    expected = "Tar archive containing server.crt and server.key expected on stdin"
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data))  # noqa: SIM115 - closed below
    except tarfile.TarError:
        raise out.fail(expected) from None
    found: dict[str, list[tarfile.TarInfo]] = {".crt": [], ".key": []}
    with archive:
        for member in archive.getmembers():
            if not member.isfile() or any(p.startswith(".") for p in Path(member.name).parts):
                continue
            for suffix, members in found.items():
                if member.name.endswith(suffix):
                    members.append(member)
        files = {}
        for suffix, members in found.items():
            if not members:
                raise out.fail(f"Tar archive is missing {suffix} file")
            if len(members) > 1:
                raise out.fail(f"Tar archive contains more than one {suffix} file")
            extracted = archive.extractfile(members[0])
            files[suffix] = extracted.read() if extracted else b""
    return files[".crt"], files[".key"]


def cmd_certs_add(ctx: Context, argv: list[str]) -> None:
    """certs:add <app> CRT KEY, or a tar of them on stdin (plugins/certs/subcommands/add)."""
    app = argv[0] if argv else ""
    ctx.verify_app(app)
    crt_file, key_file = ([*argv[1:3], "", ""])[:2]
    if crt_file and key_file:
        if not os.access(crt_file, os.R_OK):
            raise out.fail("CRT file specified not found, please check file paths")
        if not os.access(key_file, os.R_OK):
            raise out.fail("KEY file specified not found, please check file paths")
        crt, key = Path(crt_file).read_bytes(), Path(key_file).read_bytes()
    elif not sys.stdin.isatty():
        crt, key = _from_tar(sys.stdin.buffer.read())
    else:
        raise out.fail("Tar archive containing server.crt and server.key expected on stdin")
    _check_pair(crt, key)
    _install_pair(ctx, app, crt, key)


def _check_pair(crt: bytes, key: bytes) -> None:
    """nginx would refuse a broken pair at reload; say so before anything changes."""
    if b"-----BEGIN CERTIFICATE-----" not in crt:
        raise out.fail("CRT file is not a PEM certificate")
    if b"PRIVATE KEY-----" not in key:
        raise out.fail("KEY file is not a PEM private key")


def cmd_certs_remove(ctx: Context, argv: list[str]) -> None:
    app = argv[0] if argv else ""
    ctx.verify_app(app)
    tls = ctx.paths.app(app) / "tls"
    if not tls.is_dir():
        raise out.fail("An app-specific SSL endpoint is not defined")
    out.info1(f"Removing SSL endpoint from {app}")
    shutil.rmtree(tls)
    _after_certs_update(ctx, app)


def _openssl(ctx: Context, app: str, *args: str) -> str:
    crt = ctx.paths.app(app) / "tls" / "server.crt"
    if not crt.exists():
        return ""
    result = subprocess.run(
        ["openssl", "x509", "-in", str(crt), "-noout", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip()


def certs_report_flags(ctx: Context):  # type: ignore[no-untyped-def]
    """certs report.go: ssl-enabled, hostnames, expires-at, issuer, starts-at, subject, verified."""

    def field(option: str, prefix: str):  # type: ignore[no-untyped-def]
        return lambda a: _openssl(ctx, a, option).removeprefix(prefix).strip()

    def flags_for(app: str) -> dict:
        return {
            "--ssl-dir": lambda a: str(ctx.paths.app(a) / "tls"),
            "--ssl-enabled": lambda a: "true" if proxy.has_certificate(ctx, a) else "false",
            "--ssl-expires-at": field("-enddate", "notAfter="),
            "--ssl-issuer": field("-issuer", "issuer="),
            "--ssl-starts-at": field("-startdate", "notBefore="),
            "--ssl-subject": field("-subject", "subject="),
        }

    return flags_for


def cmd_certs_report(ctx: Context, argv: list[str]) -> None:
    report_command(ctx, "certs", argv, certs_report_flags(ctx), trim_prefix=False)


# -- checks ----------------------------------------------------------------------------------

CHECKS_KEYS = ("wait-to-retire",)


def cmd_checks_set(ctx: Context, argv: list[str]) -> None:
    """checks:set <app>|--global wait-to-retire [N] (plugins/checks/subcommands/set)."""
    app, key, value = ([*argv, "", "", ""])[:3]
    if app != "--global":
        ctx.verify_app(app)
    if not key:
        raise out.fail("No key specified")
    if key not in CHECKS_KEYS:
        raise out.fail("Invalid key specified, valid keys include: wait-to-retire")
    if value:
        if not value.isdigit():
            raise out.fail(f"{key} must be a whole number of seconds")
        out.info2_quiet(f"Setting {key} to {value}")
        ctx.props.set("checks", app, key, value)
    else:
        out.info2_quiet(f"Unsetting {key}")
        ctx.props.delete("checks", app, key)


def checks_report_flags(ctx: Context):  # type: ignore[no-untyped-def]
    def flags_for(app: str) -> dict:
        flags = {
            "--checks-global-wait-to-retire": lambda a: ctx.props.get(
                "checks", "--global", "wait-to-retire"
            ),
        }
        if app != "--global":
            flags["--checks-wait-to-retire"] = lambda a: ctx.props.get(
                "checks", a, "wait-to-retire"
            )
            flags["--checks-computed-wait-to-retire"] = lambda a: str(deploy.wait_to_retire(ctx, a))
        return flags

    return flags_for


def cmd_checks_report(ctx: Context, argv: list[str]) -> None:
    report_command(ctx, "checks", argv, checks_report_flags(ctx))


# -- proxy ports -----------------------------------------------------------------------------


def proxy_report_flags(ctx: Context):  # type: ignore[no-untyped-def]
    def flags_for(app: str) -> dict:
        if app == "--global":
            return {"--proxy-global-type": lambda a: "nginx"}
        return {
            "--proxy-enabled": lambda a: "true",
            "--proxy-type": lambda a: "nginx",
            "--proxy-port": lambda a: ctx.props.get("proxy", a, "proxy-port"),
            "--proxy-ssl-port": lambda a: ctx.props.get("proxy", a, "proxy-ssl-port"),
        }

    return flags_for


def cmd_proxy_report(ctx: Context, argv: list[str]) -> None:
    report_command(ctx, "proxy", argv, proxy_report_flags(ctx), trim_prefix=False)


def cmd_urls(ctx: Context, argv: list[str]) -> None:
    """urls <app> (domains-urls)."""
    app = argv[0] if argv else ""
    ctx.verify_app(app)
    for url in proxy.urls(ctx, app):
        out.log(url)


def cmd_certs_show(ctx: Context, argv: list[str]) -> None:
    """certs:show <app> crt|key (plugins/certs/subcommands/show)."""
    app, kind = ([*argv, "", ""])[:2]
    ctx.verify_app(app)
    if kind not in ("key", "crt"):
        raise out.fail("specify either 'key' or 'crt'")
    if not proxy.has_certificate(ctx, app):
        raise out.fail(f"{app} doesn't have an SSL endpoint defined")
    sys.stdout.write((ctx.paths.app(app) / "tls" / f"server.{kind}").read_text())
    sys.stdout.flush()
