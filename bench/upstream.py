"""The slow upstream: an HTTP server that answers every request after a delay.

It stands for the API or service a real view waits on. It must never be the
bottleneck, so it is a bare asyncio protocol (uvloop when installed): no
framework, a timer per request, thousands of open connections are fine.

    python -m bench.upstream --port 7001 --delay-ms 100
"""

from __future__ import annotations

import argparse
import asyncio
import signal

BODY = b'{"upstream": "ok"}\n'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\nConnection: close\r\n\r\n"
    + BODY
)
MAX_HEAD = 16384


class SlowResponder(asyncio.Protocol):
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, only quack like one.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.timer is not None:
            return  # one request per connection; ignore anything after it
        self.buffer += data
        if b"\r\n\r\n" in self.buffer:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.delay, self.respond)
        elif len(self.buffer) > MAX_HEAD:
            self.transport.close()

    def respond(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()


async def serve(host: str, port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SlowResponder(delay), host, port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(f"upstream: answering after {delay * 1000:.0f} ms on {host}:{port}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port, args.delay_ms / 1000))
    else:
        uvloop.run(serve(args.host, args.port, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
