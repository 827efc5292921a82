// The demo page: create many jobs with concurrent batched requests, then watch
// each one go queued -> running -> done by polling the changes feed by cursor.
// Plain JavaScript, no build step. window.doubleBoiler.summary() exposes what the
// page shows, so the browser test can compare it with the server's own view.
(() => {
  "use strict";

  const POLL_ACTIVE_MS = 250;
  const POLL_IDLE_MS = 2000;
  const RATE_WINDOW_MS = 2000;
  const SAMPLE_MS = 500;
  const BUFFER_LIMIT = 20000; // updates for ids whose create response is still on its way
  const MAX_TABLE_ROWS = 12;
  // "Results: a held request per job": GET /api/jobs/<id>?wait=25 answers when the job
  // finishes. A browser opens at most 6 HTTP/1.1 connections to one host, so on this
  // machine the page spreads them over loopback names (RFC 6761: *.localhost is loopback).
  const HOLD_WAIT_S = 25;
  const HOLD_HOSTS = 48;
  const LOOPBACK = ["127.0.0.1", "localhost", "[::1]"];

  // Rank orders a job's life; an update never moves a cell backwards (the
  // feed re-sends its last second of changes, and polls can cross).
  const RANK = { pending: 0, sending: 0, queued: 1, running: 2, done: 3, failed: 3, rejected: 3 };
  const PALETTE = [
    "#c792ea", "#4ea4ff", "#ff9e64", "#3fcf8e", "#f2b544", "#ff5f6d",
    "#7dcfff", "#e0af68", "#9ece6a", "#f7768e", "#bb9af7", "#2ac3de",
  ];

  const $ = (id) => document.getElementById(id);
  const root = $("demo");
  const css = getComputedStyle(document.documentElement);
  const colour = (name) => css.getPropertyValue(`--${name}`).trim();
  const STATE_COLOURS = {
    pending: colour("pending"), sending: colour("sending"), queued: colour("queued"),
    running: colour("running"), done: colour("done"), failed: colour("failed"),
    rejected: "#7a2e3a",
  };

  // ---- shared state -------------------------------------------------------
  const state = {
    cursor: JSON.parse($("demo-cursor").textContent),
    run: null,
    pollTimer: null,
    polling: false,
    buffer: new Map(),
    web: new Map(), // pid -> {requests, created, peak}
    workers: new Map(), // pid -> {running, done, busyMs}
    pidColours: { web: new Map(), worker: new Map() },
    requests: 0,
    clientInflight: 0,
    clientPeak: 0,
    inflightLast: 0,
    inflightPeak: 0,
    inflightWindowPeak: 0,
    pollErrors: 0,
    colourBy: "state",
  };

  function pidColour(kind, pid) {
    const map = state.pidColours[kind];
    if (!map.has(pid)) map.set(pid, PALETTE[(map.size + (kind === "worker" ? 4 : 0)) % PALETTE.length]);
    return map.get(pid);
  }

  // Server timestamps are ISO 8601 with microseconds; Date.parse keeps only
  // milliseconds, so add the rest back to agree with the server to the microsecond.
  function isoMs(text) {
    if (!text) return null;
    const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(text);
    if (!match) return Date.parse(text);
    const fraction = (match[2] || "").padEnd(6, "0").slice(0, 6);
    return Date.parse(match[1] + (match[3] || "Z")) + Number(fraction) / 1000;
  }

  // Nearest-rank percentile of a sorted array.
  function percentile(sorted, p) {
    if (!sorted.length) return null;
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
  }

  // ---- HTTP -------------------------------------------------------------------
  function noteResponse(response, kind, created) {
    state.requests += 1;
    const pid = Number(response.headers.get("X-Web-Pid"));
    const inflight = Number(response.headers.get("X-Web-Inflight"));
    if (!pid) return;
    let web = state.web.get(pid);
    if (!web) {
      web = { requests: 0, created: 0, peak: 0 };
      state.web.set(pid, web);
      pidColour("web", pid);
    }
    web.requests += 1;
    web.created += created;
    if (Number.isFinite(inflight)) {
      web.peak = Math.max(web.peak, inflight);
      state.inflightLast = inflight;
      state.inflightPeak = Math.max(state.inflightPeak, inflight);
      state.inflightWindowPeak = Math.max(state.inflightWindowPeak, inflight);
    }
    if (kind === "create" && state.run) state.run.webPids.push(pid);
  }

  function holdUrl(id, index) {
    const path = `api/jobs/${id}?wait=${HOLD_WAIT_S}`;
    if (!LOOPBACK.includes(location.hostname)) return path; // HTTP/2 multiplexes them
    return `${location.protocol}//h${index % HOLD_HOSTS}.localhost:${location.port}/${path}`;
  }

  // One held request per job until it is done or failed (asked again after each wait).
  // A browser that cannot reach the *.localhost names falls back to this page's own host.
  async function holdFor(run, id, index) {
    let url = holdUrl(id, index);
    for (;;) {
      let outcome;
      try {
        outcome = await request(url, { mode: "cors" }, "hold");
      } catch {
        outcome = { status: 0, body: null };
      }
      if (outcome.status === 200 && outcome.body) apply(outcome.body);
      const known = run.jobs.get(id);
      if (state.run !== run || known.status === "done" || known.status === "failed") return;
      if (outcome.status === 200) continue;
      if (outcome.status === 0) url = holdUrl(id, index).replace(/^.*?\/api\//, "api/");
      await new Promise((resolve) => { setTimeout(resolve, 1000); });
    }
  }

  async function request(url, options, kind, created = 0) {
    state.clientInflight += 1;
    state.clientPeak = Math.max(state.clientPeak, state.clientInflight);
    try {
      const response = await fetch(url, { cache: "no-store", ...options });
      let body = null;
      try {
        body = await response.json();
      } catch {
        body = null;
      }
      noteResponse(response, kind, response.status === 202 ? created : 0);
      return {
        status: response.status,
        body,
        pid: Number(response.headers.get("X-Web-Pid")),
        retryAfter: Number(response.headers.get("Retry-After")),
      };
    } finally {
      state.clientInflight -= 1;
    }
  }

  // ---- a run --------------------------------------------------------------------
  function newRun(settings) {
    const total = settings.jobs;
    return {
      ...settings,
      total,
      status: new Array(total).fill("pending"),
      ids: new Array(total).fill(null),
      slotOf: new Map(),
      jobs: new Map(), // id -> {status, attempts, webPid, workerPid, created, started, finished}
      counts: { pending: total, sending: 0, queued: 0, running: 0, done: 0, failed: 0, rejected: 0 },
      throttled: 0, // 429 answers: the page waited Retry-After and sent again
      nextSlot: 0,
      submitted: 0,
      stopped: false,
      submitting: true,
      latencies: [],
      firstCreated: null,
      lastFinished: null,
      startedAt: performance.now(),
      lastAckAt: null,
      finishedAt: null,
      submitEvents: [],
      doneEvents: [],
      timeline: [],
      webPids: [],
      dirty: new Set(),
      fullRedraw: true,
    };
  }

  function setSlot(run, slot, status) {
    const previous = run.status[slot];
    if (previous === status) return;
    run.counts[previous] -= 1;
    run.counts[status] += 1;
    run.status[slot] = status;
    run.dirty.add(slot);
  }

  function register(run, slot, id, webPid) {
    run.ids[slot] = id;
    run.slotOf.set(id, slot);
    run.jobs.set(id, { status: "queued", attempts: 0, webPid, workerPid: null });
    setSlot(run, slot, "queued");
    const early = state.buffer.get(id);
    if (early) {
      state.buffer.delete(id);
      apply(early);
    }
  }

  async function submitter(run) {
    while (!run.stopped && run.nextSlot < run.total) {
      const start = run.nextSlot;
      const count = Math.min(run.batch, run.total - start);
      run.nextSlot += count;
      for (let slot = start; slot < start + count; slot += 1) setSlot(run, slot, "sending");
      let outcome;
      for (;;) {
        try {
          outcome = await request(
            "api/jobs/batch",
            {
              method: "POST",
              headers: { "Content-Type": "application/json" },
              body: JSON.stringify({
                count, io_wait_ms: run.io_wait_ms, cpu_iterations: run.cpu_iterations,
              }),
            },
            "create",
            count,
          );
        } catch (error) {
          outcome = { status: 0, body: null, error };
        }
        // 429: the server's limits (backlog, this address's share, rate). Wait as
        // told, then send the same batch again; the page says why it waits.
        if (outcome.status !== 429 || run.stopped) break;
        run.throttled += 1;
        const wait = Number.isFinite(outcome.retryAfter) && outcome.retryAfter > 0
          ? outcome.retryAfter : 1;
        showThrottle(outcome.body, wait, run.throttled);
        await new Promise((resolve) => { setTimeout(resolve, wait * 1000); });
        if (run.stopped) break;
      }
      if (outcome.status === 202) $("throttle").hidden = true;
      const ids = outcome.body && Array.isArray(outcome.body.ids) ? outcome.body.ids : null;
      // 503 with ids: the jobs are recorded and the worker queues them when it can.
      if ((outcome.status === 202 || outcome.status === 503) && ids && ids.length === count) {
        const now = performance.now();
        ids.forEach((id, offset) => register(run, start + offset, id, outcome.pid));
        if (run.results === "hold") ids.forEach((id, offset) => holdFor(run, id, start + offset));
        run.submitted += count;
        run.lastAckAt = now;
        run.submitEvents.push([now, count]);
      } else {
        for (let slot = start; slot < start + count; slot += 1) setSlot(run, slot, "rejected");
      }
    }
  }

  function showThrottle(body, wait, times) {
    const box = $("throttle");
    const why = body && body.error ? body.error : "the server asked this page to slow down";
    box.textContent = `Throttled by the server (${times}×): ${why}. `
      + `Sending again in ${wait} s.`;
    box.hidden = false;
  }

  async function startRun(settings) {
    state.buffer.clear();
    state.web.clear();
    state.workers.clear();
    state.pidColours.web.clear();
    state.pidColours.worker.clear();
    state.requests = 0;
    state.clientPeak = 0;
    state.inflightPeak = 0;
    state.inflightLast = 0;
    const run = newRun(settings);
    state.run = run;
    root.dataset.runState = "running";
    $("banner").hidden = true;
    $("throttle").hidden = true;
    $("start").disabled = true;
    $("stop").disabled = false;
    layoutGrid();
    recordSample(run); // the chart starts at zero
    schedulePoll(0);
    const submitters = [];
    for (let i = 0; i < Math.min(run.parallel, Math.ceil(run.total / run.batch)); i += 1) {
      submitters.push(submitter(run));
    }
    await Promise.all(submitters);
    run.submitting = false;
    // Cells never sent (Stop) leave the run.
    for (let slot = run.nextSlot; slot < run.total; slot += 1) run.status[slot] = "skipped";
    run.counts.pending = 0;
    run.fullRedraw = true;
    $("stop").disabled = true;
    checkFinished(run);
  }

  function checkFinished(run) {
    if (run.submitting || run.finishedAt !== null) return;
    const open = run.counts.sending + run.counts.queued + run.counts.running;
    if (open > 0) return;
    recordSample(run); // the last point, however short the run
    run.finishedAt = performance.now();
    root.dataset.runState = "finished";
    $("start").disabled = false;
    const seconds = ((run.finishedAt - run.startedAt) / 1000).toFixed(1);
    const banner = $("banner");
    banner.textContent = `${run.counts.done} of ${run.submitted} jobs done in ${seconds} s`
      + (run.counts.failed ? ` · ${run.counts.failed} failed` : "")
      + (run.throttled ? ` · throttled ${run.throttled}× by the server's limits` : "");
    banner.hidden = false;
    renderCounters();
    drawChart();
    checkHealth();
  }

  // ---- the changes feed -------------------------------------------------------------
  function apply(job) {
    const run = state.run;
    if (!run) return;
    const slot = run.slotOf.get(job.id);
    if (slot === undefined) {
      // Possibly one of ours whose create response has not arrived yet.
      if (run.submitting) {
        const held = state.buffer.get(job.id);
        if (!held || RANK[job.status] >= RANK[held.status]) state.buffer.set(job.id, job);
        if (state.buffer.size > BUFFER_LIMIT) state.buffer.delete(state.buffer.keys().next().value);
      }
      return;
    }
    const known = run.jobs.get(job.id);
    if (RANK[job.status] < RANK[known.status]) return;
    if (job.status === known.status && job.attempts === known.attempts) return;
    const now = performance.now();
    if (known.status === "running" && known.workerPid !== null) {
      const worker = state.workers.get(known.workerPid);
      if (worker) worker.running -= 1;
    }
    known.status = job.status;
    known.attempts = job.attempts;
    known.webPid = job.web_pid ?? known.webPid;
    known.workerPid = job.worker_pid ?? null;
    known.created = isoMs(job.created_at);
    known.started = isoMs(job.started_at);
    known.finished = isoMs(job.finished_at);
    let worker = null;
    if (known.workerPid !== null) {
      worker = state.workers.get(known.workerPid);
      if (!worker) {
        worker = { running: 0, done: 0, failed: 0, busyMs: 0 };
        state.workers.set(known.workerPid, worker);
        pidColour("worker", known.workerPid);
      }
    }
    if (job.status === "running" && worker) worker.running += 1;
    if ((job.status === "done" || job.status === "failed") && known.finished !== null) {
      if (worker) {
        worker[job.status] += 1;
        if (known.started !== null) worker.busyMs += known.finished - known.started;
      }
      if (job.status === "done") run.latencies.push(known.finished - known.created);
      run.firstCreated = Math.min(run.firstCreated ?? Infinity, known.created);
      run.lastFinished = Math.max(run.lastFinished ?? -Infinity, known.finished);
      run.doneEvents.push(now);
    }
    setSlot(run, slot, job.status);
  }

  async function poll() {
    state.pollTimer = null;
    if (state.polling) return;
    state.polling = true;
    let more = false;
    try {
      const outcome = await request(`api/jobs?since=${encodeURIComponent(state.cursor)}`, {}, "poll");
      if (outcome.status === 200 && outcome.body) {
        outcome.body.jobs.forEach(apply);
        state.cursor = outcome.body.cursor;
        more = Boolean(outcome.body.more);
      } else {
        state.pollErrors += 1;
      }
    } catch {
      state.pollErrors += 1;
    } finally {
      state.polling = false;
    }
    if (state.run) checkFinished(state.run);
    const active = state.run && state.run.finishedAt === null;
    schedulePoll(more ? 0 : active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
  }

  function schedulePoll(delay) {
    if (state.pollTimer !== null) clearTimeout(state.pollTimer);
    state.pollTimer = setTimeout(poll, delay);
  }

  // ---- health strip -------------------------------------------------------------------
  async function checkHealth() {
    const box = $("health");
    try {
      const outcome = await request("healthz", {}, "health");
      const checks = outcome.body && outcome.body.checks;
      if (!checks) throw new Error(`HTTP ${outcome.status}`);
      const workers = checks.workers || {};
      const pools = Object.values(workers.pids || {}).map((p) => p.pool.length);
      const children = pools.length ? ` · ${pools.reduce((a, b) => a + b, 0)} Celery children` : "";
      const klass = (checks.web.worker_class || "").split(".").pop();
      const kind = { GeventWorker: "gevent", SyncWorker: "sync", ThreadWorker: "gthread" }[klass];
      if (kind) $("web-class").textContent = `Gunicorn · ${kind}`;
      box.className = `health ${outcome.status === 200 ? "ok" : "fail"}`;
      $("health-text").textContent = outcome.status === 200
        ? `healthy · ${klass}${children} · ${checks.broker.transport ? "broker " + String(checks.broker.transport).split(":").pop() : ""}`
        : `unhealthy: ${(outcome.body.failing || []).join(", ")}`;
    } catch (error) {
      box.className = "health fail";
      $("health-text").textContent = `/healthz unreachable (${error.message})`;
    }
  }

  // ---- scheduled tasks -------------------------------------------------------------
  const SCHEDULE_MS = 2000;
  const RUNS_SHOWN = 4;
  state.schedule = null;

  function clock(iso) {
    return iso ? new Date(iso).toISOString().slice(11, 19) : "–";
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  }

  function describeSchedule(schedule) {
    if (schedule.kind === "interval") return `every ${schedule.every_seconds} s`;
    if (schedule.kind === "crontab") return `cron ${schedule.crontab}`;
    return schedule.kind;
  }

  function renderSchedule(answer) {
    const rows = answer.tasks.map((task) => {
      const runs = task.last_runs.slice(0, RUNS_SHOWN).map((run) => {
        const by = `${run.dispatched_by.dyno}/${run.dispatched_by.pid}`;
        const ran = run.run_by ? ` → ${run.run_by.dyno}/${run.run_by.pid}` : "";
        return `<span class="tick ${run.outcome}">${clock(run.due_at)} · ${escapeHtml(by + ran)} · ${run.outcome}</span>`;
      });
      const catchUp = task.catch_up ? " · catches up" : "";
      return `<tr data-task="${escapeHtml(task.name)}"><td>${escapeHtml(task.name)} <span class="muted">${escapeHtml(task.task)}</span></td>`
        + `<td>${escapeHtml(describeSchedule(task.schedule))}${catchUp}</td><td>${clock(task.next_due_at)}</td>`
        + `<td class="runs">${runs.join("") || '<span class="muted">no run yet</span>'}</td></tr>`;
    });
    const body = $("schedule-table");
    const html = rows.join("") || '<tr class="empty"><td colspan="4">no periodic task</td></tr>';
    if (body.dataset.html !== html) {
      body.innerHTML = html;
      body.dataset.html = html;
    }
    const beats = answer.schedulers.map((beat) => `${beat.dyno}/${beat.pid}`);
    $("schedule-summary").textContent = beats.length
      ? `live beats: ${beats.join(", ")}`
      : answer.beat_in_worker ? "no live beat seen" : "beat off: Heroku Scheduler dispatches";
  }

  async function checkSchedule() {
    // Not through request(): the page's counters are about jobs.
    try {
      const response = await fetch("api/schedule?runs=" + RUNS_SHOWN, { cache: "no-store" });
      if (response.ok) {
        state.schedule = await response.json();
        renderSchedule(state.schedule);
      }
    } catch {
      $("schedule-summary").textContent = "/api/schedule unreachable";
    }
  }

  // ---- drawing: the grid -----------------------------------------------------------------
  const grid = { canvas: $("grid"), cell: 10, gap: 1, cols: 1, dpr: 1 };

  function layoutGrid() {
    const run = state.run;
    const total = run ? run.total : 500;
    const width = grid.canvas.parentElement.clientWidth;
    const targetHeight = 300;
    let cell = Math.floor(Math.sqrt((width * targetHeight) / total));
    cell = Math.max(3, Math.min(26, cell));
    grid.cell = cell;
    grid.gap = cell >= 7 ? 2 : cell >= 4 ? 1 : 0;
    grid.cols = Math.max(1, Math.floor(width / cell));
    const rows = Math.ceil(total / grid.cols);
    grid.dpr = window.devicePixelRatio || 1;
    grid.canvas.width = Math.floor(width * grid.dpr);
    grid.canvas.height = Math.floor(rows * cell * grid.dpr);
    grid.canvas.style.height = `${rows * cell}px`;
    if (run) run.fullRedraw = true;
    else drawEmptyGrid(total);
  }

  function drawEmptyGrid(total) {
    const ctx = grid.canvas.getContext("2d");
    ctx.setTransform(grid.dpr, 0, 0, grid.dpr, 0, 0);
    ctx.clearRect(0, 0, grid.canvas.width, grid.canvas.height);
    ctx.fillStyle = STATE_COLOURS.pending;
    for (let slot = 0; slot < total; slot += 1) drawCellAt(ctx, slot);
  }

  function drawCellAt(ctx, slot) {
    const x = (slot % grid.cols) * grid.cell;
    const y = Math.floor(slot / grid.cols) * grid.cell;
    const size = grid.cell - grid.gap;
    if (grid.gap >= 2) {
      ctx.beginPath();
      ctx.roundRect(x, y, size, size, Math.min(3, size / 4));
      ctx.fill();
    } else {
      ctx.fillRect(x, y, size, size);
    }
  }

  function cellColour(run, slot) {
    const status = run.status[slot];
    if (status === "skipped") return null;
    if (state.colourBy === "state" || RANK[status] === 0 || status === "rejected") {
      return STATE_COLOURS[status];
    }
    const job = run.jobs.get(run.ids[slot]);
    if (!job) return STATE_COLOURS[status];
    if (state.colourBy === "web") return pidColour("web", job.webPid);
    if (job.workerPid === null) return STATE_COLOURS.pending;
    const base = pidColour("worker", job.workerPid);
    return status === "running" ? `${base}99` : base;
  }

  function drawGrid() {
    const run = state.run;
    if (!run) return;
    const ctx = grid.canvas.getContext("2d");
    ctx.setTransform(grid.dpr, 0, 0, grid.dpr, 0, 0);
    let slots = run.dirty;
    if (run.fullRedraw) {
      ctx.clearRect(0, 0, grid.canvas.width, grid.canvas.height);
      slots = run.status.keys();
      run.fullRedraw = false;
    }
    for (const slot of slots) {
      const x = (slot % grid.cols) * grid.cell;
      const y = Math.floor(slot / grid.cols) * grid.cell;
      ctx.clearRect(x, y, grid.cell, grid.cell);
      const fill = cellColour(run, slot);
      if (fill === null) continue;
      ctx.fillStyle = fill;
      drawCellAt(ctx, slot);
    }
    run.dirty = new Set();
  }

  function drawLegend() {
    const legend = $("legend");
    const items = [];
    if (state.colourBy === "state") {
      for (const name of ["pending", "sending", "queued", "running", "done", "failed"]) {
        items.push([STATE_COLOURS[name], name]);
      }
    } else {
      const kind = state.colourBy;
      for (const [pid, c] of state.pidColours[kind]) {
        items.push([c, `${kind === "web" ? "web worker" : "Celery child"} ${pid}`]);
      }
      if (!items.length) items.push([STATE_COLOURS.pending, "no processes seen yet"]);
    }
    legend.replaceChildren(...items.map(([c, text]) => {
      const span = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.className = "swatch";
      swatch.style.setProperty("--c", c);
      span.append(swatch, text);
      return span;
    }));
  }

  // ---- drawing: the throughput chart ------------------------------------------------------
  const chart = { canvas: $("chart") };

  // The smallest 1, 2 or 5 times a power of ten that is at least value/4, times 4:
  // four gridlines at round numbers.
  function niceCeiling(value) {
    const rough = value / 4;
    const power = 10 ** Math.floor(Math.log10(rough));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough);
    return step * 4;
  }

  function drawChart() {
    const run = state.run;
    const canvas = chart.canvas;
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = 200;
    if (canvas.width !== Math.floor(width * dpr)) {
      canvas.width = Math.floor(width * dpr);
      canvas.height = Math.floor(height * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const pad = { left: 40, right: 10, top: 10, bottom: 22 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const points = run ? run.timeline : [];
    const span = Math.max(10, points.length ? points[points.length - 1].t : 0);
    const maxRate = niceCeiling(Math.max(10, ...points.map((p) => Math.max(p.submitRate, p.doneRate))));
    const maxBacklog = Math.max(1, ...points.map((p) => p.backlog));
    const x = (t) => pad.left + (t / span) * plotW;
    const y = (v, max) => pad.top + plotH - (v / max) * plotH;

    ctx.strokeStyle = "#252c42";
    ctx.fillStyle = "#8a93ab";
    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i += 1) {
      const value = (maxRate * i) / 4;
      const yy = Math.round(y(value, maxRate)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.left, yy);
      ctx.lineTo(width - pad.right, yy);
      ctx.stroke();
      ctx.textAlign = "right";
      ctx.fillText(Number.isInteger(value) ? String(value) : value.toFixed(1), pad.left - 6, yy + 4);
    }
    ctx.textAlign = "center";
    const step = span > 60 ? 10 : span > 20 ? 5 : 2;
    for (let t = 0; t <= span; t += step) ctx.fillText(`${t}s`, x(t), height - 6);
    if (!points.length) return;

    ctx.beginPath();
    ctx.moveTo(x(points[0].t), y(0, maxBacklog));
    for (const p of points) ctx.lineTo(x(p.t), y(p.backlog, maxBacklog));
    ctx.lineTo(x(points[points.length - 1].t), y(0, maxBacklog));
    ctx.closePath();
    ctx.fillStyle = `${STATE_COLOURS.queued}22`;
    ctx.fill();
    ctx.strokeStyle = `${STATE_COLOURS.queued}aa`;
    ctx.lineWidth = 1;
    // The backlog has its own scale: say what its top is.
    ctx.fillStyle = STATE_COLOURS.queued;
    ctx.textAlign = "right";
    ctx.fillText(`backlog top: ${maxBacklog} jobs`, width - pad.right, pad.top + 10);
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(p.t), y(p.backlog, maxBacklog)));
    ctx.stroke();

    for (const [key, c] of [["submitRate", colour("submitted")], ["doneRate", STATE_COLOURS.done]]) {
      ctx.beginPath();
      points.forEach((p, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(p.t), y(p[key], maxRate)));
      ctx.strokeStyle = c;
      ctx.lineWidth = 2;
      ctx.stroke();
    }
  }

  // ---- counters and tables ----------------------------------------------------------------
  function rate(events, now) {
    let count = 0;
    for (let i = events.length - 1; i >= 0; i -= 1) {
      const [t, n] = Array.isArray(events[i]) ? events[i] : [events[i], 1];
      if (now - t > RATE_WINDOW_MS) break;
      count += n;
    }
    return count / (RATE_WINDOW_MS / 1000);
  }

  const fmtMs = (ms) => (ms === null ? "–" : ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
  const fmtRate = (r) => (r >= 100 ? r.toFixed(0) : r.toFixed(1));

  function setText(id, text) {
    const node = $(id);
    const value = String(text);
    if (node.textContent !== value) node.textContent = value;
  }

  function summary() {
    const run = state.run;
    if (!run) return null;
    const sorted = [...run.latencies].sort((a, b) => a - b);
    const byWorker = {};
    const byWeb = {};
    for (const job of run.jobs.values()) {
      byWeb[job.webPid] = (byWeb[job.webPid] || 0) + 1;
      if (job.status === "done") byWorker[job.workerPid] = (byWorker[job.workerPid] || 0) + 1;
    }
    const serverSeconds = run.lastFinished !== null ? (run.lastFinished - run.firstCreated) / 1000 : null;
    const ackSeconds = run.lastAckAt !== null ? (run.lastAckAt - run.startedAt) / 1000 : null;
    return {
      state: root.dataset.runState,
      total: run.total,
      submitted: run.submitted,
      ids: run.ids.filter((id) => id !== null),
      counts: { ...run.counts },
      throttled: run.throttled,
      latencyMs: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99) },
      doneByWorkerPid: byWorker,
      createdByWebPid: byWeb,
      submitRateOverall: ackSeconds ? run.submitted / ackSeconds : null,
      doneRateOverall: serverSeconds ? run.counts.done / serverSeconds : null,
      inflightPeak: state.inflightPeak,
      clientPeak: state.clientPeak,
      requests: state.requests,
      pollErrors: state.pollErrors,
    };
  }

  function renderTables() {
    const webRows = [...state.web.entries()]
      .sort((a, b) => b[1].requests - a[1].requests)
      .slice(0, MAX_TABLE_ROWS)
      .map(([pid, w]) => [pid, "web", [w.requests, w.created, w.peak]]);
    const workerRows = [...state.workers.entries()]
      .sort((a, b) => b[1].done + b[1].running - (a[1].done + a[1].running))
      .slice(0, MAX_TABLE_ROWS)
      .map(([pid, w]) => [pid, "worker", [w.running, w.done, fmtMs(w.done + w.failed ? w.busyMs / (w.done + w.failed) : null)]]);
    fillTable("web-table", webRows, "no requests yet");
    fillTable("worker-table", workerRows, "no jobs run yet");
  }

  function fillTable(id, rows, emptyText) {
    const body = $(id);
    const html = rows.length
      ? rows.map(([pid, kind, cells]) => `<tr><td><i class="swatch" style="--c:${pidColour(kind, pid)}"></i>${pid}</td>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")
      : `<tr class="empty"><td colspan="4">${emptyText}</td></tr>`;
    if (body.dataset.html !== html) {
      body.innerHTML = html;
      body.dataset.html = html;
    }
  }

  function renderCounters() {
    const run = state.run;
    const now = performance.now();
    setText("stat-requests", state.requests);
    setText("stat-client-inflight", state.clientInflight);
    setText("stat-client-peak", state.clientPeak);
    setText("stat-inflight-peak", state.inflightPeak);
    setText("stat-inflight-last", state.inflightLast);
    if (!run) return;
    const s = summary();
    setText("stat-submitted", run.submitted);
    setText("stat-total", run.total);
    setText("stat-queued", run.counts.queued);
    setText("stat-running", run.counts.running);
    setText("stat-busy-children", [...state.workers.values()].filter((w) => w.running > 0).length);
    setText("stat-done", run.counts.done);
    setText("stat-failed", run.counts.failed);
    setText("stat-rejected", run.counts.rejected);
    setText("stat-submit-rate", fmtRate(rate(run.submitEvents, now)));
    setText("stat-done-rate", fmtRate(rate(run.doneEvents, now)));
    setText("stat-submit-overall", s.submitRateOverall ? `${fmtRate(s.submitRateOverall)}/s` : "–");
    setText("stat-done-overall", s.doneRateOverall ? `${fmtRate(s.doneRateOverall)}/s` : "–");
    setText("stat-p50", fmtMs(s.latencyMs.p50));
    setText("stat-p90", fmtMs(s.latencyMs.p90));
    setText("stat-p99", fmtMs(s.latencyMs.p99));
    const elapsed = ((run.finishedAt ?? now) - run.startedAt) / 1000;
    setText("run-summary", `${run.total} jobs · ${elapsed.toFixed(1)} s · ${state.web.size} web workers · ${state.workers.size} Celery children`);
    renderTables();
  }

  function recordSample(run) {
    const now = performance.now();
    run.timeline.push({
      t: (now - run.startedAt) / 1000,
      submitRate: rate(run.submitEvents, now),
      doneRate: rate(run.doneEvents, now),
      backlog: run.counts.queued + run.counts.running,
      inflight: state.inflightWindowPeak,
    });
    state.inflightWindowPeak = 0;
  }

  function sample() {
    const run = state.run;
    if (run && run.finishedAt === null) recordSample(run);
    renderCounters();
    drawChart();
    drawLegend();
  }

  function frame() {
    drawGrid();
    requestAnimationFrame(frame);
  }

  // ---- tooltip ------------------------------------------------------------------------------
  grid.canvas.addEventListener("mousemove", (event) => {
    const run = state.run;
    const tip = $("tooltip");
    const box = grid.canvas.getBoundingClientRect();
    const col = Math.floor((event.clientX - box.left) / grid.cell);
    const row = Math.floor((event.clientY - box.top) / grid.cell);
    const slot = row * grid.cols + col;
    if (!run || col >= grid.cols || slot >= run.total || run.ids[slot] === null) {
      tip.hidden = true;
      return;
    }
    const id = run.ids[slot];
    const job = run.jobs.get(id);
    const latency = job.finished ? ` · ${fmtMs(job.finished - job.created)}` : "";
    tip.textContent = `job ${id} · ${job.status}${latency} · web ${job.webPid} · child ${job.workerPid ?? "–"}`;
    tip.style.left = `${event.clientX - box.left + 12}px`;
    tip.style.top = `${event.clientY - box.top + 12}px`;
    tip.hidden = false;
  });
  grid.canvas.addEventListener("mouseleave", () => {
    $("tooltip").hidden = true;
  });

  // ---- wiring ---------------------------------------------------------------------------------
  $("controls").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    if (!form.reportValidity()) return;
    const value = (name) => Math.round(Number(form.elements[name].value));
    startRun({
      jobs: value("jobs"),
      batch: value("batch"),
      parallel: value("parallel"),
      io_wait_ms: value("io_wait_ms"),
      cpu_iterations: value("cpu_iterations"),
      results: form.elements.results.value,
    });
  });
  $("stop").addEventListener("click", () => {
    if (state.run) state.run.stopped = true;
    $("stop").disabled = true;
  });
  for (const radio of document.querySelectorAll("input[name=colour]")) {
    radio.addEventListener("change", () => {
      state.colourBy = radio.value;
      if (state.run) state.run.fullRedraw = true;
      drawLegend();
    });
  }
  window.addEventListener("resize", () => layoutGrid());

  window.doubleBoiler = { summary, state };
  layoutGrid();
  drawLegend();
  checkHealth();
  checkSchedule();
  setInterval(checkSchedule, SCHEDULE_MS);
  schedulePoll(0);
  setInterval(sample, SAMPLE_MS);
  requestAnimationFrame(frame);
})();
