// The study monitor's page (docs/monitor.md): asks the REST API every
// REFRESH_MS (the cookie set by the printed URL carries the token) and redraws.
// A finished study (status.live false) is drawn once.
"use strict";
const REFRESH_MS = 1500;
const COLORS = { pending: "#b0b0b0", running: "#3b7dd8", completed: "#3aa655", failed: "#d33",
                 cancelled: "#e69a28", proposal: "#d33", uniform: "#3b7dd8", design: "#999" };
const state = { lastStep: -1, rows: [], steps: [], status: null, refreshes: 0, live: true,
                jobFilter: "", jobs: [], breed: null };
window.melissaMonitor = state;  // for the tests and the curious

const $ = (id) => document.getElementById(id);

async function api(path, options) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  let body = null;
  try { body = await r.json(); } catch (e) { body = { ok: false, error: "HTTP " + r.status }; }
  body.httpStatus = r.status;
  return body;
}

function fmt(v, digits) {
  if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(digits || 3);
  return v.toFixed(digits === undefined ? 2 : digits);
}

function chart(id, type, datasets, opts) {
  const o = opts || {};
  return new Chart($(id), {
    type: type,
    data: { labels: o.labels || [], datasets: datasets },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: o.parsing !== false ? undefined : false,
      plugins: { legend: { display: datasets.length > 1, labels: { boxWidth: 12 } } },
      scales: {
        x: Object.assign({ type: o.xType || "linear", title: { display: !!o.xTitle, text: o.xTitle } }, o.x || {}),
        y: Object.assign({ type: o.yType || "linear", title: { display: !!o.yTitle, text: o.yTitle } }, o.y || {}),
      },
      elements: { point: { radius: o.pointRadius === undefined ? 0 : o.pointRadius } },
    },
  });
}

const line = (label, color, extra) => Object.assign({ label: label, data: [], borderColor: color,
  backgroundColor: color, borderWidth: 1.5 }, extra || {});

const charts = {
  jobs: chart("chart-jobs", "line",
    ["pending", "running", "completed", "failed", "cancelled"].map((s) =>
      line(s, COLORS[s], { fill: true, backgroundColor: COLORS[s] + "99" })),
    { xTitle: "seconds since the start", y: { stacked: true, beginAtZero: true } }),
  steps: chart("chart-steps", "line", [line("steps/s", "#3b7dd8")],
    { xTitle: "seconds since the start", y: { beginAtZero: true } }),
  loss: chart("chart-loss", "line",
    [line("training loss", "#3b7dd8"), line("validation loss", "#d33", { pointRadius: 2 })],
    { xTitle: "samples seen", yType: "logarithmic" }),
  samples: chart("chart-samples", "line", [line("samples/s", "#3aa655")],
    { xTitle: "samples seen", y: { beginAtZero: true } }),
  buffer: chart("chart-buffer", "line", [line("population", "#3b7dd8"), line("unseen", "#e69a28")],
    { xTitle: "samples seen", y: { beginAtZero: true } }),
  repetitions: chart("chart-repetitions", "bar", [line("samples", "#7a5bd0")],
    { xType: "category", xTitle: "times drawn", y: { beginAtZero: true } }),
  breed: chart("chart-breed", "scatter",
    ["proposal", "uniform", "design"].map((o) => line(o, COLORS[o])), { pointRadius: 3 }),
};

function setText(id, v, digits) {
  const el = $(id);
  if (el) el.textContent = fmt(v, digits);
}

function renderStatus(s) {
  state.status = s;
  state.live = s.live !== false;
  setText("st-study", s.study);
  $("st-state").textContent = s.state + (state.live ? "" : " (finished)");
  $("st-paused").hidden = !s.paused;
  setText("st-elapsed_s", s.elapsed_s, 1);
  const sims = s.simulations || {};
  for (const k of ["requested", "completed", "running", "pending", "failed", "retries"]) setText("st-" + k, sims[k]);
  setText("st-steps_stored", s.steps_stored);
  setText("st-steps_per_s", s.steps_per_s, 1);
  setText("st-job_limit", s.job_limit);
  if (document.activeElement !== $("job-limit")) $("job-limit").value = s.job_limit;
  const banner = $("banner");
  if (s.training_tail) {
    const t = s.training || {};
    banner.textContent = "Every simulation has ended: the study is in its training tail (" +
      fmt(t.batches) + " batches, loss " + fmt(t.train_loss, 4) + ", " + fmt(t.samples_per_s, 1) + " samples/s).";
    banner.hidden = false;
  } else if (!state.live) {
    banner.textContent = "This study has ended (" + s.state + ", exit " + s.exit_code + "): " + (s.message || "");
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  $("controls").hidden = !state.live;
  if (state.live && s.elapsed_s !== undefined) {
    state.steps.push({ x: s.elapsed_s, y: s.steps_per_s });
    if (state.steps.length > 2000) state.steps.shift();
    charts.steps.data.datasets[0].data = state.steps;
    charts.steps.update();
  }
}

// Jobs by state over time, from each job's submit/start/end times.
function renderJobStates(jobs, now) {
  const clients = jobs.filter((j) => j.kind === "client");
  const n = 80, series = { pending: [], running: [], completed: [], failed: [], cancelled: [] };
  for (let i = 0; i <= n; ++i) {
    const t = now * i / n, c = { pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
    for (const j of clients) {
      if (j.ended_at >= 0 && j.ended_at <= t) c[j.state in c ? j.state : "failed"] += 1;
      else if (j.started_at >= 0 && j.started_at <= t) c.running += 1;
      else if ((j.submitted_at >= 0 && j.submitted_at <= t) || (i === n && j.state === "pending")) c.pending += 1;
    }
    for (const k in series) series[k].push({ x: Math.round(t * 10) / 10, y: c[k] });
  }
  charts.jobs.data.datasets.forEach((d) => { d.data = series[d.label]; });
  charts.jobs.update();
}

function renderJobTable() {
  const rows = state.jobs.filter((j) => !state.jobFilter || j.state === state.jobFilter);
  const tbody = $("job-table").tBodies[0];
  tbody.textContent = "";
  const time = (t) => (t === undefined || t === null || t < 0 ? "–" : t.toFixed(1) + " s");
  for (const j of rows) {
    const tr = tbody.insertRow();
    tr.className = j.state;
    const cells = [j.id, j.kind, j.sim_id, j.attempt, j.state, j.raw_state,
                   j.exit_code !== null && j.exit_code !== undefined ? j.exit_code : (j.signal ? "signal " + j.signal : "–"),
                   time(j.started_at), time(j.ended_at),
                   (j.parameters || "").split(",").filter((x) => x !== "").map((x) => (+x).toPrecision(4)).join(", ")];
    cells.forEach((v, i) => {
      const td = tr.insertCell();
      td.textContent = v === undefined ? "–" : v;
      if (i === 0 || i === 2 || i === 3) td.className = "num";
    });
    const td = tr.insertCell();
    if (state.live && j.kind === "client" && (j.state === "running" || j.state === "pending")) {
      const b = document.createElement("button");
      b.textContent = "kill";
      b.className = "kill";
      b.dataset.job = j.id;
      b.onclick = () => command("/api/jobs/" + j.id + "/kill", null, "killed job " + j.id);
      td.appendChild(b);
    }
  }
  $("job-count").textContent = rows.length + " job" + (rows.length === 1 ? "" : "s");
}

function renderTraining(t) {
  for (const r of t.rows || []) state.rows.push(r);
  // A long run: keep every other row once there are many (the charts stay light).
  while (state.rows.length > 4000) state.rows = state.rows.filter((_, i) => i % 2 === 0 || i === state.rows.length - 1);
  if (t.rows && t.rows.length) state.lastStep = t.rows[t.rows.length - 1].step;
  const pts = (key) => state.rows.filter((r) => r[key] !== undefined && r.samples_seen !== undefined &&
                                          (key.indexOf("loss") < 0 || r[key] > 0))
                                  .map((r) => ({ x: r.samples_seen, y: r[key] }));
  charts.loss.data.datasets[0].data = pts("train_loss");
  charts.loss.data.datasets[1].data = pts("validation_loss");
  charts.samples.data.datasets[0].data = pts("samples_per_s");
  charts.buffer.data.datasets[0].data = pts("buffer_population");
  charts.buffer.data.datasets[1].data = pts("buffer_unseen");
  for (const c of [charts.loss, charts.samples, charts.buffer]) c.update();
  const rank0 = (t.ranks || []).find((r) => r.rank === 0 && !r.error);
  setText("tr-batches", rank0 ? rank0.batches : null);
  setText("tr-train_loss", rank0 ? rank0.train_loss : null, 4);
  setText("tr-samples_per_s", rank0 ? rank0.samples_per_s : null, 1);
}

function renderRepetitions(b) {
  const rank0 = (b.ranks || []).find((r) => !r.error && r.repetitions);
  if (!rank0) return;
  const h = rank0.repetitions.histogram || [];
  let labels = h.map((_, k) => String(k)), counts = h.slice();
  if (h.length > 30) {  // about twenty ranges of a round width
    const w = Math.ceil(h.length / 20);
    labels = []; counts = [];
    for (let k = 0; k < h.length; k += w) {
      labels.push(k + "-" + Math.min(h.length - 1, k + w - 1));
      counts.push(h.slice(k, k + w).reduce((a, x) => a + x, 0));
    }
  }
  charts.repetitions.data.labels = labels;
  charts.repetitions.data.datasets[0].data = counts;
  charts.repetitions.update();
}

function renderBreed(s) {
  if (!s.ok) return;
  $("breed").hidden = false;
  const names = s.parameter_names || [];
  for (const [sel, def] of [["breed-x", 0], ["breed-y", 1]]) {
    const el = $(sel);
    if (el.options.length !== names.length) {
      el.textContent = "";
      names.forEach((n, i) => el.add(new Option(n, i)));
      el.value = Math.min(def, names.length - 1);
    }
  }
  state.breed = s;
  const ix = +$("breed-x").value, iy = +$("breed-y").value;
  charts.breed.options.scales.x.title = { display: true, text: names[ix] };
  charts.breed.options.scales.y.title = { display: true, text: names[iy] };
  charts.breed.data.datasets.forEach((d) => {
    d.data = (s.points || []).filter((p) => p.origin === d.label)
      .map((p) => ({ x: p.parameters[ix], y: p.parameters[iy] }));
  });
  charts.breed.update();
}

async function command(path, body, done) {
  const r = await api(path, { method: "POST", headers: { "Content-Type": "application/json" },
                              body: body === null ? "" : JSON.stringify(body) });
  $("control-answer").textContent = r.ok ? done : "error: " + r.error;
  refresh(false);
}

async function refresh(loop) {
  try {
    const status = await api("/api/status");
    if (!status.ok) throw new Error(status.error || "no status");
    renderStatus(status);
    const [jobs, training, buffer, steering] = await Promise.all([
      api("/api/jobs"), api("/api/training?since=" + state.lastStep), api("/api/buffer"), api("/api/steering")]);
    if (jobs.ok) {
      state.jobs = jobs.jobs;
      renderJobStates(jobs.jobs, status.elapsed_s || 0);
      renderJobTable();
    }
    if (training.ok) renderTraining(training);
    if (buffer.ok) renderRepetitions(buffer);
    renderBreed(steering);
    $("error").hidden = true;
    state.refreshes += 1;
    $("refreshed").textContent = state.live ? "updated " + new Date().toLocaleTimeString() : "finished study";
    document.body.dataset.ready = "1";
    document.body.dataset.refreshes = String(state.refreshes);
  } catch (e) {
    $("error").textContent = "cannot reach the study: " + e.message;
    $("error").hidden = false;
  }
  if (loop && state.live) setTimeout(() => refresh(true), REFRESH_MS);
}

$("job-filter").onchange = (e) => { state.jobFilter = e.target.value; renderJobTable(); };
$("breed-x").onchange = $("breed-y").onchange = () => state.breed && renderBreed(state.breed);
$("pause").onclick = () => command("/api/pause", null, "paused");
$("resume").onclick = () => command("/api/resume", null, "resumed");
$("set-job-limit").onclick = () =>
  command("/api/job_limit", { job_limit: parseInt($("job-limit").value, 10) }, "job limit set");
refresh(true);
