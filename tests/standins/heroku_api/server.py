"""HTTP front of the stand-in: the API, the blob store, output streams, admin.

Paths:

* ``/__standin__/...``  admin (no auth): health, request log, faults, dynos,
  shutdown. Not part of the Heroku API.
* ``/__blobs__/sources/<id>?sig=...``  the presigned-URL blob store behind
  ``POST /sources`` (S3 on Heroku): PUT stores, GET serves.
* ``/__streams__/<builds|releases>/<id>``  ``output_stream_url`` targets.
* everything else is the Platform API and is held to the official schema.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import api, paging
from .faults import HTTP_KINDS, FaultError, Faults
from .platform import Options, Platform, PlatformError
from .schema import HyperSchema

# Heroku accepts version 3 and its variants (`version=3.sdk` from the CLI,
# `version=3.pipelines`, ...): https://devcenter.heroku.com/articles/platform-api-reference#clients
ACCEPT_RE = re.compile(r"application/vnd\.heroku\+json;\s*version=3(?:\.[A-Za-z0-9_-]+)?(?![\w.])")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ERROR_URL = "https://devcenter.heroku.com/articles/platform-api-reference#error-responses"
MAX_BODY = 64 * 1024 * 1024


class RateLimiter:
    """Heroku's account budget: 4500 tokens, refilled at capacity/60 per minute."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.tokens = float(capacity)
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, int]:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(
                self.capacity, self.tokens + (now - self.stamp) * self.capacity / 3600
            )
            self.stamp = now
            if self.tokens < 1:
                return False, 0
            self.tokens -= 1
            return True, int(self.tokens)


@dataclass
class RequestLog:
    path: Path | None
    entries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            entry["seq"] = len(self.entries)
            self.entries.append(entry)
            if self.path:
                with self.path.open("a") as fh:
                    fh.write(json.dumps(entry, sort_keys=True) + "\n")


class StandIn:
    """Everything one running stand-in holds."""

    def __init__(
        self, schema: HyperSchema, options: Options, api_keys: list[str], rate_limit: int = 4500
    ):
        self.schema = schema
        self.faults = Faults()
        self.platform = Platform(options, self.faults)
        self.api_keys = [k for k in api_keys if k]
        self.limiter = RateLimiter(rate_limit)
        self.log = RequestLog(options.state_dir / "requests.jsonl")
        self.shutdown_requested = threading.Event()

    def authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.partition(" ")
        token = None
        if scheme.lower() == "bearer":
            token = value.strip()
        elif scheme.lower() == "basic":
            try:
                token = base64.b64decode(value.strip()).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return False
        if not token:
            return False
        return any(hmac.compare_digest(token.encode(), key.encode()) for key in self.api_keys)


def make_handler(standin: StandIn) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "heroku-api-standin/1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request log (without secrets) replaces the default stderr log

        # -- plumbing -------------------------------------------------------
        def _send(
            self,
            status: int,
            body: bytes = b"",
            headers: dict[str, str] | None = None,
            content_type: str = "application/json",
        ) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if status != 304:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(value).encode(), headers)

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ValueError("request body too large")
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            self._dispatch()

        def do_HEAD(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def do_PUT(self) -> None:
            self._dispatch()

        def do_PATCH(self) -> None:
            self._dispatch()

        def do_DELETE(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            path = url.path
            try:
                if path.startswith("/__standin__/"):
                    self._admin(path, urllib.parse.parse_qs(url.query))
                elif path.startswith("/__blobs__/"):
                    self._blob(path, urllib.parse.parse_qs(url.query))
                elif path.startswith("/__streams__/"):
                    self._stream(path)
                else:
                    self._api(path, url.query)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        # -- API --------------------------------------------------------------
        def _api(self, path: str, query: str) -> None:
            method = self.command
            entry: dict[str, Any] = {
                "time": time.time(),
                "kind": "api",
                "method": method,
                "path": path,
                "query": query,
                "writes": method in WRITE_METHODS,
                "link": None,
                "violations": [],
                "status": None,
                "user_agent": self.headers.get("User-Agent"),
                "range": self.headers.get("Range"),
                "accept": self.headers.get("Accept"),
            }
            try:
                raw = self._read_body()
            except ValueError as exc:
                entry["violations"].append(str(exc))
                self._error(entry, 413, "bad_request", str(exc))
                return
            matches = standin.schema.match(method, path)
            if not matches:
                entry["violations"].append(
                    f"no link of the Platform API schema matches {method} {path}"
                )
            try:
                self._api_checked(entry, matches, raw)
            finally:
                standin.log.add(entry)

        def _error(
            self,
            entry: dict[str, Any],
            status: int,
            error_id: str,
            message: str,
            headers: dict[str, str] | None = None,
        ) -> None:
            entry["status"] = status
            entry["error_id"] = error_id
            self._json(
                status,
                {"id": error_id, "message": message, "url": ERROR_URL},
                self._common_headers(headers),
            )

        def _common_headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
            headers = {
                "Request-Id": str(uuid.uuid4()),
                "RateLimit-Remaining": str(int(standin.limiter.tokens)),
            }
            headers.update(extra or {})
            return headers

        def _api_checked(self, entry: dict[str, Any], matches: list[Any], raw: bytes) -> None:
            method, path = entry["method"], entry["path"]
            fault = standin.faults.take_http(method, path)
            if fault:
                entry["fault"] = fault.kind
                status = HTTP_KINDS[fault.kind]
                extra: dict[str, str] = {}
                if fault.retry_after is not None:
                    extra["Retry-After"] = str(fault.retry_after)
                if fault.kind == "rate_limit":
                    extra["RateLimit-Remaining"] = "0"
                    self._error(
                        entry,
                        status,
                        "rate_limit",
                        "Your account reached the API rate limit\nPlease wait a few "
                        "minutes before making new requests",
                        extra,
                    )
                elif fault.kind == "unavailable":
                    self._error(
                        entry,
                        status,
                        "service_unavailable",
                        "API is temporarily unavailable (stand-in: injected)",
                        extra,
                    )
                else:
                    self._error(
                        entry,
                        status,
                        "internal_server_error",
                        "Internal server error (stand-in: injected)",
                        extra,
                    )
                return
            if not standin.authorized(self.headers.get("Authorization")):
                self._error(entry, 401, "unauthorized", "Invalid credentials provided.")
                return
            accept = self.headers.get("Accept", "")
            if not ACCEPT_RE.search(accept):
                entry["violations"].append(
                    "Accept header lacks 'application/vnd.heroku+json; version=3'"
                )
                self._error(
                    entry,
                    406,
                    "not_acceptable",
                    "Please specify a version along with Heroku's API MIME type. For "
                    "example, `Accept: application/vnd.heroku+json; version=3`.",
                )
                return
            allowed, remaining = standin.limiter.take()
            if not allowed:
                self._error(
                    entry,
                    429,
                    "rate_limit",
                    "Your account reached the API rate limit\n"
                    "Please wait a few minutes before making new requests",
                    {"RateLimit-Remaining": "0"},
                )
                return
            if not matches:
                self._error(
                    entry,
                    404,
                    "not_found",
                    "The requested API endpoint was not found. "
                    "Are you using the right HTTP verb (i.e. `GET` vs. `POST`), and did "
                    "you specify your intended version with the `Accept` header?",
                )
                return
            body: Any = None
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    entry["violations"].append("request body is not JSON")
                    self._error(entry, 400, "bad_request", "Invalid JSON in the request body.")
                    return
                ctype = self.headers.get("Content-Type", "")
                if "json" not in ctype:
                    entry["violations"].append(f"request Content-Type is {ctype!r}, not JSON")
            if isinstance(body, dict):
                entry["body_keys"] = sorted(body)
            chosen, errors = None, []
            for candidate in matches:
                problems = standin.schema.request_errors(candidate.link, body)
                if not problems:
                    chosen = candidate
                    break
                errors.extend(problems)
            if chosen is None:
                entry["link"] = matches[0].link.key
                entry["violations"].extend(errors)
                self._error(
                    entry, 422, "invalid_params", "Invalid request parameters: " + "; ".join(errors)
                )
                return
            link = chosen.link
            entry["link"] = link.key
            handler = api.HANDLERS.get(link.key)
            if handler is None:
                entry["unimplemented"] = True
                self._error(
                    entry,
                    501,
                    "not_implemented",
                    f"stand-in: {link.key} ({link.title}) is not implemented",
                )
                return
            try:
                status, result = handler(standin.platform, chosen.params, body)
            except PlatformError as exc:
                self._error(
                    entry,
                    exc.status,
                    exc.error_id,
                    exc.message,
                    {"RateLimit-Remaining": str(remaining)},
                )
                return
            headers = {"RateLimit-Remaining": str(remaining)}
            if link.is_list and isinstance(result, list):
                fields = list(link.ranges) or ["id"]
                if link.resource == "release" and "version" not in fields:
                    fields.append("version")
                try:
                    status, result, range_headers = paging.page(
                        result, self.headers.get("Range"), fields
                    )
                except paging.RangeError as exc:
                    self._error(entry, 416, "requested_range_not_satisfiable", str(exc))
                    return
                headers.update(range_headers)
            problems = standin.schema.response_errors(link, result)
            if problems:
                entry["violations"].extend(f"response: {p}" for p in problems)
            payload = json.dumps(result).encode()
            etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
            headers["ETag"] = etag
            entry["status"] = status
            if method == "GET" and self.headers.get("If-None-Match") == etag:
                entry["status"] = 304
                self._send(304, b"", self._common_headers(headers))
                return
            self._send(status, payload, self._common_headers(headers))

        # -- blob store (S3 stand-in) ---------------------------------------
        def _blob(self, path: str, query: dict[str, list[str]]) -> None:
            entry: dict[str, Any] = {
                "time": time.time(),
                "kind": "blob",
                "method": self.command,
                "path": path,
                "writes": self.command in WRITE_METHODS,
                "violations": [],
                "status": None,
            }
            try:
                m = re.fullmatch(r"/__blobs__/sources/([0-9a-f-]{36})", path)
                sig = (query.get("sig") or [""])[0]
                blob = standin.platform.blobs.get(m.group(1)) if m else None
                store = standin.platform.options.state_dir / "blobs"
                if blob is None:
                    entry["status"] = 404
                    self._send(404, b"NoSuchKey", content_type="text/plain")
                    return
                blob_path = store / f"{m.group(1)}.tgz"
                if self.command == "PUT":
                    if not hmac.compare_digest(sig, blob["put"]):
                        entry["status"] = 403
                        self._send(403, b"SignatureDoesNotMatch", content_type="text/plain")
                        return
                    if "Content-Length" not in self.headers:
                        entry["status"] = 411
                        self._send(411, b"MissingContentLength", content_type="text/plain")
                        return
                    data = self._read_body()
                    blob_path.write_bytes(data)
                    entry["bytes"] = len(data)
                    entry["status"] = 200
                    self._send(
                        200,
                        b"",
                        {"ETag": '"' + hashlib.md5(data).hexdigest() + '"'},  # noqa: S324
                        content_type="text/plain",
                    )
                elif self.command in ("GET", "HEAD"):
                    if not hmac.compare_digest(sig, blob["get"]):
                        entry["status"] = 403
                        self._send(403, b"SignatureDoesNotMatch", content_type="text/plain")
                        return
                    if not blob_path.exists():
                        entry["status"] = 404
                        self._send(404, b"NoSuchKey", content_type="text/plain")
                        return
                    entry["status"] = 200
                    self._send(200, blob_path.read_bytes(), content_type="application/octet-stream")
                else:
                    entry["status"] = 405
                    self._send(405, b"MethodNotAllowed", content_type="text/plain")
            finally:
                standin.log.add(entry)

        # -- output streams -------------------------------------------------
        def _stream(self, path: str) -> None:
            key = path.removeprefix("/__streams__/")
            stream = standin.platform.streams.get(key)
            standin.log.add(
                {
                    "time": time.time(),
                    "kind": "stream",
                    "method": self.command,
                    "path": path,
                    "writes": False,
                    "violations": [],
                    "status": 200 if stream else 404,
                }
            )
            if stream is None:
                self._send(404, b"stream not found\n", content_type="text/plain")
                return
            offset = 0
            status = 200
            m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "").strip())
            if m:
                offset, status = int(m.group(1)), 206
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                chunk, finished = stream.read_from(offset, 1.0)
                if chunk:
                    offset += len(chunk)
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
                if finished and not chunk:
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        # -- admin ----------------------------------------------------------
        def _admin(self, path: str, query: dict[str, list[str]]) -> None:
            action = path.removeprefix("/__standin__/").strip("/")
            routes: dict[tuple[str, str], Callable[[], tuple[int, Any]]] = {
                ("GET", "health"): lambda: (
                    200,
                    {
                        "ok": True,
                        "standin": "heroku-platform-api",
                        "pid": os.getpid(),
                        "internal_errors": list(standin.platform.notes),
                        "apps": len(standin.platform.apps),
                    },
                ),
                ("GET", "requests"): lambda: (200, self._entries(query)),
                ("GET", "violations"): lambda: (
                    200,
                    [e for e in self._entries(query) if e.get("violations")],
                ),
                ("GET", "faults"): lambda: (200, standin.faults.pending()),
                ("POST", "faults"): self._add_fault,
                ("DELETE", "faults"): lambda: (standin.faults.clear(), (200, []))[1],
                ("GET", "dynos"): lambda: (200, standin.platform.dynos_json()),
                ("GET", "routers"): lambda: (200, standin.platform.routers_json()),
                ("POST", "marks"): self._mark,
                ("POST", "shutdown"): self._shutdown,
            }
            handler = routes.get((self.command, action))
            if handler is None:
                self._json(404, {"id": "not_found", "message": f"no admin route {action}"})
                return
            status, value = handler()
            self._json(status, value)

        def _entries(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
            since = int((query.get("since") or ["0"])[0])
            with standin.log.lock:
                return [dict(e) for e in standin.log.entries[since:]]

        def _add_fault(self) -> tuple[int, Any]:
            try:
                spec = json.loads(self._read_body() or b"{}")
                fault = standin.faults.add(spec)
            except (ValueError, TypeError, FaultError) as exc:
                return 400, {"id": "bad_request", "message": str(exc)}
            return 201, fault.__dict__

        def _mark(self) -> tuple[int, Any]:
            """A labelled line in the request log, so tests can slice it into runs."""
            try:
                label = str(json.loads(self._read_body() or b"{}").get("label", ""))
            except (ValueError, AttributeError):
                return 400, {"id": "bad_request", "message": 'body must be {"label": ...}'}
            entry = {
                "time": time.time(),
                "kind": "mark",
                "label": label,
                "method": "POST",
                "path": "/__standin__/marks",
                "writes": False,
                "violations": [],
                "status": 201,
            }
            standin.log.add(entry)
            return 201, {"seq": entry["seq"], "label": label}

        def _shutdown(self) -> tuple[int, Any]:
            standin.shutdown_requested.set()
            return 202, {"ok": True}

    return Handler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
