#!/usr/bin/python
# Copyright: (c) double-boiler contributors
# BSD-2-Clause (see LICENSE)
"""Size the app's connection pools so every dyno together stays within the add-on plans."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: heroku_connection_budget
short_description: Size the app's connection pools from its add-on plans and formation
author:
  - double-boiler contributors (@double-boiler)
description:
  - Heroku caps the connections of each add-on plan (PostgreSQL C(essential-0) 20, Redis
    C(mini) 20). This module reads the plans the app's add-ons are on
    (C(GET /apps/{app}/addons); O(plans) for an app not created yet), takes the plan's limit
    from the table below or O(limits), and computes pool sizes that keep every process of
    every dyno within it, returned as config vars for the app.
  - With O(preboot), every dyno counts twice, since the new dynos start before the old
    ones stop; without it Heroku stops the old web dynos before starting the new ones
    (U(https://devcenter.heroku.com/articles/preboot)). O(reserved) PostgreSQL connections
    are kept for the release phase and C(heroku run) (the release phase uses no Redis).
  - "What the app opens, per dyno: each Gunicorn worker a psycopg pool of C(DATABASE_POOL_SIZE)
    and a Celery pool of C(CELERY_BROKER_POOL_LIMIT) broker connections, each of which holds
    up to 2 Redis sockets; the Celery worker's main process 1 database connection
    (heartbeat, requeue sweep) and 4 Redis sockets to consume (BRPOP, commands, remote
    control) besides its own pool; each prefork child 1 database connection (Django's
    C(CONN_MAX_AGE=0) closes it after each task) and, as it publishes (a parked job of
    its client released), 2 Redis sockets; the embedded Celery beat 2 Redis sockets to
    dispatch ticks. /healthz finds workers by their heartbeat rows, not by Celery's
    broadcast ping, and takes its broker connection from the pool.
    With the database as broker, kombu's SQLAlchemy engine holds
    C(BROKER_DATABASE_POOL_SIZE=1) connection (no overflow) in each Gunicorn worker and
    in the worker's main process. There is no result backend (results are ignored). The
    Redis figures were counted with CLIENT LIST on the heroku Molecule scenario."
  - Fails when even pools of 1 do not fit, saying by how much; it only reads, so a role
    can run it before changing anything (an app not created yet has no add-on yet).
options:
  app:
    description: App name.
    type: str
    required: true
  plans:
    description: Wanted plans (C(<service>:<plan>)), for services without an add-on yet.
    type: list
    elements: str
    default: []
  limits:
    description:
      - Connection limit per add-on service (C(heroku-postgresql), C(heroku-redis)), for a
        plan the module's table does not know, or to budget below the plan's limit.
    type: dict
    default: {}
  broker:
    description: Celery's broker.
    type: str
    choices: [redis, database]
    default: redis
  mode:
    description: C(one-dyno) runs Celery in each web dyno; C(split) runs it in worker dynos.
    type: str
    choices: [one-dyno, split]
    default: one-dyno
  web_quantity:
    description: Web dynos.
    type: int
    default: 1
  worker_quantity:
    description: Worker dynos (split mode).
    type: int
    default: 0
  web_concurrency:
    description: Gunicorn worker processes per web dyno.
    type: int
    default: 2
  celery_concurrency:
    description: Celery prefork children per dyno that runs Celery.
    type: int
    default: 2
  preboot:
    description: Whether the app's C(preboot) feature is on (old and new web dynos overlap).
    type: bool
    default: false
  reserved:
    description: PostgreSQL connections kept free for the release phase and one-off dynos.
    type: int
    default: 2
  max_pool:
    description:
      - Largest pool handed to one process, however much room the plan leaves (4 is what
        C(gunicorn.conf.py) asks for when nothing is set).
    type: int
    default: 4
extends_documentation_fragment:
  - double_boiler.paas.heroku
  - double_boiler.paas.attributes
attributes:
  check_mode:
    support: full
    details: Reads only.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Size the pools from the add-on plans and the formation
  double_boiler.paas.heroku_connection_budget:
    app: my-django-app
    plans: [heroku-postgresql:essential-0, heroku-redis:mini]
    web_quantity: 1
    web_concurrency: 2
    celery_concurrency: 2
  register: budget

- name: Give them to the app
  double_boiler.paas.heroku_config_vars:
    app: my-django-app
    config: "{{ budget.config }}"
"""

RETURN = r"""
config:
  description: Config vars with the pool sizes (C(DATABASE_POOL_SIZE), ...).
  type: dict
  returned: always
budget:
  description: Per add-on service C(plan), C(limit), C(peak) (at the deploy overlap), C(pool).
  type: dict
  returned: always
api_writes:
  description: Always empty (the module only reads).
  type: list
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.double_boiler.paas.plugins.module_utils.heroku_api import (
    HerokuClient,
    HerokuError,
    NotFound,
    common_argument_spec,
    module_client,
)

# Connection limit per plan. PostgreSQL: "Connection Limit" of each plan,
# https://devcenter.heroku.com/articles/heroku-postgres-plans (Essential tier: essential-0 and
# essential-1 20, essential-2 40; standard-0 and premium-0 120). Redis: "Connection Limit",
# https://devcenter.heroku.com/articles/heroku-redis-technical-characterization (20 for the
# 25 MB plan, hobby-dev then mini; premium-0 40 ... premium-5 1000).
PLAN_LIMITS: dict[str, dict[str, int]] = {
    "heroku-postgresql": {
        "essential-0": 20,
        "essential-1": 20,
        "essential-2": 40,
        "standard-0": 120,
        "premium-0": 120,
    },
    "heroku-redis": {
        "mini": 20,
        "premium-0": 40,
        "premium-1": 80,
        "premium-2": 200,
        "premium-3": 400,
        "premium-4": 700,
        "premium-5": 1000,
    },
}
# Redis sockets: per pooled kombu connection, and the worker's consumer (counted with
# CLIENT LIST: a Gunicorn worker held 4 with a pool of 2, the Celery main process 8).
REDIS_SOCKETS_PER_POOLED_CONNECTION = 2
REDIS_CONSUMER_SOCKETS = 4
# Processes of a Celery dyno that publish outside the main process's pool: each prefork
# child, and the embedded beat.
REDIS_PUBLISHER_SOCKETS = 2
# Every process publishes one message at a time: a pool of one connection serves it.
MIN_POOL = 1


def per_dyno_uses(params: dict) -> dict[str, list[tuple[int, int, int]]]:
    """For each service: (dynos, connections per unit of pool, fixed connections) per dyno kind.

    A dyno kind opens ``per_pool * pool + fixed`` connections of that service.
    """
    web_q, worker_q = params["web_quantity"], params["worker_quantity"]
    w, c = params["web_concurrency"], params["celery_concurrency"]
    split = params["mode"] == "split"
    database_broker = params["broker"] == "database"
    web_dynos, celery_dynos = web_q, (worker_q if split else web_q)
    # database: Gunicorn pools scale; Celery main 1 + children 1 each are fixed; the
    # database broker adds 1 per Gunicorn worker and 1 for the worker's main process.
    pg = [(web_dynos, w, w if database_broker else 0)]
    pg.append((celery_dynos, 0, 1 + c + (1 if database_broker else 0)))
    uses = {"heroku-postgresql": pg}
    if not database_broker:
        # redis: every Gunicorn worker and the Celery main process have a pool.
        per = REDIS_SOCKETS_PER_POOLED_CONNECTION
        uses["heroku-redis"] = [
            (web_dynos, w * per, 0),
            (celery_dynos, per, REDIS_CONSUMER_SOCKETS + (c + 1) * REDIS_PUBLISHER_SOCKETS),
        ]
    return uses


def largest_pool(
    limit: int, reserved: int, uses: list[tuple[int, int, int]], cap: int, overlap: int, low: int
):
    """(pool, peak): the largest pool whose peak fits in the limit, or (0, peak at `low`)."""

    def peak(pool: int) -> int:
        return reserved + sum(overlap * dynos * (per * pool + fixed) for dynos, per, fixed in uses)

    if peak(low) > limit:
        return 0, peak(low)
    pool = low
    while pool < cap and peak(pool + 1) <= limit:
        pool += 1
    return pool, peak(pool)


def actual_plans(client: HerokuClient, app: str, wanted: list[str]) -> dict[str, str]:
    plans = {p.split(":", 1)[0]: p.split(":", 1)[1] for p in wanted}
    try:
        addons = client.list(client.path("apps", app, "addons"))
    except NotFound:  # not created yet: run before anything changes, it budgets the wanted plans
        addons = []
    for addon in addons:
        service = (addon.get("addon_service") or {}).get("name")
        plan = (addon.get("plan") or {}).get("name") or ""
        if service in plans and addon.get("state") != "deprovisioned":
            plans[service] = plan.split(":", 1)[-1]
    return plans


def compute_budget(params: dict, plans: dict[str, str]) -> dict:
    uses = per_dyno_uses(params)
    budget, problems = {}, []
    for service, kinds in uses.items():
        plan = plans.get(service)
        if plan is None:
            problems.append(f"no {service} plan given: add it to plans")
            continue
        limit = params["limits"].get(service) or PLAN_LIMITS.get(service, {}).get(plan)
        if not limit:
            problems.append(
                f"the connection limit of {service}:{plan} is not in this module's table: "
                f"give it as heroku_app_connection_limits['{service}'] (see `heroku pg:info` or "
                "`heroku redis:info`)"
            )
            continue
        overlap = 2 if params["preboot"] else 1
        reserved = params["reserved"] if service == "heroku-postgresql" else 0
        pool, peak = largest_pool(
            int(limit), reserved, kinds, max(params["max_pool"], MIN_POOL), overlap, MIN_POOL
        )
        if pool == 0:
            during = " during a preboot deploy (old and new dynos)" if overlap == 2 else ""
            problems.append(
                f"{service}:{plan} allows {limit} connections, but even pools of {MIN_POOL} need "
                f"{peak}{during}, {reserved} kept for the release phase included: lower the dyno "
                "quantity or the web/celery concurrency, or pick a larger plan"
            )
            continue
        budget[service] = {"plan": plan, "limit": int(limit), "peak": peak, "pool": pool}
    if problems:
        raise HerokuError("; ".join(problems))
    config = {"DATABASE_POOL_SIZE": str(budget["heroku-postgresql"]["pool"])}
    if params["broker"] == "database":
        config["BROKER_DATABASE_POOL_SIZE"] = "1"
    else:
        config["CELERY_BROKER_POOL_LIMIT"] = str(budget["heroku-redis"]["pool"])
    return {"config": config, "budget": budget}


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        plans=dict(type="list", elements="str", default=[]),
        limits=dict(type="dict", default={}),
        broker=dict(type="str", choices=["redis", "database"], default="redis"),
        mode=dict(type="str", choices=["one-dyno", "split"], default="one-dyno"),
        web_quantity=dict(type="int", default=1),
        worker_quantity=dict(type="int", default=0),
        web_concurrency=dict(type="int", default=2),
        celery_concurrency=dict(type="int", default=2),
        preboot=dict(type="bool", default=False),
        reserved=dict(type="int", default=2),
        max_pool=dict(type="int", default=4),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    client = module_client(module)
    p = dict(module.params)
    problems = [
        f"{name} must be at least {low}"
        for name, low in (
            ("web_quantity", 0),
            ("worker_quantity", 0),
            ("web_concurrency", 1),
            ("celery_concurrency", 1),
            ("reserved", 0),
            ("max_pool", 1),
        )
        if p[name] < low
    ]
    bad = [p_ for p_ in p["plans"] if ":" not in p_]
    if bad:
        problems.append(f"plans {bad} are not of the form <service>:<plan>")
    try:
        p["limits"] = {k: int(v) for k, v in p["limits"].items() if v not in (None, "")}
    except (TypeError, ValueError):
        problems.append("limits must map add-on services to whole numbers")
    if problems:
        module.fail_json(msg="; ".join(problems))
    try:
        plans = actual_plans(client, p["app"], p["plans"])
        result = compute_budget(p, plans)
    except HerokuError as exc:
        module.fail_json(msg=str(exc), api_writes=client.writes)
    module.exit_json(changed=False, api_writes=client.writes, **result)


if __name__ == "__main__":
    main()
