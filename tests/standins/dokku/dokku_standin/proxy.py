"""The nginx proxy, after Dokku's nginx-vhosts plugin.

Sources (dokku/dokku v0.38.27): plugins/nginx-vhosts/templates/nginx.conf.sigil (the server
blocks), plugins/nginx-vhosts/functions nginx_build_config (which vhosts, "Creating http(s)
nginx.conf"), plugins/ports/functions.go (the port map: http:80:5000, plus https:443:5000
once the app has a certificate; a random high port when the app's vhosts are off).

Dokku's nginx.conf includes ``$DOKKU_ROOT/*/nginx.conf``; each app's file has an upstream
with every web container (DOKKU_APP_WEB_LISTENERS) and a server block per port map. With a
certificate (``$DOKKU_ROOT/<app>/tls/server.crt`` and ``server.key``) port 80 answers
``301 https://$host:443$request_uri`` and port 443 serves TLS (TLSv1.2/1.3) with HSTS
(``max-age=15724800; includeSubdomains``, the hsts defaults). Unknown Host headers hit the
default server, which answers 444. Dokku's nginx listens on every address; the stand-in's
only on 127.0.0.1, as the instance shares the test machine's network (host networking).
"""

from __future__ import annotations

import random
import socket
import subprocess

from . import out
from .core import Context
from .state import write_file

ERROR_STATUSES = "500 501 502 503 504 505 506 507 508 509 510 511"
HSTS = "max-age=15724800; includeSubdomains"


def has_certificate(ctx: Context, app: str) -> bool:
    """certs is_ssl_enabled: both tls/server.crt and tls/server.key exist."""
    tls = ctx.paths.app(app) / "tls"
    return (tls / "server.crt").exists() and (tls / "server.key").exists()


def app_domains(ctx: Context, app: str) -> list[str]:
    """domains-list: the app's VHOST file, in its order, when its vhosts are enabled."""
    return ctx.app_vhosts(app) if ctx.vhost_enabled(app) else []


def _free_port() -> int:
    """ports getAvailablePort: a random open port above 1024."""
    for _ in range(100):
        port = random.randint(1025, 65535)
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise out.fail("No open port found")


def proxy_port(ctx: Context, app: str) -> int:
    """ports initializeProxyPort: 80 with vhosts, else a random open high port (kept)."""
    value = ctx.props.get("proxy", app, "proxy-port")
    if value:
        return int(value)
    if app_domains(ctx, app):
        port = int(ctx.props.get("proxy", "--global", "proxy-port") or 80)
    else:
        out.info1("No port set, setting to random open high port")
        port = _free_port()
        out.info1(f"Random port {port}")
    ctx.props.set("proxy", app, "proxy-port", str(port))
    return port


def proxy_ssl_port(ctx: Context, app: str) -> int:
    """ports initializeProxySSLPort: 443 with vhosts, else a random open high port."""
    value = ctx.props.get("proxy", app, "proxy-ssl-port")
    if value:
        return int(value)
    if app_domains(ctx, app):
        port = int(ctx.props.get("proxy", "--global", "proxy-ssl-port") or 443)
    else:
        out.info1("No ssl port set, setting to random open high port")
        port = _free_port()
    ctx.props.set("proxy", app, "proxy-ssl-port", str(port))
    return port


def urls(ctx: Context, app: str) -> list[str]:
    """domains-urls: <scheme>://<domain> (port when not the default), sorted; with no domain
    the global VHOST (or the IP) and the app's port."""
    scheme = "https" if has_certificate(ctx, app) else "http"
    domains = app_domains(ctx, app)
    port = ctx.props.get("proxy", app, "proxy-ssl-port" if scheme == "https" else "proxy-port") or (
        "443" if scheme == "https" else "80"
    )
    suffix = "" if port in ("80", "443") else f":{port}"
    if not domains:
        hosts = [v for v in ctx.global_vhosts()] or ["127.0.0.1"]
        return sorted({f"{scheme}://{hosts[0]}{suffix}"})
    return sorted({f"{scheme}://{domain}{suffix}" for domain in domains})


def _location(upstream: str, listeners: list[str]) -> str:
    if not listeners:
        return "    return 502;\n"
    return (
        f"    proxy_pass  http://{upstream};\n"
        "    proxy_http_version 1.1;\n"
        "    proxy_connect_timeout 60s;\n"
        "    proxy_read_timeout 60s;\n"
        "    proxy_send_timeout 60s;\n"
        "    proxy_buffer_size 4k;\n"
        "    proxy_buffering on;\n"
        "    proxy_buffers 8 4k;\n"
        "    proxy_busy_buffers_size 8k;\n"
        "    proxy_set_header Upgrade $http_upgrade;\n"
        "    proxy_set_header Connection $http_connection;\n"
        "    proxy_set_header Host $http_host;\n"
        "    proxy_set_header X-Forwarded-For $remote_addr;\n"
        "    proxy_set_header X-Forwarded-Port $server_port;\n"
        "    proxy_set_header X-Forwarded-Proto $scheme;\n"
        "    proxy_set_header X-Request-Start $msec;\n"
    )


def render(ctx: Context, app: str, listeners: list[str]) -> str:
    domains = app_domains(ctx, app)
    tls = has_certificate(ctx, app)
    errors_root = ctx.paths.lib / "data" / "nginx-vhosts" / "dokku-errors"
    upstream = f"{app}-5000"
    server_name = f"  server_name {' '.join(domains)};\n" if domains else ""
    logs = (
        f"  access_log  /var/log/nginx/{app}-access.log;\n"
        f"  error_log   /var/log/nginx/{app}-error.log;\n"
    )
    errors = (
        "  client_max_body_size 1m;\n"
        f"  error_page {ERROR_STATUSES} /500-error.html;\n"
        "  location /500-error.html {\n"
        f"    root {errors_root};\n"
        "    internal;\n"
        "  }\n"
    )
    http_port = proxy_port(ctx, app)
    text = "# Written by the Dokku STAND-IN (double-boiler tests) after Dokku's nginx.conf.sigil.\n"
    if tls:
        ssl_port = proxy_ssl_port(ctx, app)
        app_root = ctx.paths.app(app)
        text += (
            "server {\n"
            f"  listen      127.0.0.1:{http_port};\n"
            f"{server_name}{logs}"
            "  location / {\n"
            f"    return 301 https://$host:{ssl_port}$request_uri;\n"
            "  }\n"
            "}\n"
            "server {\n"
            # nginx < 1.25.1 (Debian 12: 1.22): the template's `listen ... ssl http2` branch
            f"  listen      127.0.0.1:{ssl_port} ssl http2;\n"
            f"{server_name}{logs}"
            f"  ssl_certificate           {app_root}/tls/server.crt;\n"
            f"  ssl_certificate_key       {app_root}/tls/server.key;\n"
            "  ssl_protocols             TLSv1.2 TLSv1.3;\n"
            "  ssl_prefer_server_ciphers off;\n"
            f'  add_header Strict-Transport-Security "{HSTS}" always;\n'
            "\n"
            "  location    / {\n"
            f"{_location(upstream, listeners)}"
            "  }\n"
            f"{errors}"
            "}\n"
        )
    else:
        text += (
            "server {\n"
            f"  listen      127.0.0.1:{http_port};\n"
            f"{server_name}{logs}"
            "\n"
            "  location    / {\n"
            f"{_location(upstream, listeners)}"
            "  }\n"
            "\n"
            f"{errors}"
            "}\n"
        )
    if listeners:
        servers = "".join(f"  server {listener};\n" for listener in listeners)
        text += f"upstream {upstream} {{\n{servers}}}\n"
    return text


def configure(ctx: Context, app: str, listeners: list[str]) -> None:
    """Write the app's nginx.conf and reload nginx (post-deploy / post-domains-update)."""
    if not ctx.settings.nginx:
        return
    conf = ctx.paths.app(app) / "nginx.conf"
    domains = app_domains(ctx, app)
    tls = has_certificate(ctx, app)
    names = domains or ctx.global_vhosts()[:1]
    for name in sorted(set(names)):
        out.info1(f"Configuring {name}...(using built-in template)")
    previous = conf.read_text() if conf.exists() else None
    write_file(conf, render(ctx, app, listeners))
    out.info1(f"Creating {'https' if tls else 'http'} nginx.conf")
    test = subprocess.run(ctx.settings.nginx_test, capture_output=True, text=True, check=False)
    if test.returncode != 0:
        if previous is None:
            conf.unlink()
        else:
            write_file(conf, previous)
        out.stream_verbose(test.stderr)
        raise out.fail("Failed to validate nginx configuration")
    out.verbose("Reloading nginx")
    reload(ctx)


def remove(ctx: Context, app: str) -> None:
    conf = ctx.paths.app(app) / "nginx.conf"
    if conf.exists():
        conf.unlink()
        reload(ctx)


def reload(ctx: Context) -> None:
    if not ctx.settings.nginx:
        return
    subprocess.run(ctx.settings.nginx_reload, capture_output=True, check=False)
