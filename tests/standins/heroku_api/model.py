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
# Connections each plan allows. Heroku Postgres: essential-0/1 20, essential-2 40,
# standard-0 and premium-0 120, standard-2 400
# (https://devcenter.heroku.com/articles/heroku-postgres-plans). Heroku Key-Value
# Store (Redis): mini 20 (hobby-dev's successor), premium-0 40, premium-1 80
# (https://devcenter.heroku.com/articles/heroku-redis-technical-characterization).
CONNECTION_LIMITS = {
    ("heroku-postgresql", "essential-0"): 20,
    ("heroku-postgresql", "essential-1"): 20,
    ("heroku-postgresql", "essential-2"): 40,
    ("heroku-postgresql", "standard-0"): 120,
    ("heroku-postgresql", "standard-2"): 400,
    ("heroku-postgresql", "premium-0"): 120,
    ("heroku-redis", "mini"): 20,
    ("heroku-redis", "premium-0"): 40,
    ("heroku-redis", "premium-1"): 80,
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
    attachment_id: str = field(default_factory=new_id)

    @property
    def config_var(self) -> str:
        return f"{self.attachment}_URL"


# App features the stand-in knows (GET /apps/{app}/features lists them all), with
# Heroku's doc pages. Effects: preboot changes how web dynos roll (platform.py);
# runtime-dyno-metadata adds HEROKU_APP_ID, HEROKU_RELEASE_VERSION... to dynos.
APP_FEATURES = {
    "preboot": (
        "Preboot",
        "Provide seamless web dyno deploys by starting new dynos and switching traffic "
        "to them before the old ones stop.",
        "https://devcenter.heroku.com/articles/preboot",
    ),
    "runtime-dyno-metadata": (
        "Runtime Dyno Metadata",
        "Provide the app's id, name and release details to its dynos as config vars.",
        "https://devcenter.heroku.com/articles/dyno-metadata",
    ),
    "http-disable-keepalive-to-dyno": (
        "Disable keepalives to dynos",
        "Send each request to a dyno on a new connection (Router 2.0).",
        "https://devcenter.heroku.com/articles/heroku-labs-disabling-keepalives-to-dyno-for-router-2-0",
    ),
}


@dataclass
class Domain:
    id: str
    hostname: str
    kind: str  # heroku | custom
    cname: str | None
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    sni_endpoint: str | None = None


@dataclass
class App:
    id: str
    name: str
    region: str
    stack: str
    build_stack: str
    web_port: int  # the router's plain HTTP listener (Heroku's port 80)
    tls_port: int = 0  # the router's HTTPS listener (443)
    web_url_scheme: str = "http"
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
    team: str | None = None
    locked: bool = False
    acm: bool = False
    features: dict[str, bool] = field(default_factory=dict)
    feature_times: dict[str, str] = field(default_factory=dict)
    domains: list[Domain] = field(default_factory=list)

    @property
    def web_url(self) -> str:
        if self.web_url_scheme == "https":
            return f"https://127.0.0.1:{self.tls_port}/"
        return f"http://127.0.0.1:{self.web_port}/"

    @property
    def default_hostname(self) -> str:
        """The app's Heroku domain (kind "heroku"): the web_url's host."""
        return "127.0.0.1"

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
    team = team_ref(app.team)
    return {
        "acm": app.acm,
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
        "organization": team,
        "team": team,
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


def team_ref(name: str | None) -> dict[str, str] | None:
    return {"id": stable_id("team:" + name), "name": name} if name else None


def team_app_json(app: App) -> dict[str, Any]:
    """The team-app rendering (POST /teams/apps and friends): the app plus team fields."""
    rendered = app_json(app)
    for gone in ("acm", "generation", "organization"):
        rendered.pop(gone, None)
    rendered["team"] = {"name": app.team} if app.team else None
    rendered["joined"] = False
    rendered["locked"] = app.locked
    rendered["internal_routing"] = None
    return rendered


def feature_json(app: App, name: str) -> dict[str, Any]:
    display, description, doc_url = APP_FEATURES[name]
    stamp = app.feature_times.get(name, app.created_at)
    return {
        "created_at": app.created_at,
        "description": description,
        "doc_url": doc_url,
        "enabled": app.features.get(name, False),
        "id": stable_id("feature:" + name),
        "name": name,
        "state": "public" if name != "http-disable-keepalive-to-dyno" else "beta",
        "updated_at": stamp,
        "display_name": display,
        "feedback_email": "feedback@heroku.com",
    }


def domain_json(app: App, domain: Domain) -> dict[str, Any]:
    custom = domain.kind == "custom"
    return {
        # Basic ACM issues certificates for custom domains only
        # (https://devcenter.heroku.com/articles/automated-certificate-management).
        "acm_status": ("cert issued" if app.acm else None) if custom else None,
        "acm_status_reason": None,
        "app": {"name": app.name, "id": app.id},
        "cname": domain.cname,
        "created_at": domain.created_at,
        "hostname": domain.hostname,
        "id": domain.id,
        "kind": domain.kind,
        "updated_at": domain.updated_at,
        "status": "succeeded",
        "sni_endpoint": None,
    }


def attachment_json(app: App, addon: Addon) -> dict[str, Any]:
    return {
        "addon": {
            "id": addon.id,
            "name": addon.name,
            "app": {"id": app.id, "name": app.name},
        },
        "app": {"id": app.id, "name": app.name},
        "created_at": addon.created_at,
        "id": addon.attachment_id,
        "name": addon.attachment,
        "namespace": None,
        "updated_at": addon.updated_at,
        "web_url": f"https://data.heroku.com/datastores/{addon.id}",
        "log_input_url": None,
    }


def collaborator_json(app: App) -> dict[str, Any]:
    """The one account owns every app (apps:info lists collaborators)."""
    return {
        "app": {"name": app.name, "id": app.id},
        "created_at": app.created_at,
        "id": stable_id("collaborator:" + app.id),
        "permissions": [],
        "role": "owner",
        "updated_at": app.created_at,
        "user": {"email": ACCOUNT["email"], "federated": False, "id": ACCOUNT["id"]},
    }
