"""The app's production defaults behind the router: HTTPS redirect, HSTS, host checks.

The stand-in's router terminates TLS with a test CA (SSL_CERT_FILE in molecule.yml) and
sends X-Forwarded-Proto as Heroku's does; the app runs with DJANGO_HTTPS_ONLY unset (on)
and ALLOWED_HOSTS from the app's domains.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

import pytest
from conftest import APP

from tests.standins.heroku_api.client import StandInClient


@pytest.fixture(scope="module")
def tls_port(api: StandInClient) -> int:
    web_url = api.ok("GET", f"/apps/{APP}")["web_url"]
    assert web_url.startswith("https://"), web_url
    return urlsplit(web_url).port


def _get(port: int, path: str, tls: bool, host: str | None = None) -> http.client.HTTPResponse:
    if tls:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, context=ssl.create_default_context(), timeout=30
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_https_answers_with_hsts(tls_port: int) -> None:
    resp = _get(tls_port, "/", tls=True)
    assert resp.status == 200
    assert resp.getheader("Via") == "1.1 heroku-router"
    assert resp.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"


def test_plain_http_is_redirected_to_https(tls_port: int) -> None:
    # The router's plain HTTP listener (Heroku's port 80) is allocated just before the
    # TLS one; the Via header proves this is the router and not something else.
    resp = _get(tls_port - 1, "/", tls=False)
    assert resp.getheader("Via") == "1.1 heroku-router"
    assert resp.status == 301
    assert resp.getheader("Location") == f"https://127.0.0.1:{tls_port - 1}/"


def test_healthz_is_exempt_from_the_redirect(tls_port: int) -> None:
    assert _get(tls_port - 1, "/healthz", tls=False).status == 200


def test_a_host_not_among_the_apps_domains_is_refused_by_the_app(tls_port: int) -> None:
    # The router passes `localhost` (it serves 127.0.0.1 and localhost); Django's
    # ALLOWED_HOSTS, set from the app's domains, does not list it.
    resp = _get(tls_port, "/", tls=True, host="localhost")
    assert resp.getheader("Via") == "1.1 heroku-router"
    assert resp.status == 400
