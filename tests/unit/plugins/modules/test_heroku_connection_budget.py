"""heroku_connection_budget: pools sized so every dyno fits the add-on plans (issue 10
item 3). The arithmetic is spelled out here so a change in the model shows."""

from __future__ import annotations

PLANS = ["heroku-postgresql:essential-0", "heroku-redis:mini"]


def _budget(run_module, heroku, **args):
    heroku.add_app()
    args.setdefault("plans", PLANS)
    return run_module("heroku_connection_budget", **args)


def test_one_basic_dyno_fits_essential_0_and_mini(run_module, heroku):
    result, _ = _budget(run_module, heroku)
    # PostgreSQL 20: 2 kept + (2 Gunicorn workers x 4 + Celery main 1 + 2 children) = 13
    # Redis 20: 2 Gunicorn workers x 1 x 2 sockets + Celery main (4 + 1 x 2) + 2 children
    # x 2 + beat 2 = 16 (counted with CLIENT LIST on the heroku scenario); 2 would need 22
    assert result["config"] == {"DATABASE_POOL_SIZE": "4", "CELERY_BROKER_POOL_LIMIT": "1"}
    assert result["budget"]["heroku-postgresql"] == {
        "plan": "essential-0",
        "limit": 20,
        "peak": 13,
        "pool": 4,
    }
    assert result["budget"]["heroku-redis"]["peak"] == 16
    assert heroku.writes() == []


def test_preboot_counts_old_and_new_dynos(run_module, heroku):
    result, _ = _budget(run_module, heroku, preboot=True)
    # Redis: 2 x 16 = 32 > 20 even with pools of one
    assert result["failed"] is True
    assert "heroku-redis:mini allows 20 connections, but even pools of 1 need 32" in result["msg"]
    ok, _ = run_module(
        "heroku_connection_budget",
        plans=["heroku-postgresql:essential-0", "heroku-redis:premium-0"],
        preboot=True,
    )
    # PostgreSQL: 2 + 2 x (2 x 3 + 3) = 20; Redis premium-0 (40): 2 x (6 x 1 + 10) = 32
    assert ok["config"] == {"DATABASE_POOL_SIZE": "3", "CELERY_BROKER_POOL_LIMIT": "1"}


def test_the_database_broker_shares_the_postgres_budget(run_module, heroku):
    result, _ = _budget(run_module, heroku, broker="database", plans=PLANS[:1])
    # 2 + 2 x (4 + 1 broker) + 1 + 2 + 1 broker = 16
    assert result["config"] == {"DATABASE_POOL_SIZE": "4", "BROKER_DATABASE_POOL_SIZE": "1"}
    assert result["budget"]["heroku-postgresql"]["peak"] == 16
    assert "heroku-redis" not in result["budget"]


def test_web_scaled_out_fails_with_what_to_change(run_module, heroku):
    result, _ = _budget(run_module, heroku, web_quantity=2)
    assert result["failed"] is True
    assert "heroku-redis:mini allows 20" in result["msg"] and "larger plan" in result["msg"]
    big, _ = run_module(
        "heroku_connection_budget",
        plans=["heroku-postgresql:essential-0", "heroku-redis:premium-0"],
        web_quantity=2,
    )
    assert big["budget"]["heroku-redis"]["peak"] == 32


def test_the_plan_the_add_on_is_on_wins_over_the_wanted_one(run_module, heroku):
    heroku.add_app()
    run_module("heroku_addons", plans=["heroku-postgresql:standard-0", "heroku-redis:mini"])
    result, _ = run_module("heroku_connection_budget", plans=PLANS)
    assert result["budget"]["heroku-postgresql"]["plan"] == "standard-0"


def test_an_app_not_created_yet_is_budgeted_on_the_wanted_plans(run_module, heroku):
    result, _ = run_module("heroku_connection_budget", plans=PLANS)
    assert result.get("failed") is not True and result["budget"]["heroku-redis"]["plan"] == "mini"


def test_split_mode_counts_worker_dynos(run_module, heroku):
    result, _ = _budget(run_module, heroku, mode="split", web_quantity=1, worker_quantity=1)
    # Redis: web 2 x 2 x L + worker (4 + 2L + (2 children + beat) x 2) <= 20 -> L = 1
    assert result["config"]["CELERY_BROKER_POOL_LIMIT"] == "1"


def test_an_unknown_plan_needs_its_limit(run_module, heroku):
    result, _ = _budget(run_module, heroku, plans=["heroku-postgresql:exotic-9", PLANS[1]])
    assert result["failed"] is True and "heroku_app_connection_limits" in result["msg"]
    ok, _ = run_module(
        "heroku_connection_budget",
        plans=["heroku-postgresql:exotic-9", PLANS[1]],
        limits={"heroku-postgresql": 60},
    )
    assert ok["budget"]["heroku-postgresql"]["limit"] == 60
