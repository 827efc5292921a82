"""Heroku ``Range`` / ``Next-Range`` paging of list responses.

Documented behaviour (Platform API reference, "Ranges"): a list is sorted by a
range field (``id`` unless the Range header names another the link accepts);
``Range: <field> [start]..[end]; max=N, order=asc|desc`` selects a window; the
default page is 200 items and the maximum 1000. A truncated answer is
``206 Partial Content`` with ``Next-Range`` set to the header that fetches the
next page (``]`` marks an exclusive start). ``Content-Range`` names the
returned window and ``Accept-Ranges`` the fields the list can be ranged by.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX = 200
LIMIT_MAX = 1000


class RangeError(ValueError):
    """The Range header cannot be satisfied (Heroku answers 416)."""


@dataclass
class RangeSpec:
    field: str
    start: str | None = None
    start_exclusive: bool = False
    end: str | None = None
    max: int = DEFAULT_MAX
    order: str = "asc"


_HEADER = re.compile(r"^\s*(?P<field>[\w-]+)\s+(?P<range>[^;]*?)\s*(?:;\s*(?P<params>.*))?$")


def parse_range(header: str, fields: list[str]) -> RangeSpec:
    m = _HEADER.match(header)
    if not m:
        raise RangeError(f"Range header {header!r} is not '<field> [start]..[end]; max=N'")
    spec = RangeSpec(field=m.group("field"))
    if spec.field not in fields:
        raise RangeError(
            f"Range field {spec.field!r} is not supported here; use one of {', '.join(fields)}"
        )
    window = m.group("range")
    if ".." not in window:
        raise RangeError(f"Range {window!r} lacks '..'")
    start, end = window.split("..", 1)
    if start.startswith("]"):
        spec.start_exclusive = True
        start = start[1:]
    spec.start = start or None
    spec.end = end.strip() or None
    for param in re.split(r"[;,]", m.group("params") or ""):
        param = param.strip()
        if not param:
            continue
        key, _, value = param.partition("=")
        key, value = key.strip(), value.strip()
        if key == "max":
            if not value.isdigit() or not 1 <= int(value) <= LIMIT_MAX:
                raise RangeError(f"max must be an integer from 1 to {LIMIT_MAX}")
            spec.max = int(value)
        elif key == "order":
            if value not in ("asc", "desc"):
                raise RangeError("order must be asc or desc")
            spec.order = value
        else:
            raise RangeError(f"unknown Range parameter {key!r}")
    return spec


def _key(value: Any) -> tuple[int, Any]:
    # Integers (release versions) sort numerically, everything else as text.
    if isinstance(value, bool) or value is None:
        return (0, str(value))
    if isinstance(value, int):
        return (1, value)
    return (2, str(value))


def _cmp_value(sample: Any, raw: str) -> Any:
    if isinstance(sample, int) and not isinstance(sample, bool) and raw.lstrip("-").isdigit():
        return int(raw)
    return raw


def page(
    items: list[dict[str, Any]],
    header: str | None,
    fields: list[str],
    aliases: dict[str, str] | None = None,
) -> tuple[int, list[dict[str, Any]], dict[str, str]]:
    """Answer a list request: status (200/206), the window, and the headers to send.

    ``aliases`` maps a range field to the attribute holding its value (builds are
    ranged by ``started_at``, which Heroku fills from ``created_at``). Items are
    given oldest first; ties keep that order, newest first when descending.
    """
    spec = parse_range(header, fields) if header else RangeSpec(field=fields[0])
    attr = (aliases or {}).get(spec.field, spec.field)
    reverse = spec.order == "desc"
    indexed = list(enumerate(items))
    indexed.sort(key=lambda pair: (_key(pair[1].get(attr)), pair[0]), reverse=reverse)
    ordered = [item for _, item in indexed]

    def after_start(item: dict[str, Any]) -> bool:
        if spec.start is None:
            return True
        value = item.get(attr)
        bound = _cmp_value(value, spec.start)
        a, b = _key(value), _key(bound)
        if spec.start_exclusive:
            return a < b if reverse else a > b
        return a <= b if reverse else a >= b

    def before_end(item: dict[str, Any]) -> bool:
        if spec.end is None:
            return True
        value = item.get(attr)
        a, b = _key(value), _key(_cmp_value(value, spec.end))
        return a >= b if reverse else a <= b

    window = [item for item in ordered if after_start(item) and before_end(item)]
    chosen = window[: spec.max]
    headers = {"Accept-Ranges": ", ".join(fields)}
    if chosen:
        first, last = chosen[0].get(attr), chosen[-1].get(attr)
        headers["Content-Range"] = f"{spec.field} {first}..{last}"
    status = 200
    if len(window) > spec.max:
        status = 206
        params = f"max={spec.max}" + (", order=desc" if reverse else "")
        headers["Next-Range"] = f"{spec.field} ]{chosen[-1].get(attr)}..; {params}"
    return status, chosen, headers
