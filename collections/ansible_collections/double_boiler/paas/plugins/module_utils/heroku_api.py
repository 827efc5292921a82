# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Small client for the Heroku Platform API (v3), shared by the heroku_* modules.

Auth with a bearer token that is only ever sent to the API's own origin (never to
upload, download or output-stream URLs), retries on 429/5xx honouring Retry-After and
RateLimit-Remaining, Range/Next-Range paging, and errors turned into exceptions whose
messages say what to fix and never carry the token.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import re
import time
import urllib.error
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.urls import open_url
from ansible_collections.double_boiler.paas.plugins.module_utils.common import MASK

ACCEPT = "application/vnd.heroku+json; version=3"
USER_AGENT = (
    "double-boiler-ansible/1 (+https://devcenter.heroku.com/articles/platform-api-reference)"
)
APP_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")
CONFIG_KEY_RE = re.compile(r"^\w+$")
# Names whose values are treated as secrets in diffs and messages.
SENSITIVE_KEY_RE = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIAL|PRIVATE|DSN|_URL$)")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
# Heroku's request budget refills at about 75 tokens a minute.
SECONDS_PER_RATE_TOKEN = 0.8


def common_argument_spec() -> dict[str, dict[str, Any]]:
    """Options every heroku_* module takes."""
    return dict(
        app=dict(type="str", required=True),
        api_url=dict(type="str", default="https://api.heroku.com"),
        api_key=dict(
            type="str", required=True, no_log=True, fallback=(env_fallback, ["HEROKU_API_KEY"])
        ),
        request_timeout=dict(type="int", default=30),
        max_retries=dict(type="int", default=6),
    )


def check_common(params: Mapping[str, Any]) -> str | None:
    """Return a message saying what to fix in the common options, or None."""
    if not APP_NAME_RE.match(params["app"] or ""):
        return (
            f"app name {params['app']!r} is not valid on Heroku: 3 to 30 characters, lowercase "
            "letters, digits and dashes, starting with a letter and not ending with a dash"
        )
    if not (params["api_key"] or "").strip():
        return "no Heroku API token: export HEROKU_API_KEY or set heroku_app_api_key (vault it)"
    parts = urlsplit(params["api_url"] or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"api_url {params['api_url']!r} is not an http(s) URL such as https://api.heroku.com"
    if params["request_timeout"] < 1 or params["max_retries"] < 0:
        return "request_timeout must be at least 1 second and max_retries at least 0"
    return None


def is_sensitive(key: str) -> bool:
    return bool(SENSITIVE_KEY_RE.search(key.upper()))


class HerokuError(Exception):
    """Anything that stops a Heroku operation; str() says what happened and what to do."""


class HerokuAPIError(HerokuError):
    def __init__(self, message: str, status: int | None = None, error_id: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_id = error_id


class NotFound(HerokuAPIError):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    partial: bool = False  # the connection dropped before the body ended (streams)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))


class TransportError(HerokuError):
    """The request did not get an HTTP answer (refused, reset, timed out)."""


class NoAnswer(HerokuError):
    """A request that got no HTTP answer after its retries (or at once, for a POST)."""


def _read_tolerant(resp) -> tuple[bytes, bool]:
    """Read a body to its end; on a dropped or stalled connection return what came."""
    chunks = []
    try:
        while True:
            chunk = resp.read(65536)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
    except (OSError, ValueError, http.client.HTTPException):
        return b"".join(chunks), True


def urllib_transport(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
) -> Response:
    """Send one request with Ansible's open_url; HTTP errors come back as Responses."""
    try:
        resp = open_url(
            url,
            data=body,
            headers=dict(headers),
            method=method,
            timeout=timeout,
            follow_redirects="safe",
            # never forward credentials to wherever a redirect points
            unredirected_headers=["Authorization"],
            use_netrc=False,
            http_agent=USER_AGENT,
        )
    except urllib.error.HTTPError as exc:
        data, partial = _read_tolerant(exc)
        return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, data, partial)
    except (OSError, http.client.HTTPException) as exc:  # URLError, refused, reset, timeout
        reason = getattr(exc, "reason", exc)
        raise TransportError(f"{method} {urlsplit(url).netloc}: {reason}") from None
    with resp:
        data, partial = _read_tolerant(resp)
        return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, data, partial)


Transport = Callable[[str, str, Mapping[str, str], "bytes | None", float], Response]


def _retry_after_seconds(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


@dataclass
class HerokuClient:
    api_url: str
    token: str
    transport: Transport = urllib_transport
    sleep: Callable[[float], None] = time.sleep
    wall_clock: Callable[[], float] = time.time
    timeout: float = 30
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    max_retry_after: float = 300.0
    rate_limit_floor: int = 10
    # method + path of every writing request actually sent (for reports and tests)
    writes: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.api_url = self.api_url.rstrip("/")
        parts = urlsplit(self.api_url)
        self._origin = (parts.scheme, parts.netloc)

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def path(*segments: str) -> str:
        return "/" + "/".join(quote(str(s), safe="") for s in segments)

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "********") if self.token else text

    def _is_api_url(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc) == self._origin

    def _delay(self, resp: Response | None, attempt: int) -> float:
        backoff = min(self.backoff_cap, self.backoff_base * (2**attempt))
        if resp is None:
            return backoff
        after = _retry_after_seconds(resp.header("Retry-After"), self.wall_clock())
        if after is not None:
            if after > self.max_retry_after:
                raise HerokuAPIError(
                    f"Heroku asks to retry after {int(after)} s (status {resp.status}); "
                    "that is longer than this play waits: run it again later",
                    resp.status,
                )
            return after
        return backoff

    def _pace(self, resp: Response) -> None:
        """Slow down before the budget runs out instead of hitting 429s."""
        remaining = resp.header("RateLimit-Remaining")
        if remaining is None or not remaining.strip().isdigit():
            return
        left = int(remaining)
        if left < self.rate_limit_floor:
            self.sleep((self.rate_limit_floor - left) * SECONDS_PER_RATE_TOKEN)

    # -- raw requests ----------------------------------------------------------------------
    def send(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        auth: bool = True,
    ) -> Response:
        """One request with retries; adds auth only for the API's own origin."""
        all_headers = dict(headers or {})
        label = url
        if auth and self._is_api_url(url):
            all_headers.setdefault("Accept", ACCEPT)
            all_headers["Authorization"] = f"Bearer {self.token}"
            label = urlsplit(url).path
        else:
            label = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}/..."
        attempt = 0
        while True:
            self.requests.append(f"{method} {label}")
            try:
                resp = self.transport(method, url, all_headers, body, timeout or self.timeout)
            except TransportError as exc:
                if attempt >= self.max_retries or method not in IDEMPOTENT_METHODS:
                    raise NoAnswer(
                        self._scrub(
                            f"{method} {label}: no answer ({exc}); check the URL "
                            "and the network, then run again"
                        )
                    ) from None
                self.sleep(self._delay(None, attempt))
                attempt += 1
                continue
            # A 429 is refused before any work, so even a POST can be sent again. A 5xx
            # POST may have created its resource before the error (a 503 from the
            # router after the app answered): only create() retries it, after reading
            # back that nothing was created.
            retryable = resp.status == 429 or (resp.status >= 500 and method in IDEMPOTENT_METHODS)
            if retryable and attempt < self.max_retries:
                self.sleep(self._delay(resp, attempt))
                attempt += 1
                continue
            if method in WRITE_METHODS and resp.status < 400:
                self.writes.append(f"{method} {label}")
            self._pace(resp)
            return resp

    def request(
        self,
        method: str,
        path: str,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, Response]:
        """JSON request to the API; raise HerokuAPIError on an error status."""
        body = None
        hdrs = dict(headers or {})
        if data is not None:
            body = json.dumps(data, sort_keys=True).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        resp = self.send(method, self.api_url + path, body, hdrs)
        if resp.status >= 400:
            raise self._error(method, path, resp)
        try:
            return resp.json(), resp
        except ValueError:
            raise HerokuAPIError(
                f"{method} {path}: answer {resp.status} is not JSON; is api_url "
                f"{self.api_url} the Heroku Platform API?",
                resp.status,
            ) from None

    def _error(self, method: str, path: str, resp: Response) -> HerokuAPIError:
        error_id, message = None, ""
        try:
            payload = resp.json() or {}
            error_id, message = payload.get("id"), payload.get("message", "")
        except (ValueError, AttributeError):
            message = resp.body[:200].decode("utf-8", "replace")
        hint = {
            401: " Check HEROKU_API_KEY / heroku_app_api_key (heroku authorizations:create).",
            403: " The token's account has no access to this app: use another app name or ask "
            "its owner for access.",
            429: " The API rate limit is exhausted: wait a few minutes and run again.",
        }.get(resp.status, "")
        message = str(message).rstrip(". ")
        text = self._scrub(
            f"{method} {path} answered {resp.status} {error_id or ''}: {message}.{hint}"
        ).replace(" :", ":")
        cls = NotFound if resp.status == 404 else HerokuAPIError
        return cls(text, resp.status, error_id)

    # -- verbs -----------------------------------------------------------------------------
    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, headers=headers)[0]

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except NotFound:
            return None

    def post(self, path: str, data: Any = None) -> Any:
        return self.request("POST", path, data if data is not None else {})[0]

    def create(self, path: str, data: Any, find_existing: Callable[[], Any]) -> Any:
        """POST that is retried on 5xx or no answer only after reading back.

        ``find_existing()`` returns the resource the POST would have made (an add-on of
        that plan, a build of that checksum), or None. When a POST fails without a clear
        answer, it is asked first: a resource that appeared is the POST's own, and is
        returned instead of sending the POST again and creating a second one.
        """
        attempt = 0
        while True:
            try:
                return self.post(path, data)
            except (NoAnswer, HerokuAPIError) as exc:
                status = getattr(exc, "status", None)
                if status is not None and status < 500:
                    raise
                found = find_existing()
                if found is not None:
                    return found
                if attempt >= self.max_retries:
                    raise
                self.sleep(self._delay(None, attempt))
                attempt += 1

    def delete(self, path: str) -> Any:
        """DELETE; a 404 counts as done (a retried DELETE whose first try worked)."""
        try:
            return self.request("DELETE", path)[0]
        except NotFound:
            return None

    def patch(self, path: str, data: Any) -> Any:
        return self.request("PATCH", path, data)[0]

    def put(self, path: str, data: Any) -> Any:
        return self.request("PUT", path, data)[0]

    def list(self, path: str, range_header: str | None = None, all_pages: bool = True) -> list:
        """GET a list; follow Next-Range while the answer is 206 Partial Content."""
        items: list = []
        current = range_header
        for _page in range(1000):
            headers = {"Range": current} if current else None
            data, resp = self.request("GET", path, headers=headers)
            items.extend(data or [])
            next_range = resp.header("Next-Range")
            if resp.status != 206 or not next_range or not all_pages:
                return items
            current = next_range
        raise HerokuAPIError(f"GET {path}: more than 1000 pages; giving up")

    # -- streams and blobs (no auth: these URLs are capabilities on other hosts) -----------
    def read_stream(self, url: str, offset: int = 0, timeout: float = 30) -> tuple[bytes, bool]:
        """Read an output stream from byte `offset`; return (new bytes, whether it ended).

        The stream stays open while the build runs; a stall or disconnect returns what came
        so far, and the caller resumes with a Range header, as the API reference says.
        """
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            resp = self.transport("GET", url, headers, None, timeout)
        except TransportError:
            return b"", False
        self.requests.append("GET <output stream>")
        if resp.status in (404, 416) or resp.status >= 500:
            return b"", False
        if resp.status >= 400:
            raise HerokuError(f"reading the output stream answered {resp.status}")
        data = resp.body
        if resp.status == 200 and offset:
            data = data[offset:]  # the server ignored the Range: skip what we have
        return data, not resp.partial

    def upload(self, url: str, data: bytes) -> None:
        """PUT a blob to a pre-signed URL (no auth header, empty Content-Type as signed)."""
        # Upload URLs are capabilities: no token, even when they share the API's origin.
        resp = self.send(
            "PUT", url, data, {"Content-Type": ""}, timeout=max(self.timeout, 300), auth=False
        )
        if resp.status >= 300:
            raise HerokuError(
                f"uploading the source tarball answered {resp.status}: "
                f"{resp.body[:200].decode('utf-8', 'replace')}"
            )


# Looked up at call time so unit tests can swap the network and the clock.
TRANSPORT: Transport = urllib_transport
SLEEP: Callable[[float], None] = time.sleep
CLOCK: Callable[[], float] = time.monotonic


def now() -> float:
    """Monotonic seconds (through CLOCK, which tests replace)."""
    return CLOCK()


def client_from_params(params: Mapping[str, Any]) -> HerokuClient:
    return HerokuClient(
        api_url=params["api_url"],
        token=params["api_key"],
        timeout=params["request_timeout"],
        max_retries=params["max_retries"],
        transport=TRANSPORT,
        sleep=SLEEP,
    )


def module_client(module) -> HerokuClient:
    """Validate the common options (fail before any request) and build a client."""
    problem = check_common(module.params)
    if problem:
        module.fail_json(msg=problem)
    return client_from_params(module.params)


def wait_until(
    fetch: Callable[[], Any],
    done: Callable[[Any], bool],
    timeout: float,
    interval: float,
    on_poll: Callable[[Any], None] | None = None,
) -> tuple[Any, bool]:
    """Poll fetch() until done(result); return (last result, whether it finished)."""
    sleep, clock = SLEEP, CLOCK
    deadline = clock() + timeout
    while True:
        result = fetch()
        if on_poll:
            on_poll(result)
        if done(result):
            return result, True
        if clock() >= deadline:
            return result, False
        sleep(interval)


def mask_config(values: Mapping[str, Any], secret_keys: Iterable[str] = ()) -> dict[str, Any]:
    """Copy of a config mapping with sensitive values replaced by a mask."""
    secret = set(secret_keys)
    return {
        k: (MASK if v is not None and (k in secret or is_sensitive(k)) else v)
        for k, v in values.items()
    }


def tail(lines: list[str], count: int = 40) -> str:
    return "\n".join(lines[-count:])
