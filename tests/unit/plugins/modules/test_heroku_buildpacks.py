"""heroku_buildpacks: the app's buildpacks, in order, set only when they differ."""

from __future__ import annotations


def test_buildpacks_set_only_when_different(run_module, heroku):
    heroku.add_app()
    result, _ = run_module("heroku_buildpacks", buildpacks=["heroku/python"])
    assert result["changed"] is True
    assert heroku.api_writes() == ["PUT /apps/double-boiler/buildpack-installations"]
    assert heroku.writes()[0].json == {"updates": [{"buildpack": "heroku/python"}]}
    heroku.calls.clear()
    again, _ = run_module("heroku_buildpacks", buildpacks=["heroku/python"])
    assert again["changed"] is False and heroku.writes() == []


def test_buildpack_matches_by_url_too(run_module, heroku):
    heroku.add_app()
    heroku.buildpacks["double-boiler"] = [
        {
            "ordinal": 0,
            "buildpack": {
                "name": "heroku/python",
                "url": "https://buildpack-registry.example/python.tgz",
            },
        }
    ]
    result, _ = run_module(
        "heroku_buildpacks", buildpacks=["https://buildpack-registry.example/python.tgz"]
    )
    assert result["changed"] is False and heroku.writes() == []


def test_buildpacks_order_matters_and_check_mode_does_not_write(run_module, heroku):
    heroku.add_app()
    heroku.buildpacks["double-boiler"] = [
        {"ordinal": 0, "buildpack": {"name": "heroku/python", "url": "heroku/python"}},
        {"ordinal": 1, "buildpack": {"name": "heroku/nodejs", "url": "heroku/nodejs"}},
    ]
    result, _ = run_module(
        "heroku_buildpacks", check_mode=True, buildpacks=["heroku/nodejs", "heroku/python"]
    )
    assert result["changed"] is True and heroku.writes() == []
    assert result["diff"]["before"]["buildpacks"] == ["heroku/python", "heroku/nodejs"]
