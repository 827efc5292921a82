"""Load the official Heroku Platform API hyper-schema and hold traffic to it.

The schema is never copied into the repository: it is read at run time from
``HEROKU_API_SCHEMA`` or ``../shared/heroku/platform-api.schema.json`` next to
the project root. Every link (method + href template) becomes a compiled
route; requests are validated against the link's ``schema`` and responses
against its ``targetSchema``.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import referencing
from referencing.jsonschema import DRAFT4

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SCHEMA_PATH = REPO_ROOT.parent / "shared" / "heroku" / "platform-api.schema.json"
SCHEMA_URI = "urn:x-heroku-platform-api-schema"

# The one place the stand-in's answers depart from the schema, and why: the
# schema pins app.web_url to *.herokuapp.com, but the stand-in's dynos listen on
# loopback ports, and the role must reach `<web_url>healthz` without any
# stand-in special case. Everything else is validated as published.
WEB_URL_POINTER = ("definitions", "app", "definitions", "web_url")
LOOPBACK_WEB_URL_PATTERN = r"^https?://127\.0\.0\.1:[0-9]{2,5}/$"

_HOSTNAME = re.compile(r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_PLACEHOLDER = re.compile(r"\{\(([^)]+)\)\}")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class SchemaUnavailable(RuntimeError):
    """The official schema file is not where we look for it."""


def schema_path() -> Path:
    env = os.environ.get("HEROKU_API_SCHEMA")
    return Path(env) if env else DEFAULT_SCHEMA_PATH


def load_schema(path: Path | None = None) -> dict[str, Any]:
    path = path or schema_path()
    if not path.is_file():
        raise SchemaUnavailable(
            f"Heroku Platform API schema not found at {path}; set HEROKU_API_SCHEMA "
            "or provide ../shared/heroku/platform-api.schema.json (see tests/standins/"
            "heroku_api/README.md)"
        )
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _strict_properties(validator, value, instance, schema) -> Iterator[jsonschema.ValidationError]:
    """interagent hyper-schema ``strictProperties``: every declared property, nothing else."""
    if not value or not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    for name in declared:
        if name not in instance:
            yield jsonschema.ValidationError(f"{name!r} is a required property (strictProperties)")
    for name in instance:
        if name not in declared:
            yield jsonschema.ValidationError(
                f"additional property {name!r} is not allowed (strictProperties)"
            )


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return bool(re.fullmatch(_UUID, value))


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = urllib.parse.urlsplit(value)
    if not parsed.scheme:
        # domain.hostname is `"format": "uri"` in the schema, yet Heroku answers a bare
        # host name there ("subdomain.example.com", the schema's own example).
        return bool(_HOSTNAME.fullmatch(value))
    return bool(parsed.netloc or parsed.path)


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=("email", "ipv4", "regex"))
    checker.checks("uuid")(_is_uuid)
    checker.checks("date-time")(_is_date_time)
    checker.checks("uri")(_is_uri)
    checker.checks("date")(
        lambda v: not isinstance(v, str) or bool(re.fullmatch(r"\d{4}-\d\d-\d\d", v))
    )
    return checker


RequestValidator = jsonschema.Draft4Validator
ResponseValidator = jsonschema.validators.extend(
    jsonschema.Draft4Validator, {"strictProperties": _strict_properties}
)


@dataclass
class Link:
    """One link of the hyper-schema, compiled for matching."""

    resource: str
    index: int
    method: str
    href: str
    template: str  # readable form, e.g. /apps/{app}/builds/{build}
    title: str
    rel: str
    regex: re.Pattern[str]
    params: list[str]
    has_schema: bool
    has_target: bool
    ranges: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def pointer(self) -> str:
        return f"{SCHEMA_URI}#/definitions/{self.resource}/links/{self.index}"

    @property
    def is_list(self) -> bool:
        return self.rel == "instances"


@dataclass
class Match:
    link: Link
    params: dict[str, str]


class HyperSchema:
    """The compiled schema: route matching plus request/response validation."""

    def __init__(self, document: dict[str, Any]):
        self.document = document
        self._relaxed = json.loads(json.dumps(document))
        node = self._relaxed
        for part in WEB_URL_POINTER:
            node = node[part]
        node["pattern"] = LOOPBACK_WEB_URL_PATTERN
        self.registry = referencing.Registry().with_resource(
            SCHEMA_URI, referencing.Resource(contents=self._relaxed, specification=DRAFT4)
        )
        self.strict_registry = referencing.Registry().with_resource(
            SCHEMA_URI, referencing.Resource(contents=document, specification=DRAFT4)
        )
        self.format_checker = _format_checker()
        self.links: list[Link] = []
        for resource, definition in document["definitions"].items():
            for index, link in enumerate(definition.get("links", [])):
                if "method" not in link or not link.get("href", "").startswith("/"):
                    continue
                self.links.append(self._compile(resource, index, link))

    # -- routes -------------------------------------------------------------
    def _resolve_pointer(self, pointer: str) -> dict[str, Any]:
        node: Any = self.document
        for part in pointer.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _identity_regex(self, pointer: str) -> str:
        node = self._resolve_pointer(pointer)
        alternatives = node.get("anyOf") or [node]
        pieces = []
        for alt in alternatives:
            target = self._resolve_pointer(alt["$ref"]) if "$ref" in alt else alt
            pieces.append(self._value_regex(target))
        return "(?:" + "|".join(f"(?:{p})" for p in pieces) + ")"

    def _value_regex(self, node: dict[str, Any]) -> str:
        if "$ref" in node:
            node = self._resolve_pointer(node["$ref"])
        if "anyOf" in node:
            return "|".join(self._value_regex(alt) for alt in node["anyOf"])
        if "enum" in node:
            return "|".join(re.escape(str(v)) for v in node["enum"])
        if "pattern" in node:
            return node["pattern"].lstrip("^").rstrip("$")
        if node.get("format") == "uuid":
            return _UUID
        if node.get("format") == "email":
            return r"[^/@\s]+@[^/@\s]+"
        types = node.get("type", [])
        if "integer" in types:
            return r"[0-9]+"
        return r"[^/]+"

    def _compile(self, resource: str, index: int, link: dict[str, Any]) -> Link:
        href = link["href"]
        regex_parts: list[str] = []
        template_parts: list[str] = []
        params: list[str] = []
        pos = 0
        for placeholder in _PLACEHOLDER.finditer(href):
            literal = href[pos : placeholder.start()]
            regex_parts.append(re.escape(literal))
            template_parts.append(literal)
            pointer = urllib.parse.unquote(placeholder.group(1))
            # "#/definitions/add-on/definitions/identity" -> "add_on"
            name = pointer.split("/")[2].replace("-", "_")
            while name in params:
                name += "_"
            params.append(name)
            regex_parts.append(f"(?P<{name}>{self._identity_regex(pointer)})")
            template_parts.append("{" + name + "}")
            pos = placeholder.end()
        regex_parts.append(re.escape(href[pos:]))
        template_parts.append(href[pos:])
        return Link(
            resource=resource,
            index=index,
            method=link["method"].upper(),
            href=href,
            template="".join(template_parts),
            title=link.get("title", ""),
            rel=link.get("rel", ""),
            regex=re.compile("^" + "".join(regex_parts) + "$"),
            params=params,
            has_schema="schema" in link,
            has_target="targetSchema" in link,
            ranges=list(link.get("ranges", [])),
        )

    def match(self, method: str, path: str) -> list[Match]:
        """All links whose method and href template match; the caller picks by body."""
        found = []
        for link in self.links:
            if link.method != method:
                continue
            m = link.regex.match(path)
            if m:
                found.append(
                    Match(link, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()})
                )
        return found

    def path_exists(self, path: str) -> bool:
        return any(link.regex.match(path) for link in self.links)

    # -- validation ---------------------------------------------------------
    def request_errors(self, link: Link, body: Any) -> list[str]:
        """Errors of a request body against the link's ``schema`` (none if it has none)."""
        if not link.has_schema:
            return [] if body in (None, {}) else ["this link takes no request body"]
        validator = RequestValidator(
            {"$ref": f"{link.pointer}/schema"},
            registry=self.strict_registry,
            format_checker=self.format_checker,
        )
        return [_describe(e) for e in validator.iter_errors(body if body is not None else {})]

    def response_errors(self, link: Link, body: Any) -> list[str]:
        """Errors of a response body against ``targetSchema``, strictProperties enforced."""
        if not link.has_target:
            return []
        validator = ResponseValidator(
            {"$ref": f"{link.pointer}/targetSchema"},
            registry=self.registry,
            format_checker=self.format_checker,
        )
        return [_describe(e) for e in validator.iter_errors(body)]

    def definition_errors(self, pointer: str, value: Any) -> list[str]:
        """Errors of a value against any definition (used by tests)."""
        validator = ResponseValidator(
            {"$ref": f"{SCHEMA_URI}#{pointer}"},
            registry=self.registry,
            format_checker=self.format_checker,
        )
        return [_describe(e) for e in validator.iter_errors(value)]


def _describe(error: jsonschema.ValidationError) -> str:
    """Say what failed without echoing the value: bodies may carry secrets."""
    where = "/".join(str(p) for p in error.absolute_path) or "(body)"
    if error.validator in ("required", "additionalProperties", "strictProperties"):
        return f"{where}: {error.message}"
    expected = json.dumps(error.validator_value)
    if len(expected) > 120:
        expected = expected[:117] + "..."
    return f"{where}: does not satisfy {error.validator} {expected}"
