"""bin/dyno sizes WEB_CONCURRENCY and CELERY_CONCURRENCY from the dyno's memory (issue 14).

The per-process costs are the benchmark's (docs/benchmarks.md, "Sizing from the memory
limit" measures the tree's peak against each limit). Heroku's dyno sizes:
https://devcenter.heroku.com/articles/dyno-types (standard-1x 512 MB, standard-2x 1 GB,
performance-m 2.5 GB).
"""

import importlib.machinery
import json
import time
import types
import urllib.request

import pytest

from tests.support.dyno import ROOT, Dyno


def _bin_dyno() -> types.ModuleType:
    loader = importlib.machinery.SourceFileLoader("bin_dyno_sizing", str(ROOT / "bin" / "dyno"))
    module = types.ModuleType(loader.name)
    module.__file__ = loader.path
    loader.exec_module(module)
    return module


dyno_module = _bin_dyno()
ONE_DYNO = {"web", "worker"}


def _tree_mb(plan: dict, runs: set[str]) -> float:
    fixed = dyno_module.FIXED_MB["outer"] + sum(
        dyno_module.FIXED_MB[name] for name in ("web", "worker") if name in runs
    )
    return (
        fixed
        + (plan["web"] or 0) * dyno_module.WEB_WORKER_MB
        + (plan["celery"] or 0) * dyno_module.CELERY_CHILD_MB
    )


@pytest.mark.parametrize(
    ("memory_mb", "cpus", "web", "celery"),
    [
        (512, 8, 2, 2),  # standard-1x: what the roles set before sizing existed
        (1024, 8, 5, 5),  # standard-2x
        (512, 2, 2, 2),
        (1024, 2, 2, 5),  # gevent web workers stop at the CPUs, Celery children at 2 x + 1
        (256, 8, 1, 1),  # too small: one of each, and a warning (fits is False)
    ],
)
def test_one_dyno_sizes_fill_80_percent_of_the_memory(memory_mb, cpus, web, celery):
    plan = dyno_module.plan_sizes(memory_mb, cpus, ONE_DYNO)
    assert (plan["web"], plan["celery"]) == (web, celery)
    assert plan["sized"] == ["web", "celery"]
    assert plan["fits"] == (_tree_mb(plan, ONE_DYNO) <= 0.8 * memory_mb)
    assert plan["fits"] == (memory_mb >= 512)


def test_more_memory_never_means_fewer_processes():
    previous = (0, 0)
    for memory_mb in range(256, 8192, 64):
        plan = dyno_module.plan_sizes(memory_mb, 4, ONE_DYNO)
        assert plan["web"] >= previous[0] and plan["celery"] >= previous[1], memory_mb
        previous = (plan["web"], plan["celery"])


def test_an_explicit_count_is_kept_and_the_other_sized_around_it():
    plan = dyno_module.plan_sizes(1024, 8, ONE_DYNO, web=4)
    assert plan["web"] == 4 and plan["sized"] == ["celery"]
    assert _tree_mb(plan, ONE_DYNO) <= 0.8 * 1024
    too_many = dyno_module.plan_sizes(512, 8, ONE_DYNO, web=4, celery=4)
    assert (too_many["web"], too_many["celery"], too_many["fits"]) == (4, 4, False)
    assert too_many["needs_mb"] > 512


def test_sync_workers_may_pass_the_cpus_and_split_dynos_size_their_one_process():
    assert dyno_module.plan_sizes(1024, 2, ONE_DYNO, worker_class="sync")["web"] == 5  # 2 x 2 + 1
    web_only = dyno_module.plan_sizes(512, 8, {"web"})
    assert web_only["celery"] is None and web_only["web"] == 5
    worker_only = dyno_module.plan_sizes(512, 8, {"worker"})
    assert worker_only["web"] is None and worker_only["celery"] == 5


def test_caps_grow_with_spare_memory_up_to_twice_their_floor():
    small = dyno_module.plan_sizes(512, 8, ONE_DYNO)
    assert (small["web_worker_cap_mb"], small["celery_child_cap_mb"]) == (130, 120)
    big = dyno_module.plan_sizes(16384, 2, ONE_DYNO)
    assert (big["web_worker_cap_mb"], big["celery_child_cap_mb"]) == (260, 240)


def _cgroup_files(tmp_path, monkeypatch, proc_cgroup: str, files: dict[str, int]):
    root = tmp_path / "sys-fs-cgroup"
    for relative, value in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{value}\n")
    (tmp_path / "cgroup").write_text(proc_cgroup)
    real_path = dyno_module.Path

    def path(name, *rest):
        name = str(name)
        if name == "/proc/self/cgroup":
            return real_path(tmp_path / "cgroup")
        if name.startswith("/sys/fs/cgroup"):
            return real_path(str(root) + name.removeprefix("/sys/fs/cgroup"), *rest)
        return real_path(name, *rest)

    monkeypatch.setattr(dyno_module, "Path", path)
    monkeypatch.delenv("DYNO_MEMORY_MB", raising=False)


def test_a_cgroup_v1_limit_is_read_from_the_process_own_group_up(tmp_path, monkeypatch):
    # Heroku's dynos are cgroup v1 (heroku/heroku-buildpack-python vendor/WEB_CONCURRENCY.sh).
    _cgroup_files(
        tmp_path,
        monkeypatch,
        "4:memory:/dyno/web.1\n0::/\n",
        {
            "memory/memory.limit_in_bytes": 9223372036854771712,  # no limit at the root
            "memory/dyno/memory.limit_in_bytes": 1024 * 2**20,
            "memory/dyno/web.1/memory.limit_in_bytes": 512 * 2**20,
        },
    )
    assert dyno_module.memory_limit() == (512, "cgroup memory.limit_in_bytes")


def test_a_cgroup_v2_limit_in_a_container_and_dyno_memory_mb_lowering_it(tmp_path, monkeypatch):
    _cgroup_files(tmp_path, monkeypatch, "0::/\n", {"memory.max": 1024 * 2**20})
    assert dyno_module.memory_limit() == (1024, "cgroup memory.max")
    monkeypatch.setenv("DYNO_MEMORY_MB", "512")
    assert dyno_module.memory_limit() == (512, "DYNO_MEMORY_MB")


def test_no_limit_anywhere_sizes_from_the_host(tmp_path, monkeypatch):
    _cgroup_files(tmp_path, monkeypatch, "0::/\n", {})
    memory_mb, source = dyno_module.memory_limit()
    assert memory_mb > 128 and source == "no memory limit: the host's memory"


@pytest.mark.slow
def test_an_unsized_dyno_logs_its_choice_reports_it_and_recycles_a_worker_over_its_cap(tmp_path):
    dyno = Dyno(
        tmp_path,
        env_extra={
            "WEB_CONCURRENCY": "auto",
            "CELERY_CONCURRENCY": "",
            "DYNO_MEMORY_MB": "512",
            "GUNICORN_MAX_WORKER_MEMORY_MB": "1",  # every worker is over it
        },
    )
    dyno.migrate()
    dyno.start()
    try:
        dyno.wait_healthy()
        sizing = dyno.health()[1]["checks"]["web"]["sizing"]
        assert (sizing["web"], sizing["celery"], sizing["memory_mb"]) == (2, 2, 512)
        assert sizing["memory_source"] == "DYNO_MEMORY_MB"
        log = dyno.log_tail(200)
        assert "dyno: 512 MB (DYNO_MEMORY_MB)" in log
        assert "WEB_CONCURRENCY=2 (sized), each worker recycled over 1 MB" in log
        assert "CELERY_CONCURRENCY=2 (sized), each child recycled over 120 MB" in log
        # A worker over its cap keeps serving until its loop notices (about 1 s),
        # then the master boots a replacement: ask until one answers, not a fixed count.
        pids, statuses = set(), []
        deadline = time.monotonic() + 60
        while len(pids) <= 2 and time.monotonic() < deadline:
            with urllib.request.urlopen(dyno.url + "healthz", timeout=10) as response:
                statuses.append(response.status)
                pids.add(response.headers["X-Web-Pid"])
        assert set(statuses) == {200}  # recycling is graceful: no request fails
        assert len(pids) > 2, (pids, len(statuses))  # workers were replaced
        assert "over its 1 MB (GUNICORN_MAX_WORKER_MEMORY_MB): recycling it" in dyno.log_tail(400)
    finally:
        dyno.stop()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY='two': set a whole number from 1, or `auto`"),
        ({"CELERY_CONCURRENCY": "0"}, "CELERY_CONCURRENCY='0': set a whole number from 1"),
        ({"DYNO_MEMORY_MB": "1g"}, "DYNO_MEMORY_MB='1g': set the dyno's memory in MB"),
    ],
)
def test_a_bad_count_or_memory_is_refused_with_what_to_set(tmp_path, env, message):
    dyno = Dyno(tmp_path, env_extra=env)
    dyno.start()
    assert dyno.wait_exit(timeout=20) == 2
    assert message in dyno.log_tail()


def test_the_sizing_in_healthz_is_what_bin_dyno_exported(monkeypatch):
    monkeypatch.setenv("DYNO_SIZING", json.dumps({"web": 3}))
    from jobs import health

    assert health.web()["sizing"] == {"web": 3}
