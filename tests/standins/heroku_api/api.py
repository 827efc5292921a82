"""Handlers for the Platform API links the stand-in implements.

Each handler gets the matched path parameters and the (already schema-valid)
JSON body and returns ``(status, body)``. Refusals raise PlatformError with
Heroku's status code and error id.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

from . import model
from .backing import BackingError
from .model import App
from .platform import Platform, PlatformError

Handler = Callable[[Platform, dict[str, str], Any], tuple[int, Any]]
HANDLERS: dict[str, Handler] = {}


def route(key: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[key] = fn
        return fn

    return register


def _invalid(message: str) -> PlatformError:
    return PlatformError(422, "invalid_params", message)


def _not_found(message: str) -> PlatformError:
    return PlatformError(404, "not_found", message)


# -- account, regions, stacks ----------------------------------------------


@route("GET /account")
def account_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, {
        "allow_tracking": False,
        "beta": False,
        "created_at": "2020-01-01T00:00:00Z",
        "email": model.ACCOUNT["email"],
        "federated": False,
        "id": model.ACCOUNT["id"],
        "identity_provider": None,
        "last_login": model.now(),
        "name": "Stand-in Owner",
        "sms_number": None,
        "suspended_at": None,
        "delinquent_at": None,
        "two_factor_authentication": False,
        "updated_at": "2020-01-01T00:00:00Z",
        "verified": True,
        "country_of_residence": None,
        "default_organization": None,
        "default_team": None,
    }


@route("GET /regions")
def region_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, [model.region_json(r[0]) for r in model.REGIONS]


@route("GET /regions/{region}")
def region_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    region = model.find_region(params["region"])
    if not region:
        raise _not_found("Couldn't find that region.")
    return 200, region


@route("GET /stacks")
def stack_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, [model.stack_json(s[0]) for s in model.STACKS]


@route("GET /stacks/{stack}")
def stack_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    stack = model.find_stack(params["stack"])
    if not stack:
        raise _not_found("Couldn't find that stack.")
    return 200, stack


# -- apps -------------------------------------------------------------------


def _generated_name(platform: Platform) -> str:
    words = ["sleepy", "lake", "shielded", "wave", "quiet", "river", "young", "shore"]
    while True:
        name = f"{secrets.choice(words)}-{secrets.choice(words)}-{secrets.randbelow(90000) + 10000}"
        if not any(a.name == name for a in platform.apps.values()):
            return name


@route("POST /apps")
def app_create(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    body = body or {}
    region = model.find_region(body.get("region", "us"))
    if not region:
        raise _invalid(f"Couldn't find that region ({body.get('region')}).")
    if region["private_capable"]:
        raise _invalid(f"Region {region['name']} is only available for Private Spaces.")
    stack = model.find_stack(body.get("stack", model.default_stack()))
    if not stack:
        raise _invalid(f"Couldn't find that stack ({body.get('stack')}).")
    with platform.lock:
        name = body.get("name") or _generated_name(platform)
        if any(a.name == name for a in platform.apps.values()):
            raise _invalid(f"Name {name} is already taken")
        app = App(
            id=model.new_id(),
            name=name,
            region=region["name"],
            stack=stack["name"],
            build_stack=stack["name"],
            web_port=platform.allocate_port(),
            tls_port=platform.allocate_port(),
            web_url_scheme=platform.options.web_url_scheme,
        )
        app.domains.append(
            model.Domain(
                id=model.new_id(), hostname=app.default_hostname, kind="heroku", cname=None
            )
        )
        platform.apps[app.id] = app
        for description in ("Initial release", "Enable Logplex"):
            release = model.Release(
                id=model.new_id(),
                version=len(app.releases) + 1,
                description=description,
                status="succeeded",
                config={},
                slug_id=None,
                addon_plan_names=[],
            )
            app.releases.append(release)
            app.current_release_id = release.id
        app.released_at = model.now()
    platform.router.add(app)
    platform.log(app, "heroku", f"app {name} created")
    return 201, model.app_json(app)


@route("GET /apps")
def app_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    with platform.lock:
        return 200, [model.app_json(a) for a in platform.apps.values()]


@route("GET /apps/{app}")
def app_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, model.app_json(platform.find_app(params["app"]))


@route("PATCH /apps/{app}")
def app_update(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        if "build_stack" in body:
            stack = model.find_stack(body["build_stack"])
            if not stack:
                raise _invalid(f"Couldn't find that stack ({body['build_stack']}).")
            app.build_stack = stack["name"]
        if "maintenance" in body:
            app.maintenance = body["maintenance"]
        if "name" in body and body["name"] != app.name:
            if any(a.name == body["name"] for a in platform.apps.values()):
                raise _invalid(f"Name {body['name']} is already taken")
            app.name = body["name"]
        app.updated_at = model.now()
        return 200, model.app_json(app)


@route("DELETE /apps/{app}")
def app_delete(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        rendered = model.app_json(app)
        del platform.apps[app.id]
    platform.enqueue(app, lambda: _teardown(platform, app))
    return 200, rendered


def _teardown(platform: Platform, app: App) -> None:
    platform.router.remove(app)
    platform.stop_dynos(app)
    for addon in list(app.addons):
        platform.destroy_addon(app, addon)
    platform.release_port(app.web_port)
    platform.release_port(app.tls_port)


# -- config vars ------------------------------------------------------------


@route("GET /apps/{app}/config-vars")
def config_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        return 200, dict(app.config)


@route("GET /apps/{app}/releases/{release}/config-vars")
def release_config_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    return 200, dict(_find_release(app, params["release"]).config)


@route("PATCH /apps/{app}/config-vars")
def config_update(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        set_names = [k for k, v in body.items() if v is not None and app.config.get(k) != v]
        removed = [k for k, v in body.items() if v is None and k in app.config]
        for name in set_names:
            app.config[name] = body[name]
        for name in removed:
            del app.config[name]
        if set_names or removed:
            parts = []
            if set_names:
                parts.append(f"Set {', '.join(set_names)} config vars")
            if removed:
                parts.append(f"Remove {', '.join(removed)} config vars")
            current = app.current_release()
            platform.create_release(
                app, "; ".join(parts), slug_id=current.slug_id if current else None, run_phase=True
            )
        return 200, dict(app.config)


# -- buildpacks ---------------------------------------------------------------


@route("GET /apps/{app}/buildpack-installations")
def buildpack_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        return 200, model.buildpacks_json(app)


@route("PUT /apps/{app}/buildpack-installations")
def buildpack_update(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        app.buildpacks = [model.buildpack_json(u["buildpack"]) for u in body["updates"]]
        app.updated_at = model.now()
        return 200, model.buildpacks_json(app)


# -- add-ons ------------------------------------------------------------------


def _plan(identity: str) -> tuple[str, str]:
    service, _, plan = identity.partition(":")
    for name, info in model.ADDON_SERVICES.items():
        for plan_name in info["plans"]:
            if identity == model.stable_id(f"plan:{name}:{plan_name}"):
                return name, plan_name
    if service not in model.ADDON_SERVICES:
        raise _invalid(
            f'Couldn\'t find either the add-on service or the add-on plan of "{identity}".'
        )
    plans = model.ADDON_SERVICES[service]["plans"]
    plan = plan or next(iter(plans))
    if plan not in plans:
        raise _invalid(
            f'Couldn\'t find either the add-on service or the add-on plan of "{identity}".'
        )
    return service, plan


def _find_addon(platform: Platform, identity: str, app: App | None) -> tuple[App, model.Addon]:
    apps = [app] if app else list(platform.apps.values())
    for candidate in apps:
        for addon in candidate.addons:
            if identity in (addon.id, addon.name):
                return candidate, addon
    raise _not_found("Couldn't find that add-on.")


@route("POST /apps/{app}/addons")
def addon_create(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    service, plan = _plan(body["plan"])
    attachment = (body.get("attachment") or {}).get("name")
    addon = platform.provision_addon(app, service, plan, attachment, body.get("name"))
    return 201, model.addon_json(app, addon)


@route("GET /apps/{app}/addons")
def addon_list_app(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        return 200, [model.addon_json(app, a) for a in app.addons]


@route("GET /addons")
def addon_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    with platform.lock:
        return 200, [model.addon_json(app, a) for app in platform.apps.values() for a in app.addons]


@route("GET /apps/{app}/addons/{add_on}")
def addon_info_app(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app, addon = _find_addon(platform, params["add_on"], platform.find_app(params["app"]))
    return 200, model.addon_json(app, addon)


@route("GET /addons/{add_on}")
def addon_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app, addon = _find_addon(platform, params["add_on"], None)
    return 200, model.addon_json(app, addon)


@route("PATCH /apps/{app}/addons/{add_on}")
def addon_update(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app, addon = _find_addon(platform, params["add_on"], platform.find_app(params["app"]))
    service, plan = _plan(body["plan"])
    if service != addon.service:
        raise _invalid(f"Cannot change {addon.service} to a plan of {service}.")
    if plan != addon.plan:
        try:
            platform.change_plan(addon, plan)
        except BackingError as exc:
            raise PlatformError(503, "service_unavailable", f"stand-in: {exc}") from exc
    with platform.lock:
        addon.plan = plan
        addon.updated_at = model.now()
        if body.get("name"):
            addon.name = body["name"]
        return 200, model.addon_json(app, addon)


@route("DELETE /apps/{app}/addons/{add_on}")
def addon_delete(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app, addon = _find_addon(platform, params["add_on"], platform.find_app(params["app"]))
    rendered = model.addon_json(app, addon)
    platform.destroy_addon(app, addon)
    rendered["state"] = "deprovisioned"
    return 200, rendered


# -- sources and builds -------------------------------------------------------


@route("POST /sources")
def source_create(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    blob_id = model.new_id()
    get_sig, put_sig = secrets.token_hex(16), secrets.token_hex(16)
    with platform.lock:
        platform.blobs[blob_id] = {"get": get_sig, "put": put_sig}
    base = f"{platform.options.public_url}/__blobs__/sources/{blob_id}"
    return 201, {
        "source_blob": {"get_url": f"{base}?sig={get_sig}", "put_url": f"{base}?sig={put_sig}"}
    }


@route("POST /apps/{app}/sources")
def source_create_deprecated(
    platform: Platform, params: dict[str, str], body: Any
) -> tuple[int, Any]:
    raise PlatformError(
        410, "gone", "This endpoint was deactivated on 2017-08-01; use POST /sources instead."
    )


@route("POST /apps/{app}/builds")
def build_create(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    blob = body["source_blob"]
    if not blob.get("url"):
        raise _invalid("source_blob.url is required.")
    build = platform.start_build(app, blob, body.get("buildpacks"))
    with platform.lock:
        return 201, model.build_json(app, build)


@route("GET /apps/{app}/builds")
def build_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        return 200, [model.build_json(app, b) for b in app.builds]


@route("GET /apps/{app}/builds/{build}")
def build_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        for build in app.builds:
            if build.id == params["build"]:
                return 200, model.build_json(app, build)
    raise _not_found("Couldn't find that build.")


# -- releases -----------------------------------------------------------------


def _find_release(app: App, identity: str) -> model.Release:
    for release in app.releases:
        if identity in (release.id, str(release.version)):
            return release
    raise _not_found("Couldn't find that release.")


@route("GET /apps/{app}/releases")
def release_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        return 200, [model.release_json(app, r) for r in app.releases]


@route("GET /apps/{app}/releases/{release}")
def release_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        return 200, model.release_json(app, _find_release(app, params["release"]))


@route("POST /apps/{app}/releases")
def release_create(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        if "release" in body:
            target = _find_release(app, body["release"])
            if target.status != "succeeded":
                raise _invalid(f"Release v{target.version} did not succeed; cannot roll back.")
            app.config = dict(target.config)
            release = platform.create_release(
                app, f"Rollback to v{target.version}", slug_id=target.slug_id, run_phase=True
            )
        else:
            slug_id = body["slug"]
            if slug_id not in app.slugs:
                raise _not_found("Couldn't find that slug.")
            release = platform.create_release(
                app, body.get("description") or "Deploy", slug_id=slug_id, run_phase=True
            )
        return 201, model.release_json(app, release)


# -- formation ----------------------------------------------------------------


def _size(spec: dict[str, str] | None) -> str | None:
    if not spec:
        return None
    for key, (display, _) in model.DYNO_SIZES.items():
        if (
            spec.get("name", "").lower() == key
            or spec.get("id") == model.stable_id("size:" + key)
            or spec.get("name") == display
        ):
            return key
    raise _invalid(f"Invalid dyno size: {spec.get('name') or spec.get('id')}.")


def _apply_updates(platform: Platform, app: App, updates: list[dict[str, Any]]) -> list[Any]:
    changed: list[model.Formation] = []
    restart_types: set[str] = set()
    with platform.lock:
        staged = []
        for update in updates:
            entry = next(
                (f for f in app.formation.values() if update["type"] in (f.type, f.id)), None
            )
            if entry is None:
                raise _not_found(f"Couldn't find that process type ({update['type']}).")
            size = _size(update.get("dyno_size")) or entry.size
            quantity = update.get("quantity", entry.quantity)
            if quantity < 0:
                raise _invalid("Quantity must be zero or more.")
            display, single = model.DYNO_SIZES[size]
            if single and quantity > 1:
                raise _invalid(
                    f"Cannot update to more than 1 {display} size dynos per process type."
                )
            staged.append((entry, quantity, size))
        for entry, quantity, size in staged:
            if (quantity, size) != (entry.quantity, entry.size):
                if size != entry.size:
                    restart_types.add(entry.type)
                entry.quantity, entry.size = quantity, size
                entry.updated_at = model.now()
            changed.append(entry)
        rendered = [model.formation_json(app, f) for f in changed]

    def apply() -> None:
        running = platform.dynos.get(app.id, {})
        platform.stop_dynos(app, {n for n, d in running.items() if d.type in restart_types})
        platform.apply_formation(app)

    platform.enqueue(app, apply)
    return rendered


@route("GET /apps/{app}/formation")
def formation_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        return 200, [model.formation_json(app, f) for f in app.formation.values()]


@route("GET /apps/{app}/formation/{formation}")
def formation_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        for entry in app.formation.values():
            if params["formation"] in (entry.type, entry.id):
                return 200, model.formation_json(app, entry)
    raise _not_found(f"Couldn't find that process type ({params['formation']}).")


@route("PATCH /apps/{app}/formation")
def formation_batch(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    return 200, _apply_updates(platform, app, body["updates"])


@route("PATCH /apps/{app}/formation/{formation}")
def formation_update(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    return 200, _apply_updates(platform, app, [{**body, "type": params["formation"]}])[0]


# -- dynos --------------------------------------------------------------------


@route("GET /apps/{app}/dynos")
def dyno_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, platform.app_dynos_json(platform.find_app(params["app"]))


@route("GET /apps/{app}/dynos/{dyno}")
def dyno_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    for dyno in platform.app_dynos_json(app):
        if params["dyno"] in (dyno["id"], dyno["name"]):
            return 200, dyno
    raise _not_found("Couldn't find that dyno.")


@route("DELETE /apps/{app}/dynos")
def dyno_restart_all(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    platform.enqueue(app, lambda: platform.restart_dynos(app))
    return 202, {}


@route("DELETE /apps/{app}/dynos/{dyno}")
def dyno_restart(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    names = {
        d["name"] for d in platform.app_dynos_json(app) if params["dyno"] in (d["id"], d["name"])
    }
    if not names:
        raise _not_found("Couldn't find that dyno.")

    def restart() -> None:
        platform.stop_dynos(app, names)
        platform.apply_formation(app)

    platform.enqueue(app, restart)
    return 202, {}


# -- add-on attachments ---------------------------------------------------------


def _attachments(platform: Platform, app: App | None = None) -> list[dict[str, Any]]:
    apps = [app] if app else list(platform.apps.values())
    with platform.lock:
        return [model.attachment_json(a, addon) for a in apps for addon in a.addons]


@route("GET /addon-attachments")
def attachment_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, _attachments(platform)


@route("GET /apps/{app}/addon-attachments")
def attachment_list_app(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, _attachments(platform, platform.find_app(params["app"]))


@route("GET /addons/{add_on}/addon-attachments")
def attachment_list_addon(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app, addon = _find_addon(platform, params["add_on"], None)
    with platform.lock:
        return 200, [model.attachment_json(app, addon)]


def _find_attachment(platform: Platform, identity: str, app: App | None) -> dict[str, Any]:
    for attachment in _attachments(platform, app):
        if identity in (attachment["id"], attachment["name"]):
            return attachment
    raise _not_found("Couldn't find that add-on attachment.")


@route("GET /addon-attachments/{add_on_attachment}")
def attachment_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, _find_attachment(platform, params["add_on_attachment"], None)


@route("GET /apps/{app}/addon-attachments/{add_on_attachment}")
def attachment_info_app(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    return 200, _find_attachment(platform, params["add_on_attachment"], app)


# -- collaborators and pipelines (read by `heroku apps:info`) ------------------


@route("GET /apps/{app}/collaborators")
def collaborator_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, [model.collaborator_json(platform.find_app(params["app"]))]


@route("GET /apps/{app}/pipeline-couplings")
def pipeline_coupling_app(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    platform.find_app(params["app"])
    raise _not_found("Couldn't find that pipeline coupling.")  # no app is in a pipeline


# -- domains and ACM --------------------------------------------------------------

HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)


def _find_domain(app: App, identity: str) -> model.Domain:
    for domain in app.domains:
        if identity in (domain.id, domain.hostname):
            return domain
    raise _not_found("Couldn't find that domain.")


@route("GET /apps/{app}/domains")
def domain_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        return 200, [model.domain_json(app, d) for d in app.domains]


@route("GET /apps/{app}/domains/{domain}")
def domain_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        return 200, model.domain_json(app, _find_domain(app, params["domain"]))


@route("POST /apps/{app}/domains")
def domain_create(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    hostname = body["hostname"].strip().lower()
    if not HOSTNAME_RE.match(hostname):
        raise _invalid(f"{body['hostname']!r} is not a valid hostname.")
    if hostname.endswith((".herokuapp.com", ".herokudns.com")):
        raise _invalid(f"{hostname} is a Heroku domain; add a domain you own.")
    if body.get("sni_endpoint"):
        raise _not_found("Couldn't find that SNI endpoint.")
    with platform.lock:
        for other in platform.apps.values():
            if any(d.hostname == hostname for d in other.domains):
                raise _invalid(f"{hostname} is currently in use by another app.")
        domain = model.Domain(
            id=model.new_id(),
            hostname=hostname,
            kind="custom",
            cname=f"{secrets.token_hex(6)}-{secrets.token_hex(8)}.herokudns.com",
        )
        app.domains.append(domain)
        return 201, model.domain_json(app, domain)


@route("PATCH /apps/{app}/domains/{domain}")
def domain_update(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        domain = _find_domain(app, params["domain"])
        if body.get("sni_endpoint"):
            raise _not_found("Couldn't find that SNI endpoint.")
        return 200, model.domain_json(app, domain)


@route("DELETE /apps/{app}/domains/{domain}")
def domain_delete(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        domain = _find_domain(app, params["domain"])
        if domain.kind == "heroku":
            raise _invalid("The app's Heroku domain cannot be removed.")
        app.domains.remove(domain)
        return 200, model.domain_json(app, domain)


def _acm_allowed(app: App) -> None:
    # ACM needs paid dynos: https://devcenter.heroku.com/articles/automated-certificate-management
    if any(f.size == "eco" for f in app.formation.values()):
        raise _invalid("Automated Certificate Management is not available for apps on Eco dynos.")


@route("POST /apps/{app}/acm")
def acm_enable(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        _acm_allowed(app)
        app.acm = True
        app.updated_at = model.now()
        return 200, model.app_json(app)


@route("PATCH /apps/{app}/acm")
def acm_refresh(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        if not app.acm:
            raise _invalid("Automated Certificate Management is not enabled for this app.")
        return 200, model.app_json(app)


@route("DELETE /apps/{app}/acm")
def acm_disable(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        app.acm = False
        app.updated_at = model.now()
        return 200, model.app_json(app)


# -- app features -----------------------------------------------------------------


def _feature_name(identity: str) -> str:
    for name in model.APP_FEATURES:
        if identity in (name, model.stable_id("feature:" + name)):
            return name
    raise _not_found("Couldn't find that feature.")


@route("GET /apps/{app}/features")
def feature_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        return 200, [model.feature_json(app, name) for name in model.APP_FEATURES]


@route("GET /apps/{app}/features/{app_feature}")
def feature_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    with platform.lock:
        return 200, model.feature_json(app, _feature_name(params["app_feature"]))


@route("PATCH /apps/{app}/features/{app_feature}")
def feature_update(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["app"])
    name = _feature_name(params["app_feature"])
    with platform.lock:
        if app.features.get(name, False) != body["enabled"]:
            app.features[name] = body["enabled"]
            app.feature_times[name] = model.now()
        return 200, model.feature_json(app, name)


# -- team apps ----------------------------------------------------------------------


def _team(platform: Platform, name: str) -> str:
    if name not in platform.options.teams:
        raise _not_found("Couldn't find that team.")
    return name


@route("POST /teams/apps")
def team_app_create(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    body = body or {}
    if body.get("space"):
        raise _invalid("stand-in: Private Spaces are not supported.")
    team = None if body.get("personal") else body.get("team")
    if team:
        _team(platform, team)
    fields = {k: body[k] for k in ("name", "region", "stack") if body.get(k)}
    _, rendered = app_create(platform, params, fields)
    app = platform.find_app(rendered["id"])
    with platform.lock:
        app.team = team
        app.locked = bool(body.get("locked")) and team is not None
    return 201, model.team_app_json(app)


@route("GET /teams/apps/{team_app}")
def team_app_info(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    return 200, model.team_app_json(platform.find_app(params["team_app"]))


@route("GET /teams/{team}/apps")
def team_app_list(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    team = _team(platform, params["team"])
    with platform.lock:
        return 200, [model.team_app_json(a) for a in platform.apps.values() if a.team == team]


@route("PATCH /teams/apps/{team_app}")
def team_app_update(platform: Platform, params: dict[str, str], body: Any) -> tuple[int, Any]:
    app = platform.find_app(params["team_app"])
    with platform.lock:
        if "locked" in body:
            if app.team is None:
                raise _invalid("Only team apps can be locked.")
            app.locked = body["locked"]
        elif "owner" in body:
            owner = body["owner"]
            if owner in (model.ACCOUNT["email"], model.ACCOUNT["id"]):
                app.team, app.locked = None, False
            else:
                app.team = _team(platform, owner)
        app.updated_at = model.now()
        return 200, model.team_app_json(app)
