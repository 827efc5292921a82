"""CI smoke of the mini benchmark: tiny sizes, every section, real servers.

It checks that the command runs end to end and writes its table, JSON and
plots, and that what it recorded is coherent (requests answered, jobs done,
memory and start times measured). It asserts nothing about speed: figures
from a tiny run on a CI machine mean nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.app import ROOT
from bench.postgres_server import binaries as postgres_binaries
from bench.report import SERVER_LABELS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_benchmark_smoke_writes_table_json_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "results"
    brokers = "db,redis" if shutil.which("redis-server") else "db"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--url", "", "--brokers", brokers,
         "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "[bench" in completed.stderr  # progress was shown while it ran
    for heading in ("### 1.", "### 2.", "### 3.", "### 4.", "### 5."):
        assert heading in completed.stdout

    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["smoke"] is True
    assert results["meta"]["machine"]["cores"] >= 1

    io = results["io"]
    servers = {row["server"] for row in io["summary"]}
    assert servers == set(SERVER_LABELS)
    assert {row["clients"] for row in io["summary"]} == {4, 8}
    for run in io["runs"]:
        assert run["completed"] > 0, run
        assert run["p50_ms"] is not None and run["p50_ms"] > 0
    assert all(r["gevent_over_sync"] is not None for r in io["ratios"])
    assert {row["server"] for row in io["held"]} == set(SERVER_LABELS)
    assert all(row["completed"] > 0 for row in io["held"])

    # The jobs section runs each broker on SQLite and, where it is installed, on PostgreSQL.
    targets = brokers.split(",")
    if postgres_binaries():
        targets += ["pg"] + (["pg+redis"] if "redis" in targets else [])
    jobs = results["jobs"]["summary"]
    assert {row["target"] for row in jobs} == {f"dyno, {target} broker" for target in targets}
    for row in jobs:
        assert row["jobs"] == 20
        assert row["failed"] == 0 and row["create_errors"] == 0
        assert row["p50_ms"] > 0

    profiles = results["jobs"]["profiles"]
    assert set(profiles) == set(targets)
    for profile in profiles.values():  # py-spy is in the tooling virtualenv
        roles = {stage["role"] for stage in profile["stages"]}
        assert {"web worker", "Celery child"} <= roles, profile
        assert abs(sum(stage["share"] for stage in profile["stages"]) - 1) < 1e-6

    ceiling = results["jobs"]["ceiling"]
    # pg+redis shares the redis ceiling.
    assert {row["broker"] for row in ceiling} == set(targets) - {"pg+redis"}
    assert all(row["tasks_per_s"] > 0 for row in ceiling)

    memory = results["memory"]
    assert memory["rows"] and all(row["mb"] > 0 for row in memory["rows"])
    assert {t["dyno"] for t in memory["timelines"]} >= {"gevent dyno (io)", "dyno, db broker"}

    cold = results["cold_start"]["summary"]
    assert {row["broker"] for row in cold} == set(brokers.split(","))
    assert all(row["median_s"] > 0 for row in cold)

    sizing = results["sizing"]
    if sizing["rows"]:  # a machine where we may make a cgroup (CI runs as root)
        (row,) = sizing["rows"]
        assert row["limit_mb"] == 512 and row["memory_source"].startswith("cgroup memory.")
        assert (row["web"], row["celery"]) == (2, 2)  # what bin/dyno sizes for 512 MB
        assert row["jobs_failed"] == 0 and row["io_errors"] == 0 and row["oom_kills"] == 0
        assert 0 < row["peak_mb"] <= 0.8 * 512
    else:
        assert "the sizing section was skipped" in sizing["notes"][0]

    for name in ("io.png", "jobs.png", "memory.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC), name
    assert (out / "results.md").read_text().startswith("### 1.")
