"""One GET to the benchmark's slow upstream (bench/upstream.py), written twice with the same logic.

The sync variant uses the socket module, which Gunicorn's gevent worker has
monkey-patched (so the wait yields to other greenlets) and which blocks the
whole process under Gunicorn's sync worker. The async variant uses asyncio
streams, for an `async def` view under an ASGI server. Both speak the same
minimal HTTP/1.1 (one request per connection, read to EOF) so that the
benchmark compares servers, not HTTP client libraries.
"""

import asyncio
import os
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

URL_VARIABLE = "BENCH_UPSTREAM_URL"
TIMEOUT_SECONDS = 30.0
MAX_RESPONSE_BYTES = 1 << 20


class UpstreamError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str

    @property
    def request(self) -> bytes:
        return (
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "User-Agent: double-boiler-bench\r\nConnection: close\r\n\r\n"
        ).encode("ascii")


def configured_target() -> Target:
    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        raise UpstreamError(f"{URL_VARIABLE} is not set: this endpoint only runs in the benchmark")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UpstreamError(f"{URL_VARIABLE} must be an http:// URL")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.hostname, parts.port or 80, path)


def parse_response(raw: bytes, started: float) -> dict:
    head, sep, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if not sep or len(status_line) < 2 or not status_line[1].isdigit():
        raise UpstreamError("the upstream sent no valid HTTP response")
    return {
        "upstream_status": int(status_line[1]),
        "upstream_bytes": len(body),
        "upstream_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def fetch(target: Target) -> dict:
    started = time.perf_counter()
    chunks: list[bytes] = []
    size = 0
    with socket.create_connection((target.host, target.port), timeout=TIMEOUT_SECONDS) as sock:
        sock.sendall(target.request)
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise UpstreamError("the upstream response is too large")
    return parse_response(b"".join(chunks), started)


async def afetch(target: Target) -> dict:
    started = time.perf_counter()

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        try:
            writer.write(target.request)
            await writer.drain()
            chunks: list[bytes] = []
            size = 0
            while chunk := await reader.read(65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise UpstreamError("the upstream response is too large")
            return b"".join(chunks)
        finally:
            writer.close()

    raw = await asyncio.wait_for(exchange(), TIMEOUT_SECONDS)
    return parse_response(raw, started)
