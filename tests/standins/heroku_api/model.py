"""The stand-in's state and how Heroku renders it as JSON."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .streams import Stream


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    return str(uuid.uuid4())


ACCOUNT = {"id": new_id(), "email": "standin-owner@example.com"}

REGIONS = [
    # name, description, country, locale, provider region, private_capable
    ("us", "United States", "United States", "Virginia", "us-east-1", False),
    ("eu", "Europe", "Ireland", "Dublin", "eu-west-1", False),
    ("virginia", "Virginia, United States", "United States", "Virginia", "us-east-1", True),
    ("oregon", "Oregon, United States", "United States", "Oregon", "us-west-2", True),
    ("frankfurt", "Frankfurt, Germany", "Germany", "Frankfurt", "eu-central-1", True),
    ("tokyo", "Tokyo, Japan", "Japan", "Tokyo", "ap-northeast-1", True),
]
STACKS = [
    # name, state, default
    ("heroku-22", "public", False),
    ("heroku-24", "public", True),
]
# Size name (lower case as the API accepts it) -> (display name, at most 1 per type?)
DYNO_SIZES = {
    "eco": ("Eco", True),
    "basic": ("Basic", True),
    "standard-1x": ("Standard-1X", False),
    "standard-2x": ("Standard-2X", False),
    "performance-m": ("Performance-M", False),
    "performance-l": ("Performance-L", False),
}
DEFAULT_DYNO_SIZE = "basic"
ADDON_SERVICES = {
    "heroku-postgresql": {
        "plans": {
            "essential-0": 500,
            "essential-1": 950,
            "essential-2": 2000,
            "standard-0": 5000,
            "standard-2": 20000,
            "premium-0": 20000,
        },
        "attachment": "DATABASE",
        "color_prefix": "HEROKU_POSTGRESQL",
        "name_prefix": "postgresql",
    },
    "heroku-redis": {
        "plans": {"mini": 300, "premium-0": 1500, "premium-1": 3000},
        "attachment": "REDIS",
        "color_prefix": "HEROKU_REDIS",
        "name_prefix": "redis",
    },
}
_NAME_WORDS = ["curved", "shallow", "rigid", "opaque", "amorphous", "spherical", "cubed"]
_COLORS = ["AMBER", "BLUE", "COBALT", "CRIMSON", "GOLD", "GRAY", "GREEN", "IVORY"]
_IDS: dict[str, str] = {}


def stable_id(kind: str) -> str:
    """Same uuid for the same fixed object (region, stack, size) during a run."""
    return _IDS.setdefault(kind, new_id())


def region_json(name: str) -> dict[str, Any] | None:
    for rname, desc, country, locale, provider, private in REGIONS:
        if rname == name:
            return {
                "country": country,
                "created_at": "2012-01-01T00:00:00Z",
                "description": desc,
                "id": stable_id("region:" + rname),
                "locale": locale,
                "name": rname,
                "private_capable": private,
                "provider": {"name": "amazon-web-services", "region": provider},
                "updated_at": "2012-01-01T00:00:00Z",
            }
    return None


def find_region(identity: str) -> dict[str, Any] | None:
    for rname, *_ in REGIONS:
        region = region_json(rname)
        if region and identity in (region["id"], region["name"]):
            return region
    return None


def stack_json(name: str) -> dict[str, Any] | None:
    for sname, state, default in STACKS:
        if sname == name:
            return {
                "created_at": "2022-05-01T00:00:00Z",
                "default": default,
                "id": stable_id("stack:" + sname),
                "name": sname,
                "state": state,
                "updated_at": "2024-05-01T00:00:00Z",
            }
    return None


def find_stack(identity: str) -> dict[str, Any] | None:
    for sname, *_ in STACKS:
        stack = stack_json(sname)
        if stack and identity in (stack["id"], stack["name"]):
            return stack
    return None


def default_stack() -> str:
    return next(name for name, _, default in STACKS if default)


def buildpack_json(identifier: str) -> dict[str, str]:
    """How Heroku answers a buildpack: registry names become ``urn:buildpack:`` URLs."""
    if identifier.startswith("urn:buildpack:"):
        name = identifier.removeprefix("urn:buildpack:")
        return {"url": identifier, "name": name}
    if re.fullmatch(r"[\w-]+/[\w-]+", identifier):
        return {"url": "urn:buildpack:" + identifier, "name": identifier}
    return {"url": identifier, "name": identifier}


@dataclass
class Slug:
    id: str
    path: Path
    process_types: dict[str, str]
    stack: str
    size: int


@dataclass
class Release:
    id: str
    version: int
    description: str
    status: str
    config: dict[str, str]
    slug_id: str | None
    addon_plan_names: list[str]
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    stream: Stream | None = None
    stream_url: str | None = None


@dataclass
class Build:
    id: str
    status: str
    source_blob: dict[str, Any]
    buildpacks: list[dict[str, str]]
    stack: str
    stream: Stream
    stream_url: str
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    release_id: str | None = None
    slug_id: str | None = None


@dataclass
class Formation:
    id: str
    type: str
    quantity: int
    size: str
    command: str
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)


@dataclass
class Addon:
    id: str
    name: str
    service: str
    plan: str
    state: str
    attachment: str
    provider_id: str
    ready_at: float
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    backing: Any = None
    attached: bool = False
    message: str | None = None

    @property
    def config_var(self) -> str:
        return f"{self.attachment}_URL"


@dataclass
class App:
    id: str
    name: str
    region: str
    stack: str
    build_stack: str
    web_port: int
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    released_at: str | None = None
    maintenance: bool = False
    config: dict[str, str] = field(default_factory=dict)
    buildpacks: list[dict[str, str]] = field(default_factory=list)
    addons: list[Addon] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    builds: list[Build] = field(default_factory=list)
    formation: dict[str, Formation] = field(default_factory=dict)
    slugs: dict[str, Slug] = field(default_factory=dict)
    current_release_id: str | None = None

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    def current_release(self) -> Release | None:
        return next((r for r in self.releases if r.id == self.current_release_id), None)

    def current_slug(self) -> Slug | None:
        release = self.current_release()
        if release and release.slug_id:
            return self.slugs.get(release.slug_id)
        return None

    def addon_name_taken(self, name: str) -> bool:
        return any(a.name == name for a in self.addons)


def addon_name(service: str, taken: set[str]) -> str:
    prefix = ADDON_SERVICES[service]["name_prefix"]
    while True:
        candidate = f"{prefix}-{_NAME_WORDS[int(time.time() * 1000) % len(_NAME_WORDS)]}-"
        candidate += str(uuid.uuid4().int % 90000 + 10000)
        if candidate not in taken:
            return candidate


def attachment_name(service: str, app: App) -> str:
    info = ADDON_SERVICES[service]
    used = {a.attachment for a in app.addons}
    if info["attachment"] not in used:
        return info["attachment"]
    for color in _COLORS:
        candidate = f"{info['color_prefix']}_{color}"
        if candidate not in used:
            return candidate
    return f"{info['color_prefix']}_{uuid.uuid4().hex[:6].upper()}"


# -- JSON renderings (each must validate against the schema's targetSchema) --


def app_json(app: App) -> dict[str, Any]:
    stack = stack_json(app.stack)
    build_stack = stack_json(app.build_stack)
    region = region_json(app.region)
    assert stack and build_stack and region
    return {
        "acm": False,
        "archived_at": None,
        "buildpack_provided_description": "Python" if app.current_slug() else None,
        "build_stack": {"id": build_stack["id"], "name": build_stack["name"]},
        "created_at": app.created_at,
        "generation": {"id": stable_id("generation:cedar"), "name": "cedar"},
        "git_url": f"https://git.heroku.com/{app.name}.git",
        "id": app.id,
        "internal_routing": None,
        "maintenance": app.maintenance,
        "name": app.name,
        "owner": dict(ACCOUNT),
        "organization": None,
        "team": None,
        "region": {"id": region["id"], "name": region["name"]},
        "released_at": app.released_at,
        "repo_size": None,
        "slug_size": app.current_slug().size if app.current_slug() else None,
        "space": None,
        "stack": {"id": stack["id"], "name": stack["name"]},
        "updated_at": app.updated_at,
        "web_url": app.web_url,
    }


def release_json(app: App, release: Release) -> dict[str, Any]:
    return {
        "addon_plan_names": list(release.addon_plan_names),
        "artifacts": [{"type": "slug", "id": release.slug_id}] if release.slug_id else [],
        "app": {"name": app.name, "id": app.id},
        "created_at": release.created_at,
        "description": release.description,
        "id": release.id,
        "updated_at": release.updated_at,
        "slug": {"id": release.slug_id} if release.slug_id else None,
        "status": release.status,
        "user": dict(ACCOUNT),
        "version": release.version,
        "current": release.id == app.current_release_id,
        "output_stream_url": release.stream_url,
        "eligible_for_rollback": release.status == "succeeded"
        and release.id != app.current_release_id,
    }


def build_json(app: App, build: Build) -> dict[str, Any]:
    return {
        "app": {"id": app.id},
        "buildpacks": [dict(bp) for bp in build.buildpacks],
        "created_at": build.created_at,
        "id": build.id,
        "output_stream_url": build.stream_url,
        "source_blob": {
            "checksum": build.source_blob.get("checksum"),
            "url": build.source_blob["url"],
            "version": build.source_blob.get("version"),
            "version_description": build.source_blob.get("version_description"),
        },
        "release": {"id": build.release_id} if build.release_id else None,
        "slug": {"id": build.slug_id} if build.slug_id else None,
        "stack": build.stack,
        "status": build.status,
        "updated_at": build.updated_at,
        "user": dict(ACCOUNT),
    }


def formation_json(app: App, formation: Formation) -> dict[str, Any]:
    display, _ = DYNO_SIZES[formation.size]
    return {
        "app": {"name": app.name, "id": app.id},
        "command": formation.command,
        "created_at": formation.created_at,
        "dyno_size": {"id": stable_id("size:" + formation.size), "name": display},
        "id": formation.id,
        "quantity": formation.quantity,
        "size": display,
        "type": formation.type,
        "updated_at": formation.updated_at,
    }


def addon_json(app: App, addon: Addon) -> dict[str, Any]:
    cents = ADDON_SERVICES[addon.service]["plans"][addon.plan]
    extra = {"provision_message": addon.message} if addon.message else {}
    return extra | {
        "actions": [],
        "addon_service": {"id": stable_id("service:" + addon.service), "name": addon.service},
        "billing_entity": {"id": app.id, "name": app.name, "type": "app"},
        "app": {"id": app.id, "name": app.name},
        "billed_price": {"cents": cents, "contract": False, "unit": "month"},
        "config_vars": [addon.config_var],
        "created_at": addon.created_at,
        "id": addon.id,
        "name": addon.name,
        "plan": {
            "id": stable_id(f"plan:{addon.service}:{addon.plan}"),
            "name": f"{addon.service}:{addon.plan}",
        },
        "provider_id": addon.provider_id,
        "state": addon.state,
        "updated_at": addon.updated_at,
        "web_url": f"https://data.heroku.com/datastores/{addon.id}",
    }


def buildpacks_json(app: App) -> list[dict[str, Any]]:
    return [{"buildpack": dict(bp), "ordinal": i} for i, bp in enumerate(app.buildpacks)]
