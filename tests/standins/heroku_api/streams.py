"""Output streams for builds and release phases (``output_stream_url``).

Heroku serves build and release output as a ``text/plain`` stream that stays
open until the process ends; clients resume after a disconnect with a byte
``Range``. A Stream keeps every byte (in memory and in a file of the state dir)
and wakes readers as text arrives.
"""

from __future__ import annotations

import threading
from pathlib import Path


class Stream:
    def __init__(self, path: Path):
        self.path = path
        self._data = bytearray()
        self._closed = False
        self._cond = threading.Condition()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")

    def write(self, text: str | bytes) -> None:
        chunk = text.encode("utf-8", "replace") if isinstance(text, str) else text
        if not chunk:
            return
        with self._cond:
            self._data.extend(chunk)
            with self.path.open("ab") as fh:
                fh.write(chunk)
            self._cond.notify_all()

    def line(self, text: str = "") -> None:
        self.write(text + "\n")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def text(self) -> str:
        with self._cond:
            return self._data.decode("utf-8", "replace")

    def read_from(self, offset: int, timeout: float) -> tuple[bytes, bool]:
        """Bytes after ``offset`` (waiting up to ``timeout``) and whether the stream ended."""
        with self._cond:
            if len(self._data) <= offset and not self._closed:
                self._cond.wait(timeout)
            return bytes(self._data[offset:]), self._closed
