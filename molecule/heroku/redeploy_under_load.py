"""A redeploy under load on the Heroku stand-in, with preboot on and off.

After `molecule converge -s heroku` (the stand-in and the app are up), from the project root:

    HEROKU_API_KEY=molecule-dummy-token-not-a-secret-4f1c9a \\
    SSL_CERT_FILE=/tmp/double-boiler-molecule-heroku/router/ca-bundle.pem \\
        .venv/bin/python molecule/heroku/redeploy_under_load.py --preboot off --preboot on

For each setting: turn the app's `preboot` feature on or off (PATCH
/apps/{app}/features/preboot). Preboot needs Standard dynos, and its overlap of old and
new dynos needs a Redis plan with room for both (heroku_connection_budget: mini's 20 do
not fit 2 x 16): for "on" the script first moves web to Standard-1X and Redis to
premium-0 (40) through the API, as a user would, and sets the pools the role computes
for that. Then it starts CLIENTS threads that GET the app's page in a loop
and submit a job every JOB_EVERY seconds, make a new release (a config var change, which
restarts every dyno as a deploy does), wait until every web dyno runs it
(GET /apps/{app}/dynos), keep the load for AFTER seconds, then wait for every submitted job
to finish. Prints one JSON line per setting: requests, failed requests (a connection
error, a 5xx or a timeout), jobs submitted, jobs whose submission failed, jobs lost
(accepted but never done). Only the Platform API and the app's own URLs are used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.standins.heroku_api.client import StandInClient

API_URL = "http://127.0.0.1:5500"
APP = "double-boiler-molecule"
CLIENTS = 50
JOB_EVERY = 0.2
AFTER = 10.0
JOB_DEADLINE = 180.0


def http(url: str, data: bytes | None = None, timeout: float = 30) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if data else {}
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:  # refused, reset, timed out
        return 0, str(exc).encode()


class Load:
    def __init__(self, web_url: str) -> None:
        self.web_url = web_url
        self.stop = threading.Event()
        self.outcomes: Counter[str] = Counter()
        self.accepted: list[int] = []
        self.refused_jobs = 0
        self.lock = threading.Lock()

    def client(self) -> None:
        while not self.stop.is_set():
            status, _ = http(self.web_url, timeout=30)
            with self.lock:
                self.outcomes["ok" if 200 <= status < 400 else f"failed {status}"] += 1

    def submitter(self) -> None:
        body = json.dumps({"io_wait_ms": 50}).encode()
        while not self.stop.is_set():
            status, payload = http(self.web_url + "api/jobs", body, timeout=30)
            with self.lock:
                if status == 202:
                    self.accepted.append(json.loads(payload)["id"])
                else:
                    self.refused_jobs += 1
            self.stop.wait(JOB_EVERY)

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.client) for _ in range(CLIENTS)]
        threads.append(threading.Thread(target=self.submitter))
        for thread in threads:
            thread.start()
        return threads


def current_version(api: StandInClient) -> int:
    releases = api.ok(
        "GET", f"/apps/{APP}/releases", headers={"Range": "version ..; order=desc, max=10"}
    )
    return max(r["version"] for r in releases if r["current"])


def wait_dynos_on(api: StandInClient, version: int, deadline: float) -> float:
    started = time.monotonic()
    while time.monotonic() < deadline:
        dynos = [d for d in api.ok("GET", f"/apps/{APP}/dynos") if d["type"] == "web"]
        if dynos and all(d["release"]["version"] == version and d["state"] == "up" for d in dynos):
            return time.monotonic() - started
        time.sleep(0.5)
    raise SystemExit(f"web dynos not on v{version} in time")


def lost_jobs(web_url: str, ids: list[int]) -> list[int]:
    deadline = time.monotonic() + JOB_DEADLINE
    pending = list(ids)
    while pending and time.monotonic() < deadline:
        still = []
        for start in range(0, len(pending), 100):
            chunk = pending[start : start + 100]
            status, body = http(web_url + "api/jobs?ids=" + ",".join(map(str, chunk)))
            done = (
                {j["id"] for j in json.loads(body)["jobs"] if j["status"] == "done"}
                if status == 200
                else set()
            )
            still += [i for i in chunk if i not in done]
        pending = still
        if pending:
            time.sleep(2)
    return pending


def prepare_preboot(api: StandInClient) -> None:
    """Standard-1X web, Redis premium-0, the pools heroku_connection_budget gives them."""
    redis = next(
        a
        for a in api.ok("GET", f"/apps/{APP}/addons")
        if a["addon_service"]["name"] == "heroku-redis"
    )
    if redis["plan"]["name"] != "heroku-redis:premium-0":
        api.ok("PATCH", f"/apps/{APP}/addons/{redis['id']}", {"plan": "heroku-redis:premium-0"})
    api.ok(
        "PATCH",
        f"/apps/{APP}/formation",
        {"updates": [{"type": "web", "dyno_size": {"name": "Standard-1X"}}]},
    )
    # preboot, essential-0 and premium-0: DATABASE_POOL_SIZE 3 (CELERY_BROKER_POOL_LIMIT stays 1)
    api.ok("PATCH", f"/apps/{APP}/config-vars", {"DATABASE_POOL_SIZE": "3"})
    wait_dynos_on(api, current_version(api), time.monotonic() + 300)


def redeploy(api: StandInClient, preboot: bool) -> dict:
    if preboot:
        prepare_preboot(api)
    reply = api.api("PATCH", f"/apps/{APP}/features/preboot", {"enabled": preboot})
    if reply.status != 200:
        raise SystemExit(f"preboot {preboot}: {reply.status} {reply.body[:200]!r}")
    web_url = api.ok("GET", f"/apps/{APP}")["web_url"]
    load = Load(web_url)
    threads = load.start()
    time.sleep(3)  # steady load before the deploy
    before = current_version(api)
    api.ok("PATCH", f"/apps/{APP}/config-vars", {"REDEPLOY_NONCE": str(time.time())})
    deadline = time.monotonic() + 300
    while current_version(api) == before and time.monotonic() < deadline:
        time.sleep(0.5)
    version = current_version(api)
    rollout = wait_dynos_on(api, version, deadline)
    # With preboot Heroku hides the old dynos from GET /dynos while they still serve,
    # until the switch a few minutes later: the stand-in's own dyno list shows them.
    switch_deadline = time.monotonic() + 420
    while time.monotonic() < switch_deadline and any(
        d["app"] == APP and d["type"] == "web" and d.get("release_version") != version
        for d in api.admin("GET", "dynos")
    ):
        time.sleep(1)
    rollout = time.monotonic() - (deadline - 300)
    time.sleep(AFTER)
    load.stop.set()
    for thread in threads:
        thread.join()
    lost = lost_jobs(web_url, load.accepted)
    failed = sum(n for k, n in load.outcomes.items() if k != "ok")
    return {
        "preboot": preboot,
        "release": version,
        "rollout_seconds": round(rollout, 1),
        "requests": sum(load.outcomes.values()),
        "failed_requests": failed,
        "failures": {k: n for k, n in load.outcomes.items() if k != "ok"},
        "jobs_accepted": len(load.accepted),
        "jobs_refused": load.refused_jobs,
        "jobs_lost": len(lost),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preboot", action="append", choices=["on", "off"], required=True)
    args = parser.parse_args()
    api = StandInClient(API_URL, os.environ["HEROKU_API_KEY"])
    for setting in args.preboot:
        print(json.dumps(redeploy(api, setting == "on")), flush=True)


if __name__ == "__main__":
    main()
