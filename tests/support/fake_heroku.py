"""An in-memory fake of the Heroku Platform API, plugged in as the client's transport.

Only for unit tests of the heroku_app role's modules: it keeps just enough state to
answer what the modules ask, records every request, and can inject faults. (The
schema-checked stand-in server for Molecule lives in tests/standins/heroku_api/.)
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

API = "https://api.fake-heroku.test"
BLOBS = "https://blobs.fake-heroku.test"
STREAMS = "https://streams.fake-heroku.test"
TOKEN = "fake-token-0123456789abcdef"


@dataclass
class Call:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None

    @property
    def path(self) -> str:
        rest = self.url.split("://", 1)[1]
        return "/" + rest.split("/", 1)[1].split("?", 1)[0] if "/" in rest else "/"

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    method: str
    pattern: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    # True: the request is carried out, then answered with the fault (a 503 from the
    # router after the API did the work), the case where a retried POST duplicates.
    after: bool = False


def _error(status: int, error_id: str, message: str):
    return status, {"content-type": "application/json"}, {"id": error_id, "message": message}


class FakeHeroku:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.apps: dict[str, dict] = {}
        self.config: dict[str, dict[str, str]] = {}
        self.buildpacks: dict[str, list[dict]] = {}
        self.addons: dict[str, list[dict]] = {}
        self.builds: dict[str, list[dict]] = {}
        self.releases: dict[str, list[dict]] = {}
        self.formation: dict[str, dict[str, dict]] = {}
        self.dynos: dict[str, list[dict]] = {}
        self.domains: dict[str, list[dict]] = {}
        self.features: dict[str, dict[str, bool]] = {}
        self.blobs: dict[str, bytes] = {}
        self.streams: dict[str, bytes] = {}
        self.page_size = 200
        # behaviour knobs
        self.addon_polls_to_provision = 1
        self.addon_final_state = "provisioned"
        self.build_polls = 1
        self.build_outcome = "succeeded"
        self.release_outcome = "succeeded"
        self.release_phase = True
        self.process_types = ["web", "worker"]
        self.rate_limit_remaining: int | None = None
        # how many GETs of /dynos still show the previous release (a restart under way)
        self.dyno_polls_to_restart = 0

    # -- helpers for tests ----------------------------------------------------------------
    def add_app(self, name: str = "double-boiler", region: str = "us", stack: str = "heroku-24"):
        app = {
            "id": str(uuid.uuid4()),
            "name": name,
            "region": {"id": str(uuid.uuid4()), "name": region},
            "stack": {"id": str(uuid.uuid4()), "name": stack},
            "build_stack": {"id": str(uuid.uuid4()), "name": stack},
            "web_url": f"https://{name}-0123.herokuapp.com/",
            "acm": False,
            "team": None,
        }
        self.apps[name] = app
        self.config[name] = {}
        self.buildpacks[name] = []
        self.addons[name] = []
        self.builds[name] = []
        self.releases[name] = []
        self.formation[name] = {}
        self.dynos[name] = []
        self.domains[name] = [self._domain(f"{name}-0123.herokuapp.com", "heroku")]
        self.features[name] = {"preboot": False, "runtime-dyno-metadata": False}
        self._new_release(name, "Initial release", status="succeeded")
        return app

    @staticmethod
    def _domain(hostname: str, kind: str) -> dict:
        return {
            "id": str(uuid.uuid4()),
            "hostname": hostname,
            "kind": kind,
            "cname": None if kind == "heroku" else f"{hostname}.herokudns.com",
            "status": "succeeded",
        }

    def run_dynos(self, name: str, version: int | None = None, quantity: int = 1, kind="web"):
        """Dynos of `kind` running release `version` (default: the current one)."""
        if version is None:
            version = next(r["version"] for r in self.releases[name] if r["current"])
        release = next(r for r in self.releases[name] if r["version"] == version)
        self.dynos[name] = [d for d in self.dynos[name] if d["type"] != kind] + [
            {
                "id": str(uuid.uuid4()),
                "name": f"{kind}.{i + 1}",
                "type": kind,
                "state": "up",
                "release": {"id": release["id"], "version": version},
            }
            for i in range(quantity)
        ]

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("POST", "PUT", "PATCH", "DELETE")]

    def api_writes(self) -> list[str]:
        return [f"{c.method} {c.path}" for c in self.writes() if c.url.startswith(API)]

    # -- transport ------------------------------------------------------------------------
    def __call__(self, method, url, headers, body, timeout):
        from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import Response

        call = Call(method, url, dict(headers), body)
        self.calls.append(call)
        late_fault = None
        for fault in self.faults:
            if fault.times and fault.method == method and re.search(fault.pattern, url):
                fault.times -= 1
                if fault.after:
                    late_fault = fault
                    break
                return self._fault_response(fault)
        if url.startswith(BLOBS) or url.startswith(f"{API}/__blobs__/"):
            return self._blob(method, url, headers, body)
        if url.startswith(STREAMS):
            return self._stream(url, headers)
        if not url.startswith(API):
            return Response(404, {}, b"no such host in the fake")
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            status, hdrs, payload = _error(401, "unauthorized", "Invalid credentials provided.")
        elif headers.get("Accept") != "application/vnd.heroku+json; version=3":
            status, hdrs, payload = _error(400, "bad_request", "Accept header missing")
        else:
            status, hdrs, payload = self._route(method, call.path, call.json, headers)
        if late_fault is not None:
            return self._fault_response(late_fault)
        if self.rate_limit_remaining is not None:
            hdrs = {**hdrs, "ratelimit-remaining": str(self.rate_limit_remaining)}
        return Response(status, hdrs, json.dumps(payload).encode())

    @staticmethod
    def _fault_response(fault):
        from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import Response

        payload = {
            "id": "rate_limit" if fault.status == 429 else "unavailable",
            "message": "injected fault",
        }
        return Response(fault.status, dict(fault.headers), json.dumps(payload).encode())

    def _blob(self, method, url, headers, body):
        from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import Response

        key = url.split("?", 1)[0]
        if method == "PUT":
            if "Authorization" in headers:
                return Response(400, {}, b"credentials sent to the blob store")
            self.blobs[key] = body
            return Response(200, {}, b"")
        if key in self.blobs:
            return Response(200, {}, self.blobs[key])
        return Response(404, {}, b"")

    def _stream(self, url, headers):
        from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import Response

        data = self.streams.get(url)
        if data is None:
            return Response(404, {}, b"")
        match = re.match(r"bytes=(\d+)-", headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            if start >= len(data) and data:
                return Response(416, {}, b"")
            return Response(206, {}, data[start:])
        return Response(200, {}, data)

    # -- API routes -----------------------------------------------------------------------
    def _route(self, method, path, body, headers):
        m = re.fullmatch(r"/apps/([^/]+)(/.*)?", path)
        if method == "POST" and path == "/apps":
            return self._create_app(body)
        if method == "POST" and path == "/teams/apps":
            status, hdrs, app = self._create_app(body)
            if status == 201:
                app["team"] = {"id": str(uuid.uuid4()), "name": body["team"]}
            return status, hdrs, app
        if method == "POST" and path == "/sources":
            key = f"{BLOBS}/{uuid.uuid4()}"
            return (
                201,
                {},
                {"source_blob": {"put_url": key + "?sig=put", "get_url": key + "?sig=get"}},
            )
        if not m:
            return _error(404, "not_found", "Couldn't find that route.")
        name, rest = m.group(1), m.group(2) or ""
        if name not in self.apps:
            return _error(404, "not_found", "Couldn't find that app.")
        app = self.apps[name]
        if rest == "":
            if method == "GET":
                return 200, {}, app
            if method == "PATCH":
                app["build_stack"] = {"id": str(uuid.uuid4()), "name": body["build_stack"]}
                return 200, {}, app
        if rest == "/buildpack-installations":
            if method == "GET":
                return self._page(self.buildpacks[name], headers)
            if method == "PUT":
                self.buildpacks[name] = [
                    {"ordinal": i, "buildpack": {"name": u["buildpack"], "url": u["buildpack"]}}
                    for i, u in enumerate(body["updates"])
                ]
                return 200, {}, self.buildpacks[name]
        if rest == "/addons":
            if method == "GET":
                return self._page(self.addons[name], headers)
            if method == "POST":
                return self._create_addon(name, body)
        am = re.fullmatch(r"/addons/([^/]+)", rest)
        if am and method == "DELETE":
            addon = next(
                (a for a in self.addons[name] if am.group(1) in (a["id"], a["name"])), None
            )
            if addon is None:
                return _error(404, "not_found", "Couldn't find that add-on.")
            self.addons[name].remove(addon)
            for var in addon["config_vars"]:
                self.config[name].pop(var, None)
            addon = {**addon, "state": "deprovisioned"}
            return 200, {}, addon
        if am and method == "GET":
            addon = next(
                (a for a in self.addons[name] if am.group(1) in (a["id"], a["name"])), None
            )
            if addon is None:
                return _error(404, "not_found", "Couldn't find that add-on.")
            if addon["state"] == "provisioning":
                addon["_polls"] += 1
                if addon["_polls"] >= self.addon_polls_to_provision:
                    addon["state"] = self.addon_final_state
            return 200, {}, addon
        if rest == "/config-vars":
            if method == "GET":
                return 200, {}, self.config[name]
            if method == "PATCH":
                for key, value in body.items():
                    if value is None:
                        self.config[name].pop(key, None)
                    else:
                        self.config[name][key] = value
                self._new_release(name, "Set config vars", status="succeeded")
                return 200, {}, self.config[name]
        if rest == "/releases" and method == "GET":
            return self._page(self.releases[name], headers, key="version")
        rm = re.fullmatch(r"/releases/([^/]+)", rest)
        if rm and method == "GET":
            rel = next((r for r in self.releases[name] if r["id"] == rm.group(1)), None)
            return (200, {}, rel) if rel else _error(404, "not_found", "no such release")
        if rest == "/builds":
            if method == "GET":
                return self._page(self.builds[name], headers, key="created_at")
            if method == "POST":
                return self._create_build(name, body)
        bm = re.fullmatch(r"/builds/([^/]+)", rest)
        if bm and method == "GET":
            build = next((b for b in self.builds[name] if b["id"] == bm.group(1)), None)
            if build is None:
                return _error(404, "not_found", "no such build")
            self._advance_build(name, build)
            return 200, {}, build
        if rest == "/dynos" and method == "GET":
            if self.dyno_polls_to_restart > 0:
                self.dyno_polls_to_restart -= 1
                if self.dyno_polls_to_restart == 0:
                    self.run_dynos(name, quantity=self.formation[name]["web"]["quantity"])
            return self._page(self.dynos[name], headers, key="name")
        if rest == "/domains":
            if method == "GET":
                return self._page(self.domains[name], headers, key="hostname")
            if method == "POST":
                if any(d["hostname"] == body["hostname"] for d in self.domains[name]):
                    return _error(422, "invalid_params", "Hostname is already in use.")
                domain = self._domain(body["hostname"], "custom")
                self.domains[name].append(domain)
                return 201, {}, domain
        dm = re.fullmatch(r"/domains/([^/]+)", rest)
        if dm and method == "DELETE":
            domain = next(
                (d for d in self.domains[name] if dm.group(1) in (d["id"], d["hostname"])), None
            )
            if domain is None or domain["kind"] == "heroku":
                return _error(404, "not_found", "Couldn't find that domain.")
            self.domains[name].remove(domain)
            return 200, {}, domain
        if rest == "/acm" and method == "POST":
            app["acm"] = True
            return 200, {}, app
        if rest == "/features" and method == "GET":
            return self._page(
                [{"name": k, "enabled": v} for k, v in self.features[name].items()],
                headers,
                key="name",
            )
        fm = re.fullmatch(r"/features/([^/]+)", rest)
        if fm and method == "PATCH":
            if fm.group(1) not in self.features[name]:
                return _error(404, "not_found", "Couldn't find that feature.")
            self.features[name][fm.group(1)] = bool(body["enabled"])
            return 200, {}, {"name": fm.group(1), "enabled": bool(body["enabled"])}
        ftm = re.fullmatch(r"/formation/([^/]+)", rest)
        if ftm and method == "GET":
            entry = self.formation[name].get(ftm.group(1))
            return (200, {}, entry) if entry else _error(404, "not_found", "no such process type")
        if rest == "/formation":
            if method == "GET":
                return self._page(list(self.formation[name].values()), headers)
            if method == "PATCH":
                for update in body["updates"]:
                    entry = self.formation[name].get(update["type"])
                    if entry is None:
                        return _error(404, "not_found", f"No {update['type']} process type")
                    if "quantity" in update:
                        entry["quantity"] = update["quantity"]
                    if "dyno_size" in update:
                        entry["size"] = update["dyno_size"]["name"]
                        entry["dyno_size"] = {"id": None, "name": update["dyno_size"]["name"]}
                return 200, {}, list(self.formation[name].values())
        return _error(404, "not_found", f"fake has no route {method} {path}")

    def _page(self, items, headers, key="id"):
        """Range paging as Heroku documents it: max, order=desc, Next-Range on 206."""
        spec = headers.get("Range", "")
        order_desc = "order=desc" in spec
        limit = self.page_size
        mm = re.search(r"max=(\d+)", spec)
        if mm:
            limit = int(mm.group(1))
        start = 0
        sm = re.search(r"\]start=(\d+)", spec)
        if sm:
            start = int(sm.group(1))
        ordered = sorted(items, key=lambda i: i.get(key) or "", reverse=order_desc)
        page = ordered[start : start + limit]
        if start + limit < len(ordered):
            next_range = f"{key} ]start={start + limit}; max={limit}"
            if order_desc:
                next_range += ", order=desc"
            return 206, {"next-range": next_range}, page
        return (206 if spec else 200), {}, page

    def _create_app(self, body):
        name = body["name"]
        if name in self.apps:
            return _error(422, "invalid_params", "Name is already taken")
        app = self.add_app(name, body.get("region", "us"), body.get("stack", "heroku-24"))
        return 201, {}, app

    def _create_addon(self, name, body):
        service = body["plan"].split(":", 1)[0]
        addon = {
            "id": str(uuid.uuid4()),
            "name": f"{service}-fake-{len(self.addons[name]) + 1}",
            "addon_service": {"id": str(uuid.uuid4()), "name": service},
            "app": {"id": self.apps[name]["id"], "name": name},
            "plan": {"id": str(uuid.uuid4()), "name": body["plan"]},
            "state": "provisioning",
            "config_vars": ["DATABASE_URL" if "postgres" in service else "REDIS_URL"],
            "provision_message": None,
            "_polls": 0,
        }
        self.addons[name].append(addon)
        return 202, {}, addon

    def _new_release(self, name, description, status, slug=None):
        version = len(self.releases[name]) + 1
        release = {
            "id": str(uuid.uuid4()),
            "version": version,
            "status": status,
            "description": description,
            "current": status == "succeeded",
            "slug": slug,
            "output_stream_url": None,
        }
        if status == "succeeded":
            for other in self.releases[name]:
                other["current"] = False
        self.releases[name].append(release)
        return release

    def _create_build(self, name, body):
        blob = body["source_blob"]
        if blob["url"].split("?", 1)[0] not in self.blobs:
            return _error(422, "invalid_params", "source_blob.url has nothing uploaded")
        build_id = str(uuid.uuid4())
        stream = f"{STREAMS}/builds/{build_id}"
        self.streams[stream] = b"-----> Building on the fake\n"
        build = {
            "id": build_id,
            "status": "pending",
            "source_blob": {
                "url": blob["url"],
                "checksum": blob.get("checksum"),
                "version": blob.get("version"),
                "version_description": None,
            },
            "output_stream_url": stream,
            "release": None,
            "slug": None,
            # what Heroku records with a build (schema: definitions.build)
            "stack": self.apps[name]["build_stack"]["name"],
            "buildpacks": [
                {"url": b["buildpack"]["url"], "name": b["buildpack"]["name"]}
                for b in self.buildpacks[name]
            ]
            or None,
            "created_at": f"2026-01-01T00:00:{len(self.builds[name]):02d}Z",
            "_polls": 0,
        }
        self.builds[name].append(build)
        return 201, {}, build

    def _advance_build(self, name, build):
        if build["status"] != "pending":
            return
        build["_polls"] += 1
        stream = build["output_stream_url"]
        self.streams[stream] += f"       step {build['_polls']}\n".encode()
        if build["_polls"] < self.build_polls:
            return
        build["status"] = self.build_outcome
        if self.build_outcome == "failed":
            self.streams[stream] += b" !     Push rejected, failed to compile Python app.\n"
            return
        self.streams[stream] += b"-----> Launching...\n"
        slug = {"id": str(uuid.uuid4())}
        build["slug"] = slug
        release = self._new_release(name, "Deploy", status=self.release_outcome, slug=slug)
        if self.release_phase:
            url = f"{STREAMS}/releases/{release['id']}"
            release["output_stream_url"] = url
            text = "Running migrations:\n  Apply all migrations: OK\n"
            if self.release_outcome == "failed":
                text = "Running migrations:\ndjango.db.utils.OperationalError: no database\n"
            self.streams[url] = text.encode()
        build["release"] = {"id": release["id"]}
        for ptype in self.process_types:
            self.formation[name].setdefault(
                ptype,
                {
                    "type": ptype,
                    "quantity": 1 if ptype == "web" else 0,
                    "size": "Basic",
                    "dyno_size": {"id": None, "name": "Basic"},
                },
            )
