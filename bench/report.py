"""The benchmark's outputs: Markdown tables on stdout, results.json, PNG plots."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

SERVER_LABELS = {
    "gevent": "Gunicorn gevent (this dyno)",
    "sync": "Gunicorn sync",
    "asgi": "uvicorn, async view",
    "asgi-lean": "uvicorn, async view, async-only middleware",
    "granian-asgi": "granian ASGI, async view",
    "granian-wsgi": "granian WSGI, sync view",
}
SERVER_COLOURS = {
    "gevent": "#2f9e6e",
    "sync": "#9a9a9a",
    "asgi": "#4a7fd6",
    "asgi-lean": "#9db8e8",
    "granian-asgi": "#d6844a",
    "granian-wsgi": "#e8c09d",
}
BROKER_LABELS = {
    "db": "database broker (SQLite)",
    "redis": "Redis broker",
    "pg": "PostgreSQL as database and broker",
    "pg+redis": "PostgreSQL database, Redis broker",
}
DYNO_LIMIT_MB = 512


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(present) if present else None


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right if right is not None else set(range(1, len(headers)))
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]

    def line(cells: list[str]) -> str:
        padded = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


# ---- summaries ----------------------------------------------------------------------


def summarize_io(runs: list[dict]) -> tuple[list[dict], list[dict]]:
    order = list(SERVER_LABELS)
    keys = sorted(
        {(r["clients"], r["server"]) for r in runs}, key=lambda k: (k[0], order.index(k[1]))
    )
    rows = []
    for clients, server in keys:
        mine = [r for r in runs if r["clients"] == clients and r["server"] == server]
        rows.append(
            {
                "clients": clients,
                "server": server,
                "runs": len(mine),
                "rps": median([r["rps"] for r in mine]),
                "p50_ms": median([r["p50_ms"] for r in mine]),
                "p99_ms": median([r["p99_ms"] for r in mine]),
                "errors": median([r["errors"] for r in mine]),
                "completed": median([r["completed"] for r in mine]),
            }
        )
    ratios = []
    for clients in sorted({r["clients"] for r in rows}):
        by = {r["server"]: r for r in rows if r["clients"] == clients}
        gevent = by.get("gevent", {}).get("rps")

        def ratio(other: str, gevent: float | None = gevent, by: dict = by) -> float | None:
            value = by.get(other, {}).get("rps")
            return round(gevent / value, 2) if gevent and value else None

        ratios.append(
            {
                "clients": clients,
                "gevent_over_sync": ratio("sync"),
                "gevent_over_asgi": ratio("asgi"),
                "gevent_over_asgi_lean": ratio("asgi-lean"),
                "gevent_over_granian_asgi": ratio("granian-asgi"),
                "gevent_over_granian_wsgi": ratio("granian-wsgi"),
            }
        )
    return rows, ratios


def summarize_ceiling(runs: list[dict]) -> list[dict]:
    return [
        {
            "broker": broker,
            "tasks_per_s": median([r["tasks_per_s"] for r in runs if r["broker"] == broker]),
            "sent_per_s": median([r["sent_per_s"] for r in runs if r["broker"] == broker]),
            "runs": sum(r["broker"] == broker for r in runs),
        }
        for broker in dict.fromkeys(r["broker"] for r in runs)
    ]


def summarize_jobs(runs: list[dict]) -> list[dict]:
    rows = []
    for target in dict.fromkeys(r["target"] for r in runs):
        mine = [r for r in runs if r["target"] == target]
        rows.append(
            {
                "target": target,
                "runs": len(mine),
                "jobs": mine[0]["jobs"],
                **{
                    key: median([r[key] for r in mine])
                    for key in (
                        "jobs_per_s",
                        "created_per_s",
                        "p50_ms",
                        "p90_ms",
                        "p99_ms",
                        "wall_seconds",
                        "failed",
                        "create_errors",
                    )
                },
            }
        )
    return rows


# ---- text ---------------------------------------------------------------------------


def render_tables(results: dict) -> str:
    out = []
    meta = results["meta"]
    opts = meta["options"]
    io = results.get("io")
    if io and io.get("summary"):
        out.append(
            f"### 1. I/O-bound endpoint: one {opts['upstream_ms']:.0f} ms upstream call "
            "per request\n"
            f"{opts['workers']} worker processes per server; median of {opts['runs']} interleaved "
            f"runs of {opts['duration']:.0f} s each; load by {io['tool']}.\n"
        )
        rows = [
            [
                str(r["clients"]),
                SERVER_LABELS[r["server"]],
                fmt(r["rps"]),
                fmt(r["p50_ms"]),
                fmt(r["p99_ms"]),
                fmt(r["errors"]),
            ]
            for r in io["summary"]
        ]
        out.append(
            table(
                ["clients", "server", "req/s", "p50 ms", "p99 ms", "errors/run"], rows, {2, 3, 4, 5}
            )
        )

        def times(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}x"

        ratio_rows = [
            [
                str(r["clients"]),
                times(r["gevent_over_sync"]),
                times(r["gevent_over_asgi"]),
                times(r.get("gevent_over_asgi_lean")),
                times(r.get("gevent_over_granian_asgi")),
                times(r.get("gevent_over_granian_wsgi")),
            ]
            for r in io["ratios"]
        ]
        out.append("\nThroughput ratios (req/s):\n")
        out.append(
            table(
                [
                    "clients",
                    "gevent / sync",
                    "gevent / uvicorn",
                    "gevent / uvicorn, async-only mw",
                    "gevent / granian ASGI",
                    "gevent / granian WSGI",
                ],
                ratio_rows,
            )
        )
    if io and io.get("held"):
        clients, wait = io["held_clients"], io["held_wait_s"]
        out.append(
            f"\nHeld requests: {clients} clients, each holding `GET /api/jobs/<id>?wait={wait:g}`"
            f" on a job still running (answered after {wait:g} s; at best {clients / wait:,.0f}"
            f" answered/s, p50 {wait * 1000:,.0f} ms):\n"
        )
        rows = [
            [
                SERVER_LABELS[r["server"]],
                fmt(r["rps"], 1),
                f"{r['rps'] * wait:,.0f}",
                fmt(r["p50_ms"]),
                fmt(r["p99_ms"]),
                fmt(r["errors"]),
            ]
            for r in io["held"]
        ]
        out.append(
            table(
                [
                    "server",
                    "answered/s",
                    "held at once (answered/s x wait)",
                    "p50 ms",
                    "p99 ms",
                    "errors",
                ],
                rows,
            )
        )
    jobs = results.get("jobs")
    if jobs and jobs.get("summary"):
        batch = opts["job_batch"]
        per_request = "one job per request" if batch == 1 else f"{batch} jobs per request"
        out.append(
            f"\n### 2. Jobs end to end: {opts['jobs']} jobs created by {opts['job_clients']} "
            f"clients ({per_request}), "
            f"io_wait_ms={opts['job_io_ms']}, cpu_iterations={opts['job_cpu']}; "
            f"{opts['celery_concurrency']} Celery children; median of {opts['runs']} runs\n"
        )
        ceiling = {c["broker"]: c["tasks_per_s"] for c in jobs.get("ceiling", [])}

        def share(target: str, done: float | None) -> str:
            broker = target.removeprefix("dyno, ").removesuffix(" broker")
            # pg+redis: the same Redis broker as redis, so the same ceiling.
            bare = ceiling.get(broker) or ceiling.get(broker.rpartition("+")[2])
            return f"{100 * done / bare:.0f}%" if done and bare else "-"

        rows = [
            [
                r["target"],
                fmt(r["jobs_per_s"]),
                share(r["target"], r["jobs_per_s"]),
                fmt(r["created_per_s"]),
                fmt(r["p50_ms"]),
                fmt(r["p99_ms"]),
                fmt(r["wall_seconds"], 1),
                fmt(r["failed"]),
            ]
            for r in jobs["summary"]
        ]
        rows += [
            [
                f"bare Celery, {c['broker']} broker (ceiling)",
                fmt(c["tasks_per_s"]),
                "100%",
                fmt(c["sent_per_s"]),
                "-",
                "-",
                "-",
                "-",
            ]
            for c in jobs.get("ceiling", [])
        ]
        out.append(
            table(
                [
                    "target",
                    "jobs/s done",
                    "of bare Celery",
                    "jobs/s created",
                    "p50 ms",
                    "p99 ms",
                    "wall s",
                    "failed",
                ],
                rows,
            )
        )
        if ceiling:
            out.append(
                "\nBare Celery: the same broker and settings (late acks, prefetch 1, the same "
                "children), an empty task, draining a backlog queued before the worker started "
                "(bench/ceiling.py); its 'created' column is the rate one producer queued them."
            )
        if any(r["target"].startswith("dyno, pg") for r in jobs["summary"]):
            out.append(
                "\ndb and redis: a SQLite database (the local default), the database itself or "
                "Redis as the broker; pg and pg+redis: the same on PostgreSQL, what Heroku "
                "and Dokku run."
            )
        for broker, profile in jobs.get("profiles", {}).items():
            if not profile.get("samples"):
                continue
            out.append(
                f"\nWhere the time went, {BROKER_LABELS.get(broker, broker)}: py-spy samples of "
                f"the dyno's whole tree over one more run ({profile['jobs_per_s']:,.0f} jobs/s; "
                f"{profile['samples']:,} samples over {profile['sampled_seconds']} s, the run "
                f"took {profile['run_seconds']} s), idle time left out (bench/profile.py):\n"
            )
            rows = [
                [s["role"], s["stage"], f"{100 * s['share']:.1f}%"]
                for s in profile["stages"]
                if s["share"] >= 0.005
            ]
            out.append(table(["process", "stage", "of samples"], rows, {2}))
        for note in jobs.get("notes", []):
            out.append(f"\nNote: {note}")
    memory = results.get("memory")
    if memory and memory.get("rows"):
        out.append(
            f"\n### 3. The dyno's memory: {memory['kind'].upper()} of the whole process tree "
            f"(bin/dyno and everything under it), against {DYNO_LIMIT_MB} MB\n"
        )
        dynos = list(dict.fromkeys(r["dyno"] for r in memory["rows"]))
        grouped = sorted(memory["rows"], key=lambda r: dynos.index(r["dyno"]))
        rows = [
            [
                r["dyno"],
                r["phase"],
                fmt(r["mb"], 1),
                str(r["processes"] or "-"),
                f"{100 * r['mb'] / DYNO_LIMIT_MB:.0f}%" if r["mb"] is not None else "-",
            ]
            for r in grouped
        ]
        out.append(
            table(["dyno", "phase", "MB", "processes", f"of {DYNO_LIMIT_MB} MB"], rows, {2, 3, 4})
        )
    cold = results.get("cold_start")
    if cold and cold.get("summary"):
        out.append(
            f"\n### 4. Cold start: bin/dyno started -> /healthz 200 "
            f"(median of {opts['cold_runs']})\n"
        )
        rows = [
            [
                BROKER_LABELS.get(r["broker"], r["broker"]),
                fmt(r["median_s"], 2),
                fmt(r["min_s"], 2),
                fmt(r["max_s"], 2),
            ]
            for r in cold["summary"]
        ]
        out.append(table(["broker", "median s", "min s", "max s"], rows))
    sizing = results.get("sizing")
    if sizing and (sizing.get("rows") or sizing.get("notes")):
        out.append(
            f"\n### 5. Sizing from the memory limit: bin/dyno with WEB_CONCURRENCY and "
            f"CELERY_CONCURRENCY auto, in a cgroup of each limit; io at {sizing['clients']} "
            f"clients for {opts['duration']:.0f} s, then {sizing['jobs']} jobs of "
            f"{sizing['job_io_ms']} ms I/O each; peak PSS of the tree under both, against "
            f"{sizing['target']:.0%} of the limit\n"
        )
        rows = [
            [
                f"{r['limit_mb']:,} MB",
                BROKER_LABELS.get(r["broker"], r["broker"]),
                f"{r['web']} + {r['celery']}",
                fmt(r["idle_mb"]),
                fmt(r["peak_mb"]),
                f"{100 * r['peak_mb'] / r['limit_mb']:.0f}%" if r["peak_mb"] else "-",
                fmt(r["cgroup_peak_mb"]),
                fmt(r["io_rps"]),
                fmt(r["io_p99_ms"]),
                fmt(r["jobs_per_s"], 1),
                f"{r['recycled']['web']} + {r['recycled']['celery']}",
                fmt(r["oom_kills"]),
            ]
            for r in sizing["rows"]
        ]
        if rows:
            out.append(
                table(
                    [
                        "limit",
                        "broker",
                        "web + Celery",
                        "idle MB",
                        "peak MB",
                        "of limit",
                        "cgroup peak MB",
                        "io req/s",
                        "io p99 ms",
                        "jobs/s",
                        "recycled",
                        "OOM kills",
                    ],
                    rows,
                    set(range(2, 12)),
                )
            )
        for note in sizing.get("notes", []):
            out.append(f"\nNote: {note}")
    return "\n".join(out) + "\n"


def write_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


# ---- plots ---------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.25,
            "font.size": 9.5,
        }
    )
    return plt


def plot_io(results: dict, path: Path) -> Path | None:
    io = results.get("io")
    if not io or not io.get("summary"):
        return None
    plt = _pyplot()
    rows = io["summary"]
    clients = sorted({r["clients"] for r in rows})
    servers = [s for s in SERVER_LABELS if any(r["server"] == s for r in rows)]
    fig, (ax_rps, ax_lat) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(servers)
    for i, server in enumerate(servers):
        by = {r["clients"]: r for r in rows if r["server"] == server}
        xs = [j + (i - (len(servers) - 1) / 2) * width for j in range(len(clients))]
        rps = [by.get(c, {}).get("rps") or 0 for c in clients]
        bars = ax_rps.bar(xs, rps, width, label=SERVER_LABELS[server], color=SERVER_COLOURS[server])
        ax_rps.bar_label(bars, labels=[f"{v:,.0f}" for v in rps], fontsize=8, padding=2)
        p50 = [by.get(c, {}).get("p50_ms") or math.nan for c in clients]
        p99 = [by.get(c, {}).get("p99_ms") or math.nan for c in clients]
        ax_lat.bar(
            xs, p50, width, color=SERVER_COLOURS[server], label=f"{SERVER_LABELS[server]} p50"
        )
        ax_lat.scatter(
            xs, p99, color=SERVER_COLOURS[server], marker="_", s=260, linewidths=2.5, zorder=3
        )
    upstream = results["meta"]["options"]["upstream_ms"]
    for ax in (ax_rps, ax_lat):
        ax.set_xticks(range(len(clients)), [f"{c} clients" for c in clients])
    ax_rps.set_ylabel("requests/s (higher is better)")
    ax_rps.set_title(f"Throughput, {upstream:.0f} ms upstream wait per request")
    ax_rps.set_ylim(0, ax_rps.get_ylim()[1] * 1.08)
    ax_lat.set_yscale("log")
    ax_lat.axhline(upstream, color="#444", lw=0.8, ls="--")
    ax_lat.text(
        len(clients) - 0.5, upstream * 1.05, f"{upstream:.0f} ms floor", ha="right", fontsize=8
    )
    ax_lat.set_ylabel("latency ms, log scale (bar p50, dash p99)")
    ax_lat.set_title("Latency")
    workers = results["meta"]["options"]["workers"]
    fig.suptitle(
        f"I/O-bound Django view, {workers} worker processes each, median of "
        f"{results['meta']['options']['runs']} runs",
        fontsize=11,
    )
    handles, labels = ax_rps.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(servers), frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_jobs(results: dict, path: Path) -> Path | None:
    jobs = results.get("jobs")
    if not jobs or not jobs.get("summary"):
        return None
    plt = _pyplot()
    rows = jobs["summary"]
    labels = [r["target"] for r in rows]
    fig, (ax_rate, ax_lat) = plt.subplots(1, 2, figsize=(11, 3.6))
    xs = range(len(rows))
    done = [r["jobs_per_s"] or 0 for r in rows]
    created = [r["created_per_s"] or 0 for r in rows]
    bars = ax_rate.bar(
        [x - 0.2 for x in xs], created, 0.4, label="created/s (HTTP)", color="#c792ea"
    )
    ax_rate.bar_label(bars, labels=[f"{v:,.0f}" for v in created], fontsize=8, padding=2)
    bars = ax_rate.bar([x + 0.2 for x in xs], done, 0.4, label="done/s (Celery)", color="#2f9e6e")
    ax_rate.bar_label(bars, labels=[f"{v:,.0f}" for v in done], fontsize=8, padding=2)
    ax_rate.set_xticks(list(xs), labels)
    ax_rate.set_ylabel("jobs/s")
    ax_rate.legend(frameon=False)
    ax_rate.set_title("Throughput")
    p50 = [(r["p50_ms"] or math.nan) / 1000 for r in rows]
    p99 = [(r["p99_ms"] or math.nan) / 1000 for r in rows]
    bars = ax_lat.bar([x - 0.2 for x in xs], p50, 0.4, label="p50", color="#4a7fd6")
    ax_lat.bar_label(bars, labels=[f"{v:,.1f} s" for v in p50], fontsize=8, padding=2)
    bars = ax_lat.bar([x + 0.2 for x in xs], p99, 0.4, label="p99", color="#f2b544")
    ax_lat.bar_label(bars, labels=[f"{v:,.1f} s" for v in p99], fontsize=8, padding=2)
    ax_lat.set_xticks(list(xs), labels)
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("create → done, seconds (log scale)")
    ax_lat.legend(frameon=False)
    ax_lat.set_title("Latency (server timestamps)")
    opts = results["meta"]["options"]
    fig.suptitle(
        f"{opts['jobs']} jobs end to end, {opts['job_clients']} HTTP clients, "
        f"median of {opts['runs']} runs",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_memory(results: dict, path: Path) -> Path | None:
    memory = results.get("memory")
    if not memory or not memory.get("timelines"):
        return None
    plt = _pyplot()
    timelines = memory["timelines"]
    fig, axes = plt.subplots(1, len(timelines), figsize=(11, 3.4), sharey=True, squeeze=False)
    top = max([DYNO_LIMIT_MB * 1.08] + [max(t["mb"]) * 1.1 for t in timelines if t["mb"]])
    for ax, timeline in zip(axes[0], timelines, strict=False):
        ax.fill_between(timeline["t"], timeline["mb"], color="#4a7fd6", alpha=0.25, lw=0)
        ax.plot(timeline["t"], timeline["mb"], color="#4a7fd6", lw=1.5)
        ax.axhline(DYNO_LIMIT_MB, color="#d64545", lw=1.2, ls="--")
        ax.text(
            0,
            DYNO_LIMIT_MB * 1.01,
            f"{DYNO_LIMIT_MB} MB dyno",
            color="#d64545",
            fontsize=8,
            va="bottom",
        )
        for moment, label in timeline["marks"]:
            ax.axvline(moment, color="#888", lw=0.6, ls=":")
            ax.text(
                moment,
                top * 0.03,
                label,
                rotation=90,
                fontsize=7,
                va="bottom",
                ha="right",
                color="#555",
            )
        ax.set_title(timeline["dyno"], fontsize=10)
        ax.set_xlabel("seconds since start")
        ax.set_ylim(0, top)
    axes[0][0].set_ylabel(f"{memory['kind'].upper()} of the process tree, MB")
    fig.suptitle(
        "The dyno's memory (bin/dyno, honcho, Gunicorn, Celery and their children)", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def render_all(results: dict, out: Path) -> tuple[str, list[Path]]:
    """Write results.md, results.json and the plots into out; return the text and plots."""
    text = render_tables(results)
    (out / "results.md").write_text(text)
    write_json(results, out / "results.json")
    plots = [
        plot_io(results, out / "io.png"),
        plot_jobs(results, out / "jobs.png"),
        plot_memory(results, out / "memory.png"),
    ]
    return text, [p for p in plots if p]


if __name__ == "__main__":
    # Re-render tables and plots from a results.json: python -m bench.report results.json
    import sys

    source = Path(sys.argv[1])
    text, plots = render_all(json.loads(source.read_text()), source.parent)
    print(text)
    print("plots:", ", ".join(str(p) for p in plots))
