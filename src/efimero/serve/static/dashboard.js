// The operations dashboard: reads /v1/dashboard/{summary,metrics,drift} every REFRESH_MS and draws them.
// Every string from the server goes into the page as text (textContent), never as HTML.
import uPlot from "./vendor/uplot/uPlot.esm.js";

const REFRESH_MS = 10_000;
const ARM_COLOURS = { live: "#2563eb", canary: "#ea580c" };
const OTHER_COLOURS = ["#16a34a", "#9333ea", "#0891b2", "#ca8a04", "#db2777"];
const CHART_HEIGHT = 200;

// -- small DOM helpers ------------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "style") node.style.cssText = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fill(section, ...children) {
  const nodes = children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false);
  document.querySelector(`#${section} .body`).replaceChildren(...nodes);
}

const utc = (iso) => (iso ? `${iso.slice(0, 16).replace("T", " ")} UTC` : "—");
const percent = (share, digits = 0) => (share === null || share === undefined ? "—" : `${(share * 100).toFixed(digits)} %`);
function number(value, digits = 3) {
  if (value === null || value === undefined) return "—";
  const magnitude = Math.abs(value);
  return magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6) ? Number(value).toExponential(digits - 1) : Number(value).toPrecision(digits);
}
const badge = (text, kind = text) => el("span", { class: `badge ${String(kind).replaceAll(" ", "-")}` }, text);

// A table; with `stack`, on a phone each row becomes a block of "header: value" lines instead of a wide row.
function table(headers, rows, empty, { stack = false } = {}) {
  if (!rows.length) return el("p", { class: "muted" }, empty);
  return el("div", { class: "table-wrap" },
    el("table", { class: stack ? "stack" : null },
      el("thead", {}, el("tr", {}, headers.map((header) => el("th", { scope: "col" }, header)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((cell, index) => el("td", { "data-label": headers[index] }, cell)))))));
}

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.filter(([, value]) => value !== null && value !== undefined)
    .map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}

// -- fetching ---------------------------------------------------------------------------------------

async function getJson(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { accept: "application/json", ...options.headers } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && body.detail;
    throw new Error(`${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return body;
}

// -- live model, rollout, retraining, tables ----------------------------------------------------------

function experimentFacts(experiment) {
  if (!experiment) return null;
  const decision = experiment.final && experiment.final.decision;
  return [
    el("h3", {}, "Experiment"),
    el("p", {}, badge(experiment.status), ` ${experiment.treatment} `, el("span", { class: "muted" }, `against ${experiment.control}`)),
    facts([
      ["treatment share", percent(experiment.allocation, 1)],
      ["metric", `${experiment.metric.replaceAll("_", " ")} · ${experiment.planned_n} sessions per arm planned`],
      ["started", utc(experiment.started_at)],
      ["stopped", experiment.stopped_at ? `${utc(experiment.stopped_at)}: ${experiment.stop_reason}` : null],
      ["decision", decision],
    ]),
  ];
}

function renderLive(live, environment, experiment) {
  if (!live) return fill("live", el("p", { class: "muted" }, "No model loaded yet."), experimentFacts(experiment));
  const metrics = Object.entries(live.metrics || {}).map(([name, value]) => `${name.replaceAll("_", " ")} ${number(value)}`);
  const arms = live.traffic.map((arm) =>
    el("li", {}, badge(arm.arm, "arm"), ` ${arm.version} · ${percent(arm.share, 1)}`, arm.served ? "" : ` (not served: ${arm.error})`));
  fill("live",
    el("p", { class: "version" }, live.version),
    facts([
      ["trained", utc(live.metadata.created_at)],
      ["loaded", utc(live.loaded_at)],
      ["test metrics", metrics.join(" · ") || "—"],
      ["environment", environment || "not an environment (admin actions unavailable)"],
      ["fallback", live.fallback],
      ["problem", live.last_error],
    ]),
    arms.length ? [el("h3", {}, "Candidates beside it"), el("ul", { class: "plain" }, arms)] : el("p", { class: "muted" }, "All traffic on the live version."),
    experimentFacts(experiment));
}

function renderRollout(rollout) {
  if (!rollout) return fill("rollout", el("p", { class: "muted" }, "No rollout on this registry yet."));
  const last = rollout.stages.length - 1;
  const finished = rollout.status !== "running";
  const stages = rollout.stages.map((share, index) => {
    let state = "todo";
    if (rollout.status === "completed" || index < rollout.stage_index) state = "done";
    else if (index === rollout.stage_index) state = finished ? `stopped ${rollout.status}` : "current";
    return el("li", { class: state, "aria-current": state === "current" ? "step" : null, title: `stage ${index + 1}` }, percent(share));
  });
  const holdsUntil = new Date(Date.parse(rollout.stage_started_at) + rollout.hold_minutes * 60_000).toISOString();
  fill("rollout",
    el("p", {}, badge(rollout.status), ` ${rollout.version} `, el("span", { class: "muted" }, `replacing ${rollout.previous_version}`)),
    el("ol", { class: "stages", "aria-label": "stages" }, stages),
    facts([
      ["serves", `${percent(rollout.share, 1)} of visitors · stage ${Math.min(rollout.stage_index + 1, last + 1)} of ${last + 1}`],
      ["stage since", utc(rollout.stage_started_at)],
      ["holds until", finished ? null : utc(holdsUntil)],
      ["last check", rollout.last_check ? `${utc(rollout.last_check.at)}: ${rollout.last_check.reason}` : null],
      ["clock", rollout.clock === "store" ? "store (newest visit)" : "wall"],
    ]),
    el("h3", {}, "Timeline"),
    el("ol", { class: "timeline" }, rollout.events.map((event) =>
      el("li", {}, el("time", {}, utc(event.at)), badge(event.event), ` ${percent(event.share, 1)} · ${event.reason}`))));
}

function renderRetraining(retraining) {
  if (!retraining) return fill("retraining", el("p", { class: "muted" }, "Retraining status unavailable."));
  const run = retraining.last_run;
  const schedule = retraining.schedule;
  fill("retraining",
    el("h3", {}, "Last run"),
    run ? [
      el("p", {}, badge(run.outcome), ` ${run.mode}${run.dry_run ? " (dry run)" : ""} · ${utc(run.started_at)}`),
      el("p", { class: "small" }, run.decision),
      run.error ? el("p", { class: "small error" }, run.error) : null,
      table(["trigger", "status", "value", "threshold"], run.triggers.map((trigger) =>
        [el("span", { title: trigger.detail }, trigger.name), badge(trigger.status), number(trigger.value), number(trigger.threshold)]), "No trigger recorded."),
    ] : el("p", { class: "muted" }, "No automated retraining run recorded (efimero auto-retrain)."),
    el("h3", {}, "Next scheduled"),
    schedule.enabled && schedule.due
      ? facts([["time trigger due", utc(schedule.due)], ["any trigger from", utc(schedule.earliest)], ["live version", schedule.live_version]])
      : null,
    el("p", { class: "small muted" }, schedule.detail));
}

function renderAlerts(alerts) {
  fill("alerts", table(["window end", "severity", "rule", "version · arm", "value", "baseline", "action", "message"],
    alerts.map((alert) => [utc(alert.window_end), badge(alert.severity), alert.rule, `${alert.model_version} · ${alert.arm}`,
      number(alert.value), number(alert.baseline), alert.action, el("span", { class: "small" }, alert.message)]),
    "No alerts.", { stack: true }));
}

function renderDeployments(deployments) {
  fill("deployments", table(["started", "action", "version", "previous", "status", "by", "error"],
    deployments.map((record) => [utc(record.started_at), record.action, record.version, record.previous_version || "—",
      badge(record.status), record.user, record.error ? el("span", { class: "small" }, record.error) : "—"]),
    "No deployment recorded for this registry.", { stack: true }));
}

function renderDrift(drift) {
  const head = el("p", { class: "muted" }, `Sessions from ${utc(drift.start)} to ${utc(drift.end)} against the training data of ${drift.version || "—"}.`);
  if (drift.problem) return fill("drift", head, el("p", {}, drift.problem));
  const maxPsi = Math.max(0.5, ...drift.features.map((feature) => (feature.stats.psi ? feature.stats.psi.score : 0)));
  const psiCell = (stat) => {
    if (!stat) return "—";
    const width = Math.min(stat.score / maxPsi, 1) * 100;
    const mark = (stat.threshold / maxPsi) * 100;
    return el("span", { class: "bar", title: `PSI ${stat.score.toFixed(3)} (threshold ${stat.threshold})` },
      el("span", { class: `fill${stat.drifted ? " over" : ""}`, style: `width:${width}%` }),
      el("span", { class: "mark", style: `left:${mark}%` }),
      el("span", { class: "value" }, stat.score.toFixed(3)));
  };
  const score = (stat) => (stat ? number(stat.score) : "—");
  const test = (feature) => feature.stats.ks || feature.stats.chi2;
  fill("drift", head,
    el("p", {}, badge(drift.verdict), ` ${drift.summary}`),
    table(["feature", "type", "importance", "test p", "PSI", "W/σ", "JS", "drifted"], drift.features.map((feature) => [
      el("span", { title: feature.reason }, feature.feature), feature.kind, percent(feature.importance, 1), score(test(feature)),
      psiCell(feature.stats.psi), score(feature.stats.wasserstein), score(feature.stats.jensen_shannon),
      feature.drifted ? badge("drifted") : "no"]), "No feature compared."));
}

// -- charts ----------------------------------------------------------------------------------------

const charts = new Map();
const colourOf = (() => {
  const assigned = new Map();
  return (arm) => {
    if (ARM_COLOURS[arm]) return ARM_COLOURS[arm];
    if (!assigned.has(arm)) assigned.set(arm, OTHER_COLOURS[assigned.size % OTHER_COLOURS.length]);
    return assigned.get(arm);
  };
})();

const CHARTS = [
  { id: "chart-accuracy", measure: "accuracy", interval: true, range: [0, 1], format: (v) => percent(v) },
  { id: "chart-duration", measure: "session_duration_s", interval: true, format: (v) => `${v.toFixed(0)} s` },
  { id: "chart-latency", measure: "latency_p95_ms", format: (v) => `${v.toFixed(1)} ms` },
  { id: "chart-errors", measure: "error_rate", emptyMax: 0.05, format: (v) => percent(v, 1) },
];

function chartData(spec, metrics) {
  const xs = metrics.series.length ? metrics.series[0].points.map((point) => Date.parse(point.end) / 1000) : [];
  const series = [{}];
  const data = [xs];
  const bands = [];
  for (const arm of metrics.series) {
    const colour = colourOf(arm.arm);
    const measures = arm.points.map((point) => point[spec.measure]);
    series.push({ label: `${arm.arm} ${arm.model_version}`, stroke: colour, width: 2, points: { show: true, size: 5, fill: colour } });
    data.push(measures.map((measure) => measure.value));
    if (spec.interval) {
      const high = series.length;
      for (const end of ["high", "low"]) {
        series.push({ label: `${arm.arm} ${end}`, stroke: colour, width: 0, points: { show: false } });
        data.push(measures.map((measure) => measure[end]));
      }
      bands.push({ series: [high, high + 1], fill: `${colour}26` });
    }
  }
  return { series, data, bands };
}

function yRange(spec) {
  if (spec.range) return spec.range;
  return (u, min, max) => [0, max === null || max <= 0 ? spec.emptyMax || 1 : max * 1.15];
}

function drawChart(spec, metrics) {
  const figure = document.getElementById(spec.id);
  const { series, data, bands } = chartData(spec, metrics);
  const signature = series.map((entry) => entry.label || "").join("|");
  const existing = charts.get(spec.id);
  if (existing && existing.signature === signature) {
    existing.chart.setData(data);
    return;
  }
  if (existing) existing.chart.destroy();
  const options = {
    width: Math.max(figure.clientWidth, 240),
    height: CHART_HEIGHT,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: yRange(spec) } },
    axes: [
      { stroke: "#5a6270", grid: { stroke: "#e6e9ee" }, ticks: { stroke: "#e6e9ee" },
        values: (u, ticks) => ticks.map((ts) => new Date(ts * 1000).toISOString().slice(11, 16)) },
      { stroke: "#5a6270", grid: { stroke: "#e6e9ee" }, ticks: { stroke: "#e6e9ee" }, size: 64,
        values: (u, values) => values.map((value) => (value === null ? "" : spec.format(value))) },
    ],
    series,
    bands,
  };
  const chart = new uPlot(options, data, figure);
  charts.set(spec.id, { chart, signature });
}

function renderLegend(metrics) {
  document.getElementById("legend").replaceChildren(...metrics.series.map((arm) =>
    el("li", {}, el("span", { class: "swatch", style: `background:${colourOf(arm.arm)}` }), `${arm.arm} · ${arm.model_version}`)));
}

function renderMetrics(metrics) {
  const minutes = metrics.window_minutes;
  document.getElementById("arms-note").textContent =
    `${metrics.windows} windows of ${minutes} min ending ${utc(metrics.clock.now)}. Accuracy and session duration need ` +
    `${metrics.min_sessions} sessions per window, latency and error rate ${metrics.min_predictions} predictions; ` +
    "a window with fewer is left blank.";
  renderLegend(metrics);
  for (const spec of CHARTS) drawChart(spec, metrics);
}

const resizer = new ResizeObserver(() => {
  for (const [id, { chart }] of charts) {
    const width = Math.max(document.getElementById(id).clientWidth, 240);
    if (Math.abs(chart.width - width) > 1) chart.setSize({ width, height: CHART_HEIGHT });
  }
});
for (const spec of CHARTS) resizer.observe(document.getElementById(spec.id));

// -- refresh loop ----------------------------------------------------------------------------------

let summary = null;

function renderClock(clock) {
  const sources = {
    wall: "server clock",
    store: "newest visit in the store (the server clock's span holds none: simulated or replayed traffic)",
    given: "the ?at= of this page",
  };
  document.getElementById("clock").textContent = `As of ${utc(clock.now)} · ${sources[clock.source]}`;
}

async function refresh() {
  const query = new URLSearchParams(window.location.search);
  const at = query.get("at") ? `?at=${encodeURIComponent(query.get("at"))}` : "";
  const results = await Promise.allSettled([
    getJson("/v1/dashboard/summary"), getJson(`/v1/dashboard/metrics${at}`), getJson(`/v1/dashboard/drift${at}`)]);
  const [summaryResult, metricsResult, driftResult] = results;
  const failures = results.filter((result) => result.status === "rejected").map((result) => result.reason.message);
  if (summaryResult.status === "fulfilled") {
    summary = summaryResult.value;
    renderLive(summary.live, summary.environment, summary.experiment);
    renderRollout(summary.rollout);
    renderRetraining(summary.retraining);
    renderAlerts(summary.alerts);
    renderDeployments(summary.deployments);
    renderAdmin();
    failures.push(...summary.problems);
  }
  if (metricsResult.status === "fulfilled") {
    renderClock(metricsResult.value.clock);
    renderMetrics(metricsResult.value);
  }
  if (driftResult.status === "fulfilled") renderDrift(driftResult.value);
  const problems = document.getElementById("problems");
  problems.hidden = failures.length === 0;
  problems.textContent = failures.join(" · ");
  document.getElementById("status").textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC · every ${REFRESH_MS / 1000} s`;
}

// -- admin actions ---------------------------------------------------------------------------------

function renderAdmin() {
  const running = Boolean(summary && summary.rollout && summary.rollout.status === "running");
  const experimenting = Boolean(summary && summary.experiment && summary.experiment.status === "running");
  const environment = summary && summary.environment;
  document.getElementById("admin-note").textContent = environment
    ? `Acts on the ${environment} environment. Needs the server's EFIMERO_ADMIN_TOKEN.`
    : "The served registry is no environment of environments.yaml: there is nothing to act on.";
  const buttons = document.querySelectorAll("#admin-form button");
  for (const button of buttons) {
    const action = button.dataset.action;
    const allowed = { abort: running, stop: experimenting, rollback: !running && !experimenting, start: !running && !experimenting };
    button.disabled = !environment || !allowed[action];
  }
}

const ACTIONS = {
  abort: { path: "/v1/admin/rollout/abort", body: () => ({ reason: "aborted from the dashboard" }), confirm: "Abort the rollout and send every visitor back to the live version?" },
  stop: { path: "/v1/admin/experiment/stop", body: () => ({ reason: "stopped from the dashboard" }), confirm: "Stop the experiment and send every visitor back to the control?" },
  rollback: { path: "/v1/admin/rollback", body: () => ({}), confirm: "Roll the environment back to its previous version?" },
  start: {
    path: "/v1/admin/rollout/start",
    body: () => ({ version: document.getElementById("start-version").value.trim() || "latest" }),
    confirm: "Start a rollout of this candidate?",
  },
};

document.getElementById("admin-form").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const action = ACTIONS[button.dataset.action];
  if (!window.confirm(action.confirm)) return;
  const result = document.getElementById("admin-result");
  result.textContent = "Working…";
  try {
    await getJson(action.path, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${document.getElementById("admin-token").value}` },
      body: JSON.stringify(action.body()),
    });
    result.textContent = "Done.";
  } catch (error) {
    result.textContent = error.message;
  }
  await refresh();
});

let inFlight = null;
async function tick() {
  if (inFlight) return;
  inFlight = refresh().catch((error) => {
    document.getElementById("status").textContent = `Refresh failed: ${error.message}`;
  }).finally(() => { inFlight = null; });
  await inFlight;
}

tick();
setInterval(tick, REFRESH_MS);
