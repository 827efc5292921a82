"""A small asyncio HTTP/1.1 client with keep-alive, for load that Python generates.

No third-party client: one connection per simulated client, reused across
requests, reconnecting when the server closes it. Enough HTTP for our own
app's responses (Content-Length, chunked, or read to close).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from urllib.parse import urlsplit


class HTTPError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class Connection:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// URLs: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, body: object | None = None, retry: bool = True
    ) -> Response:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Accept: application/json\r\nContent-Length: {len(payload)}\r\n"
        )
        if body is not None:
            head += "Content-Type: application/json\r\n"
        message = (head + "\r\n").encode() + payload
        reused = self.writer is not None
        try:
            return await asyncio.wait_for(self._exchange(message), self.timeout)
        except (ConnectionError, asyncio.IncompleteReadError, HTTPError):
            await self.close()
            # A kept-alive connection the server closed meanwhile: try a fresh one
            # once, but never resend a POST (it may have been applied).
            if reused and retry and method == "GET":
                return await self.request(method, path, body, retry=False)
            raise
        except BaseException:
            await self.close()
            raise

    async def _exchange(self, message: bytes) -> Response:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(message)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        parts = status_line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise HTTPError(f"bad status line {status_line[:80]!r}")
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(int(parts[1]), headers, body)

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        chunks = []
        while True:
            size = int((await self.reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                await self.reader.readline()
                return b"".join(chunks)
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readline()
