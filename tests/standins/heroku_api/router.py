"""The stand-in's router: what Heroku's router does between a client and the web dynos.

Modelled on https://devcenter.heroku.com/articles/http-routing (Router 2.0):

* Each app has an HTTPS listener (TLS terminated here, with a test CA made at
  start: ``<state>/router/ca.pem``) and a plain HTTP one (Heroku's port 80, so an
  app's own HTTPS redirect can be seen). Both listen on 127.0.0.1, on ports of
  their own per app: ``*.localhost`` names do not resolve through glibc's
  resolver on a plain Debian machine (``getent hosts x.localhost`` fails), so
  ``web_url`` uses the loopback address and the app's ports.
* The request goes to a web dyno that is up (bound to ``$PORT``), is not
  stopping and belongs to the current rollout (with preboot, the old dynos keep
  the traffic until the switch). With none, the request waits, as in Heroku's
  router queue while dynos boot, up to the request timeout.
* Headers added as Heroku's router does ("Heroku Headers"): ``X-Forwarded-For``
  (the client address appended), ``X-Forwarded-Proto``, ``X-Forwarded-Port``,
  ``X-Request-Start`` (ms since the epoch), ``X-Request-Id`` (the client's if it
  is 20-200 characters of ``[A-Za-z0-9+=/-]``, else a new uuid), ``Via`` (Router
  2.0 sends ``1.1 heroku-router``: https://blog.heroku.com/tips-tricks-router-2dot0-migration).
  ``Host`` is passed as the client sent it; a Host that is none of the app's
  domains gets Heroku's "no such app" 404.
* Keep-alive to dynos: an idle connection is reused for at most 90 s, Router
  2.0's figure (https://devcenter.heroku.com/articles/http-routing#keepalives);
  the ``http-disable-keepalive-to-dyno`` app feature sends ``Connection: close``.
* The request timeout: the dyno has 30 s to start its response after the
  request reached it (https://devcenter.heroku.com/articles/request-timeout),
  else the client gets a 503 and the app's log an ``H12 Request timeout`` line.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import re
import socket
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import App
    from .platform import Dyno, Platform

KEEPALIVE_IDLE_SECONDS = 90.0  # Router 2.0, http-routing#keepalives
REQUEST_TIMEOUT_SECONDS = 30.0  # request-timeout: H12
ROLLING_TIMEOUT_SECONDS = 55.0  # after the first byte, each 55 s window must see data
VIA = "1.1 heroku-router"
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9+=/-]{20,200}$")
MAX_BODY = 64 * 1024 * 1024
ERROR_PAGE = (
    b"<!DOCTYPE html><html><head><title>Application Error</title></head><body>"
    b"<p>An error occurred in the application and your page could not be served.</p>"
    b"</body></html>\n"
)


class TestCA:
    """A certificate authority of this run, and the certificates it signs (openssl)."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = self.dir / "ca.pem"
        self.key = self.dir / "ca.key"
        self.bundle = self.dir / "ca-bundle.pem"  # the system's CAs plus this one
        self._lock = threading.Lock()
        self._openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
            "-subj", "/CN=double-boiler Heroku stand-in test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", str(self.key), "-out", str(self.cert),
        )  # fmt: skip
        self.key.chmod(0o600)
        system = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
        with self.bundle.open("wb") as out:
            if system.is_file():
                out.write(system.read_bytes())
            out.write(self.cert.read_bytes())

    def _openssl(self, *args: str) -> None:
        done = subprocess.run(
            ["openssl", *args], capture_output=True, text=True, check=False, cwd=self.dir
        )
        if done.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()[-400:]}")

    def issue(self, name: str, alt_names: list[str]) -> tuple[Path, Path]:
        """A server certificate for ``alt_names`` (``IP:...`` or ``DNS:...``)."""
        with self._lock:
            stem = re.sub(r"[^A-Za-z0-9.-]", "_", name)
            crt, key, csr = (self.dir / f"{stem}.{ext}" for ext in ("pem", "key", "csr"))
            if crt.exists():
                return crt, key
            ext = self.dir / f"{stem}.ext"
            ext.write_text(
                f"subjectAltName={','.join(alt_names)}\nextendedKeyUsage=serverAuth\n"
                "basicConstraints=CA:FALSE\n"
            )
            self._openssl(
                "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", str(key), "-out", str(csr),
            )  # fmt: skip
            self._openssl(
                "x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                "-CAcreateserial", "-days", "30", "-extfile", str(ext), "-out", str(crt),
            )  # fmt: skip
            key.chmod(0o600)
            return crt, key


class DynoConnections:
    """Idle keep-alive connections to dynos, each reused for at most 90 s of idleness."""

    def __init__(self, idle: float = KEEPALIVE_IDLE_SECONDS):
        self.idle = idle
        self._lock = threading.Lock()
        self._pool: dict[int, list[tuple[http.client.HTTPConnection, float]]] = {}
        self.opened = 0  # new TCP connections made (tests read it)

    def get(self, port: int, timeout: float) -> http.client.HTTPConnection:
        now = time.monotonic()
        with self._lock:
            idle = self._pool.get(port, [])
            while idle:
                conn, since = idle.pop()
                if now - since < self.idle:
                    conn.timeout = timeout
                    if conn.sock is not None:
                        conn.sock.settimeout(timeout)
                    return conn
                conn.close()  # idle past the router's keep-alive: the router closes it
            self.opened += 1
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def put(self, port: int, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._pool.setdefault(port, []).append((conn, time.monotonic()))

    def forget(self, port: int) -> None:
        with self._lock:
            for conn, _ in self._pool.pop(port, []):
                conn.close()

    def close(self) -> None:
        with self._lock:
            for idle in self._pool.values():
                for conn, _ in idle:
                    conn.close()
            self._pool.clear()


class _Listener(http.server.ThreadingHTTPServer):
    """One listener; with `tls_context`, each connection's TLS handshake runs in its own
    thread. Wrapping the listening socket instead made the accept loop do every
    handshake in turn, so one client that never finished its handshake stalled all the
    others, and under load connections waited in socketserver's accept queue of 5 until
    clients gave up (one request of 13,765 in the preboot redeploy of docs/reliability.md)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # a router's accept queue, not socketserver's 5
    tls_context: ssl.SSLContext | None = None
    # A client that connects and never completes its handshake gives its thread back.
    handshake_timeout = 30.0

    def process_request_thread(self, request: socket.socket, client_address: Any) -> None:
        if self.tls_context is not None:
            request.settimeout(self.handshake_timeout)
            try:
                request = self.tls_context.wrap_socket(request, server_side=True)
            except OSError:  # ssl.SSLError and a client gone or silent
                self.shutdown_request(request)
                return
            request.settimeout(None)
        super().process_request_thread(request, client_address)


class AppRouter:
    """The HTTP and HTTPS listeners of one app."""

    def __init__(self, router: Router, app: App):
        self.router, self.app_id = router, app.id
        handler = _make_handler(router, app.id)
        self.http = _Listener(("127.0.0.1", app.web_port), handler)
        self.https = _Listener(("127.0.0.1", app.tls_port), handler)
        self.https.tls_context = router.tls_context
        self.http.proto, self.https.proto = "http", "https"  # type: ignore[attr-defined]
        self.threads = [
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
            for s in (self.http, self.https)
        ]
        for t in self.threads:
            t.start()

    def close(self) -> None:
        for server in (self.http, self.https):
            server.shutdown()
            server.server_close()


class Router:
    def __init__(self, platform: Platform, state_dir: Path, timeout: float):
        self.platform = platform
        self.timeout = timeout
        self.ca = TestCA(state_dir / "router")
        crt, key = self.ca.issue("127.0.0.1", ["IP:127.0.0.1", "DNS:localhost"])
        self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls_context.load_cert_chain(crt, key)
        self.tls_context.sni_callback = self._sni
        self._sni_contexts: dict[str, ssl.SSLContext] = {}
        self.connections = DynoConnections()
        self._apps: dict[str, AppRouter] = {}
        self._lock = threading.Lock()

    def _sni(self, sock: ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        """A custom domain of an app with ACM on gets a certificate of its own (ACM)."""
        if not name or not self.platform.acm_domain(name):
            return
        context = self._sni_contexts.get(name)
        if context is None:
            crt, key = self.ca.issue(name, [f"DNS:{name}"])
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(crt, key)
            self._sni_contexts[name] = context
        sock.context = context

    def add(self, app: App) -> None:
        with self._lock:
            self._apps[app.id] = AppRouter(self, app)

    def remove(self, app: App) -> None:
        with self._lock:
            listener = self._apps.pop(app.id, None)
        if listener:
            listener.close()

    def close(self) -> None:
        with self._lock:
            listeners = list(self._apps.values())
            self._apps.clear()
        for listener in listeners:
            listener.close()
        self.connections.close()


def _make_handler(router: Router, app_id: str) -> type[http.server.BaseHTTPRequestHandler]:
    platform = router.platform

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "heroku-router"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the app's log gets Heroku-style router lines instead

        def do_GET(self) -> None:
            self._route()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

        def _reply(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Via", VIA)
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, app: App | None, code: str, desc: str, status: int = 503, **log) -> None:
            if app is not None:
                self._log(app, "error", status, 0, code=code, desc=f'"{desc}"', **log)
            self._reply(status, ERROR_PAGE, {"Content-Type": "text/html; charset=utf-8"})

        def _log(self, app: App, at: str, status: int, size: int, **fields: Any) -> None:
            parts = [f"at={at}"]
            if "code" in fields:
                parts += [f"code={fields.pop('code')}", f"desc={fields.pop('desc')}"]
            parts += [
                f"method={self.command}",
                f'path="{self.path}"',
                f"host={self.headers.get('Host', '')}",
                f"request_id={getattr(self, 'request_id', '-')}",
                f'fwd="{self.client_address[0]}"',
            ]
            parts += [f"{k}={v}" for k, v in fields.items()]
            parts += [f"status={status}", f"bytes={size}", f"protocol={self.server.proto}"]  # type: ignore[attr-defined]
            platform.log(app, "heroku[router]", " ".join(parts))

        def _body(self) -> bytes | None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return None
            return self.rfile.read(length) if length else b""

        def _route(self) -> None:
            app = platform.apps_by_id(app_id)
            given = self.headers.get("X-Request-Id", "")
            self.request_id = given if REQUEST_ID_RE.match(given) else str(uuid.uuid4())
            started = time.monotonic()
            start_ms = str(int(time.time() * 1000))
            if app is None:
                self._error(None, "", "")
                return
            hosts = self.headers.get_all("Host") or []
            if len(hosts) != 1:  # Heroku refuses several Host headers (changelog 1002)
                self._reply(400, b"Bad Request\n")
                return
            if not platform.serves_host(app, hosts[0]):
                self._reply(404, b"No such app\n", {"Content-Type": "text/plain"})
                return
            body = self._body()
            if body is None:
                self._error(app, "H27", "Client Request Interrupted", 413)
                return
            if app.maintenance:
                self._error(app, "H80", "Maintenance mode", dyno="", connect="0ms", service="0ms")
                return
            if not platform.web_quantity(app):
                self._error(
                    app, "H14", "No web dynos running", dyno="", connect="0ms", service="0ms"
                )
                return
            deadline = started + router.timeout
            dyno = platform.route_target(app)
            while dyno is None and time.monotonic() < deadline:
                time.sleep(0.05)
                dyno = platform.route_target(app)
            if dyno is None:  # nothing booted in time: what a client sees as a timeout
                self._error(app, "H12", "Request timeout", dyno="", connect="0ms",
                            service=f"{int((time.monotonic() - started) * 1000)}ms")  # fmt: skip
                return
            self._forward(app, dyno, body, start_ms)

        def _forward(self, app: App, dyno: Dyno, body: bytes, start_ms: str) -> None:
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
            headers = [
                (k, v)
                for k, v in headers
                if k.lower()
                not in ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-port",
                        "x-request-start", "x-request-id", "via", "content-length")
            ]  # fmt: skip
            forwarded_for = self.headers.get("X-Forwarded-For")
            client = self.client_address[0]
            headers += [
                ("X-Forwarded-For", f"{forwarded_for}, {client}" if forwarded_for else client),
                ("X-Forwarded-Proto", self.server.proto),  # type: ignore[attr-defined]
                ("X-Forwarded-Port", str(self.server.server_address[1])),
                ("X-Request-Start", start_ms),
                ("X-Request-Id", self.request_id),
                ("Via", VIA),
                ("Content-Length", str(len(body))),
            ]
            keepalive = not app.features.get("http-disable-keepalive-to-dyno", False)
            if not keepalive:
                headers.append(("Connection", "close"))
            t0 = time.monotonic()
            conn = router.connections.get(dyno.port, router.timeout)
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for key, value in headers:
                    conn.putheader(key, value)
                conn.endheaders(body or None)
                connected = time.monotonic()
                response = conn.getresponse()  # the 30 s window: until the response starts
            except TimeoutError:
                conn.close()
                service = int((time.monotonic() - t0) * 1000)
                self._error(app, "H12", "Request timeout", dyno=dyno.name, connect="0ms",
                            service=f"{service}ms")  # fmt: skip
                return
            except (OSError, http.client.HTTPException):
                conn.close()
                spent = f"{int((time.monotonic() - t0) * 1000)}ms"
                self._error(app, "H13", "Connection closed without response", dyno=dyno.name,
                            connect="0ms", service=spent)  # fmt: skip
                return
            try:
                if conn.sock is not None:
                    conn.sock.settimeout(ROLLING_TIMEOUT_SECONDS)
                payload = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self._error(app, "H15", "Idle connection", dyno=dyno.name, connect="0ms",
                            service=f"{int((time.monotonic() - t0) * 1000)}ms")  # fmt: skip
                return
            if keepalive and not response.will_close:
                router.connections.put(dyno.port, conn)
            else:
                conn.close()
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() not in ("content-length", "via"):
                    self.send_header(key, value)
            self.send_header("Via", VIA)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                with contextlib.suppress(OSError):
                    self.wfile.write(payload)
            self._log(
                app, "info", response.status, len(payload), dyno=dyno.name,
                connect=f"{int((connected - t0) * 1000)}ms",
                service=f"{int((time.monotonic() - connected) * 1000)}ms",
            )  # fmt: skip

    return Handler
