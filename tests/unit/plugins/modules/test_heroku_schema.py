"""Every request the modules send exists in Heroku's official schema, with a valid body.

The schema is reference data outside the repository: $HEROKU_API_SCHEMA, else
../shared/heroku/platform-api.schema.json from the project root. Without it these
tests skip (the project must work for people who clone it without that folder).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.support.fake_heroku import API
from tests.unit.conftest import ROOT

SCHEMA_PATH = Path(
    os.environ.get("HEROKU_API_SCHEMA")
    or ROOT.parent / "shared" / "heroku" / "platform-api.schema.json"
)

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def schema():
    if not SCHEMA_PATH.is_file():
        pytest.skip(
            f"Heroku Platform API schema not found at {SCHEMA_PATH} (set HEROKU_API_SCHEMA)"
        )
    return json.loads(SCHEMA_PATH.read_text())


def _links(schema):
    for resource, definition in schema["definitions"].items():
        for index, link in enumerate(definition.get("links", [])):
            if "method" not in link:
                continue
            pattern = re.sub(r"\{\([^)]*\)\}", "[^/]+", link["href"])
            yield resource, index, link, re.compile(f"^{pattern}$")


def check_call(schema, method: str, path: str, body) -> str:
    """Return the schema link a request matches; fail when none does or the body is invalid."""
    matches = [
        (res, i, link)
        for res, i, link, rx in _links(schema)
        if link["method"] == method and rx.match(path)
    ]
    if not matches:
        pytest.fail(f"{method} {path} is not a link of the Heroku Platform API schema")
    errors = []
    for res, i, link in matches:
        if "schema" not in link:
            if body in (None, {}):
                return f"{res}: {link['title']}"
            errors.append(f"{res} {link['title']}: takes no body")
            continue
        wrapper = {
            "$ref": f"#/definitions/{res}/links/{i}/schema",
            "definitions": schema["definitions"],
        }
        validator = jsonschema.Draft4Validator(wrapper)
        problems = [e.message for e in validator.iter_errors(body)]
        if not problems:
            return f"{res}: {link['title']}"
        errors.append(f"{res} {link['title']}: {problems}")
    pytest.fail(f"{method} {path} body {body!r} is invalid: {errors}")


def test_the_checker_rejects_what_heroku_would(schema):
    with pytest.raises(pytest.fail.Exception):
        check_call(schema, "POST", "/apps/x/frobnicate", {})
    with pytest.raises(pytest.fail.Exception):
        check_call(schema, "PATCH", "/apps/x/formation", {"updates": [{"type": "web", "size": 1}]})
    with pytest.raises(pytest.fail.Exception):
        check_call(schema, "PATCH", "/apps/x/config-vars", {"BAD-KEY": "x"})


def test_a_whole_deploy_sends_only_schema_valid_requests(schema, run_module, heroku, tmp_path):
    archive = tmp_path / "s.tar.gz"
    archive.write_bytes(b"source")
    plans = ["heroku-postgresql:essential-0", "heroku-redis:mini"]
    steps = [
        ("heroku_app", {"region": "eu", "stack": "heroku-24"}),
        ("heroku_buildpacks", {"buildpacks": ["heroku/python"]}),
        ("heroku_addons", {"plans": plans}),
        ("heroku_config_vars", {"config": {"A": "1"}, "absent": ["OLD"]}),
        ("heroku_source_build", {"archive": str(archive), "version": "abc"}),
        (
            "heroku_formation",
            {
                "formation": [
                    {"type": "web", "quantity": 1, "size": "Standard-1X"},
                    {"type": "worker", "quantity": 0},
                ]
            },
        ),
    ]
    heroku.config.setdefault("double-boiler", {})
    for name, args in steps:
        result, _ = run_module(name, **args)
        assert not result.get("failed"), (name, result.get("msg"))
    heroku.config["double-boiler"]["OLD"] = "x"
    run_module("heroku_config_vars", config={"A": "2"}, absent=["OLD"])
    run_module("heroku_app", region="eu", stack="heroku-22")
    api_calls = [c for c in heroku.calls if c.url.startswith(API) and "/__blobs__/" not in c.url]
    seen = {check_call(schema, c.method, c.path, c.json) for c in api_calls}
    for link in (
        "app: Create",
        "app: Update",
        "buildpack-installation: Update",
        "add-on: Create",
        "config-var: Update",
        "source: Create",
        "build: Create",
        "formation: Batch Update",
    ):
        assert link in seen
