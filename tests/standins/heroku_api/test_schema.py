"""The stand-in's hold on the official schema: routes, validation, the one deviation."""

from __future__ import annotations

import json

import pytest

from tests.standins.heroku_api import api
from tests.standins.heroku_api.schema import WEB_URL_POINTER, HyperSchema

UUID = "01234567-89ab-cdef-0123-456789abcdef"


def test_every_handler_is_a_link_of_the_schema(hyper_schema: HyperSchema) -> None:
    keys = {link.key for link in hyper_schema.links}
    invented = sorted(set(api.HANDLERS) - keys)
    assert invented == [], f"stand-in routes the schema does not have: {invented}"


@pytest.mark.parametrize(
    ("method", "path", "key"),
    [
        ("GET", "/apps/my-app", "GET /apps/{app}"),
        ("GET", f"/apps/{UUID}", "GET /apps/{app}"),
        ("PATCH", "/apps/my-app/config-vars", "PATCH /apps/{app}/config-vars"),
        ("GET", "/apps/my-app/releases/12", "GET /apps/{app}/releases/{release}"),
        ("GET", f"/apps/my-app/builds/{UUID}", "GET /apps/{app}/builds/{build}"),
        ("PATCH", "/apps/my-app/formation", "PATCH /apps/{app}/formation"),
        ("PATCH", "/apps/my-app/formation/web", "PATCH /apps/{app}/formation/{formation}"),
        ("GET", "/apps/my-app/addons/postgresql-rigid-12345", "GET /apps/{app}/addons/{add_on}"),
        ("POST", "/sources", "POST /sources"),
        ("PUT", "/apps/my-app/buildpack-installations", "PUT /apps/{app}/buildpack-installations"),
    ],
)
def test_paths_match_their_link(
    hyper_schema: HyperSchema, method: str, path: str, key: str
) -> None:
    assert key in [m.link.key for m in hyper_schema.match(method, path)]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/apps/Not_A_Valid_Name"),  # identity pattern of app names
        ("GET", "/apps/my-app/builds/not-a-uuid"),  # build identity is a uuid only
        ("GET", "/apps/my-app/releases/v12"),  # release identity: uuid or integer version
        ("POST", "/apps/my-app/config-vars"),  # wrong verb
        ("GET", "/apps/my-app/nothing"),
    ],
)
def test_paths_outside_the_schema_match_nothing(
    hyper_schema: HyperSchema, method: str, path: str
) -> None:
    assert hyper_schema.match(method, path) == []


def _link(hyper_schema: HyperSchema, key: str):
    return next(link for link in hyper_schema.links if link.key == key)


def test_request_bodies_are_validated(hyper_schema: HyperSchema) -> None:
    create = _link(hyper_schema, "POST /apps")
    assert hyper_schema.request_errors(create, {"name": "good-name", "region": "eu"}) == []
    assert hyper_schema.request_errors(create, {"name": "Bad Name"})
    formation = _link(hyper_schema, "PATCH /apps/{app}/formation")
    assert (
        hyper_schema.request_errors(formation, {"updates": [{"type": "web", "quantity": 1}]}) == []
    )
    # "size" is deprecated in answers and not accepted in batch updates: dyno_size is.
    assert hyper_schema.request_errors(formation, {"updates": [{"type": "web", "size": "basic"}]})
    assert hyper_schema.request_errors(formation, {"updates": [{"quantity": 1}]})


def test_validation_messages_never_echo_values(hyper_schema: HyperSchema) -> None:
    config = _link(hyper_schema, "PATCH /apps/{app}/config-vars")
    secret = "s3cr3t-value-that-must-not-leak"
    errors = hyper_schema.request_errors(config, {"DJANGO_SECRET_KEY": [secret]})
    assert errors
    assert secret not in json.dumps(errors)


def test_strict_properties_are_enforced_on_answers(hyper_schema: HyperSchema) -> None:
    info = _link(hyper_schema, "GET /stacks/{stack}")
    stack = {
        "created_at": "2024-01-01T00:00:00Z",
        "default": True,
        "id": UUID,
        "name": "heroku-24",
        "state": "public",
        "updated_at": "2024-01-01T00:00:00Z",
    }
    assert hyper_schema.response_errors(info, stack) == []
    missing = dict(stack)
    del missing["state"]
    assert any("state" in e for e in hyper_schema.response_errors(info, missing))
    extra = dict(stack, surprise=1)
    assert any("surprise" in e for e in hyper_schema.response_errors(info, extra))
    bad_format = dict(stack, created_at="yesterday")
    assert hyper_schema.response_errors(info, bad_format)


def test_the_only_relaxation_is_the_loopback_web_url(hyper_schema: HyperSchema) -> None:
    official, relaxed = hyper_schema.document, hyper_schema._relaxed

    def walk(a, b, path):
        if isinstance(a, dict):
            assert isinstance(b, dict) and set(a) == set(b), path
            for key in a:
                yield from walk(a[key], b[key], (*path, key))
        elif isinstance(a, list):
            assert isinstance(b, list) and len(a) == len(b), path
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                yield from walk(x, y, (*path, str(i)))
        elif a != b:
            yield path

    assert list(walk(official, relaxed, ())) == [(*WEB_URL_POINTER, "pattern")]
    info = _link(hyper_schema, "GET /apps/{app}")
    errors = hyper_schema.response_errors(info, {"web_url": "http://127.0.0.1:5600/"})
    assert not any(e.startswith("web_url") for e in errors)
    errors = hyper_schema.response_errors(info, {"web_url": "http://10.0.0.1:5600/"})
    assert any(e.startswith("web_url") for e in errors)
