"""Fault injection: what the stand-in should get wrong on purpose, and how often."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass
from typing import Any

KINDS = (
    "rate_limit",
    "unavailable",
    "server_error",
    "build_failure",
    "release_failure",
    "slow_addon",
)
HTTP_KINDS = {"rate_limit": 429, "unavailable": 503, "server_error": 500}


class FaultError(ValueError):
    pass


@dataclass
class Fault:
    kind: str
    count: int = 1
    method: str | None = None  # HTTP faults: only this method ...
    path: str | None = None  # ... and paths matching this regular expression
    retry_after: int | None = None  # 429/503: seconds for Retry-After
    seconds: float = 0.0  # slow_addon: provisioning time

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not (self.path and not re.search(self.path, path))


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, spec: dict[str, Any]) -> Fault:
        if spec.get("kind") not in KINDS:
            raise FaultError(f"kind must be one of {', '.join(KINDS)}")
        allowed = set(Fault.__dataclass_fields__)
        unknown = set(spec) - allowed
        if unknown:
            raise FaultError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        fault = Fault(**spec)
        if not isinstance(fault.count, int) or fault.count < 1:
            raise FaultError("count must be a positive integer")
        if fault.path:
            try:
                re.compile(fault.path)
            except re.error as exc:
                raise FaultError(f"path is not a regular expression: {exc}") from exc
        with self._lock:
            self._faults.append(fault)
        return fault

    def take_http(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in HTTP_KINDS and fault.matches(method, path):
                    return self._consume(fault)
        return None

    def take(self, kind: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind:
                    return self._consume(fault)
        return None

    def _consume(self, fault: Fault) -> Fault:
        fault.count -= 1
        if fault.count <= 0:
            self._faults.remove(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]
