"""The nginx proxy, after Dokku's nginx-vhosts plugin (templates/nginx.conf.sigil).

Dokku's nginx.conf includes ``$DOKKU_ROOT/*/nginx.conf``; each app's file has an upstream
for its web process and a server block for its vhosts (the app's VHOST file), proxying
with Dokku's headers. Unknown Host headers hit the default server, which answers 444.
Dokku's nginx listens on every address; the stand-in's only on 127.0.0.1, as the instance
shares the test machine's network (host networking) and tests stay on loopback.
"""

from __future__ import annotations

import subprocess

from . import out
from .core import Context
from .state import write_file

ERROR_STATUSES = "500 501 502 503 504 505 506 507 508 509 510 511"


def urls(ctx: Context, app: str) -> list[str]:
    """domains-urls: http://<vhost> for each app vhost (scheme http: no certificates)."""
    if not ctx.vhost_enabled(app):
        return []
    return [f"http://{vhost}" for vhost in ctx.app_vhosts(app)]


def render(ctx: Context, app: str, port: int, web_running: bool) -> str:
    vhosts = ctx.app_vhosts(app) if ctx.vhost_enabled(app) else []
    errors_root = ctx.paths.lib / "data" / "nginx-vhosts" / "dokku-errors"
    upstream = f"{app}-{port}"
    if web_running:
        location = (
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
    else:
        location = "    return 502;\n"
    server_name = f"  server_name {' '.join(vhosts)};\n" if vhosts else ""
    text = (
        "# Written by the Dokku STAND-IN (double-boiler tests) after Dokku's nginx.conf.sigil.\n"
        "server {\n"
        "  listen      127.0.0.1:80;\n"
        f"{server_name}"
        f"  access_log  /var/log/nginx/{app}-access.log;\n"
        f"  error_log   /var/log/nginx/{app}-error.log;\n"
        "\n"
        "  location    / {\n"
        f"{location}"
        "  }\n"
        "\n"
        "  client_max_body_size 1m;\n"
        f"  error_page {ERROR_STATUSES} /500-error.html;\n"
        "  location /500-error.html {\n"
        f"    root {errors_root};\n"
        "    internal;\n"
        "  }\n"
        "}\n"
    )
    if web_running:
        text += f"upstream {upstream} {{\n  server 127.0.0.1:{port};\n}}\n"
    return text


def configure(ctx: Context, app: str, web_running: bool) -> None:
    """Write the app's nginx.conf and reload nginx (post-deploy / post-domains-update)."""
    if not ctx.settings.nginx:
        return
    conf = ctx.paths.app(app) / "nginx.conf"
    vhosts = ctx.app_vhosts(app) if ctx.vhost_enabled(app) else []
    if not vhosts:
        # Dokku then proxies a random high port; the stand-in only serves vhosts.
        conf.unlink(missing_ok=True)
        out.info1(f"No vhosts for {app}: nginx does not route to it")
        reload(ctx)
        return
    out.info1(f"Configuring {vhosts[0]}...(using built-in template)")
    out.info1("Creating http nginx.conf")
    previous = conf.read_text() if conf.exists() else None
    write_file(conf, render(ctx, app, ctx.settings.port, web_running))
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
