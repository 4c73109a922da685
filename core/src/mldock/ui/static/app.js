/* mldock ui: the runs table, a run, a comparison and the endpoints, from the JSON routes of
   mldock.ui.server. Plain DOM code and uPlot (vendored): nothing to build, nothing from a CDN. */
"use strict";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04",
                "#db2777", "#4b5563", "#65a30d"];
const LIVE_MS = 2000;
const IDLE_MS = 10000;
const body = document.body;
const main = document.getElementById("main");

/* ---------- small helpers ---------- */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, {headers: {Accept: "application/json"}});
  const data = await response.json().catch(() => ({error: response.statusText}));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function fmtNumber(value) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "number") return typeof value === "object" ? JSON.stringify(value) : String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(4) : String(+value.toPrecision(6));
}
function fmtTime(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}
function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return seconds.toFixed(1) + " s";
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
function statusBadge(status) {
  return el("span", {class: `status status-${status}`, "data-testid": "status"}, status);
}
function showError(where, error) {
  where.replaceChildren(el("p", {class: "error", "data-testid": "load-error"}, String(error.message || error)));
}
function shortImage(image) {
  return image ? image.replace(/^.*\//, "") : "";
}

/* ---------- the runs table ---------- */
function runsState() {
  const params = new URLSearchParams(location.search);
  return {
    status: params.get("status") || "",
    where: params.getAll("where"),
    q: params.get("q") || "",
    sort: params.get("sort") || "started",
    order: params.get("order") || "desc",
    page: Number(params.get("page") || 1),
    per_page: Number(params.get("per_page") || 50),
  };
}
function runsQuery(state) {
  const params = new URLSearchParams();
  if (state.status) params.set("status", state.status);
  for (const w of state.where) params.append("where", w);
  if (state.q) params.set("q", state.q);
  if (state.sort !== "started") params.set("sort", state.sort);
  if (state.order !== "desc") params.set("order", state.order);
  if (state.page > 1) params.set("page", state.page);
  if (state.per_page !== 50) params.set("per_page", state.per_page);
  return params.toString();
}

function renderRuns() {
  let state = runsState();
  const selected = new Set();
  const filters = el("div", {class: "filters"});
  const table = el("div", {"data-testid": "runs-table"});
  const pager = el("div", {class: "pager"});
  const compare = el("button", {"data-testid": "compare-selected", disabled: true,
    onclick: () => { location.href = "/compare?ids=" + [...selected].join(","); }}, "Compare selected");
  const info = el("span", {class: "muted", "data-testid": "runs-count"});
  main.replaceChildren(el("h1", {}, "Runs"), filters, el("div", {class: "pager"}, compare, info), table, pager);

  const statusBoxes = ["running", "finished", "failed", "killed"].map((s) =>
    el("label", {}, el("input", {type: "checkbox", value: s, "data-testid": `filter-${s}`,
      checked: state.status.split(",").includes(s)}), " ", s));
  const where = el("input", {type: "text", "data-testid": "filter-where", value: state.where.join("; "),
    placeholder: "metric:accuracy>0.9; param:lr=0.01"});
  const search = el("input", {type: "text", "data-testid": "filter-q", value: state.q, placeholder: "search id, image, tag"});
  const apply = () => {
    state = {...state, page: 1,
      status: statusBoxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value).join(","),
      where: where.value.split(";").map((w) => w.trim()).filter(Boolean), q: search.value.trim()};
    navigate();
  };
  for (const input of [where, search]) input.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  for (const box of statusBoxes) box.firstChild.addEventListener("change", apply);
  filters.append(...statusBoxes, where, search, el("button", {onclick: apply, "data-testid": "apply-filters"}, "Filter"));

  let timer = null;
  function navigate() {
    history.replaceState(null, "", "/runs" + (runsQuery(state) ? "?" + runsQuery(state) : ""));
    load();
  }
  async function load() {
    clearTimeout(timer);
    let data;
    try {
      data = await getJSON("/api/runs?" + runsQuery(state));
    } catch (error) {
      showError(table, error);
      return;
    }
    drawTable(data);
    // live: every 2 s while something trains, every 10 s otherwise (a new run shows up)
    timer = setTimeout(load, data.running > 0 ? LIVE_MS : IDLE_MS);
  }
  function sortBy(key) {
    state = {...state, page: 1, sort: key,
      order: state.sort === key && state.order === "desc" ? "asc" : "desc"};
    navigate();
  }
  function header(label, key, numeric) {
    const classes = ["sortable"];
    if (state.sort === key) classes.push(`sorted-${state.order}`);
    return el("th", {class: classes.join(" "), "data-sort": key, onclick: () => sortBy(key),
      style: numeric ? "text-align:right" : null}, label);
  }
  function drawTable(data) {
    info.textContent = `${data.total} of ${data.all} runs` + (data.running ? ` · ${data.running} running (live)` : "");
    const cols = data.columns;
    const head = el("tr", {}, el("th", {}, ""), header("run", "id"), header("status", "status"),
      header("started", "started"), header("duration", "duration", true), el("th", {}, "platform"),
      el("th", {}, "image"),
      cols.params.map((p) => header(p, "param:" + p)),
      cols.metrics.map((m) => header(m, "metric:" + m, true)));
    const rows = data.runs.map((run) => el("tr", {"data-run": run.id, "data-testid": "run-row"},
      el("td", {}, el("input", {type: "checkbox", "data-testid": "select-run", checked: selected.has(run.id),
        onchange: (e) => { e.target.checked ? selected.add(run.id) : selected.delete(run.id);
                           compare.disabled = selected.size < 2; }})),
      el("td", {}, el("a", {href: `/runs/${encodeURIComponent(run.id)}`, "data-testid": "run-link"}, run.id)),
      el("td", {}, statusBadge(run.status)),
      el("td", {}, fmtTime(run.started_at)),
      el("td", {class: "num"}, fmtDuration(run.duration)),
      el("td", {}, run.platform),
      el("td", {title: run.image || ""}, shortImage(run.image)),
      cols.params.map((p) => el("td", {"data-param": p}, fmtNumber(run.params[p]))),
      cols.metrics.map((m) => el("td", {class: "num", "data-metric": m}, fmtNumber(run.metrics[m])))));
    table.replaceChildren(data.runs.length
      ? el("table", {}, el("thead", {}, head), el("tbody", {}, rows))
      : el("p", {class: "muted", "data-testid": "no-runs"}, data.all ? "No run matches these filters." : "No runs yet: run 'mldock train'."));
    pager.replaceChildren(
      el("button", {disabled: data.page <= 1, "data-testid": "prev-page",
        onclick: () => { state = {...state, page: data.page - 1}; navigate(); }}, "‹ Previous"),
      el("span", {"data-testid": "page-info"}, `page ${data.page} of ${data.pages}`),
      el("button", {disabled: data.page >= data.pages, "data-testid": "next-page",
        onclick: () => { state = {...state, page: data.page + 1}; navigate(); }}, "Next ›"));
  }
  load();
}

/* ---------- charts ---------- */
function alignSeries(seriesList) {
  /* uPlot wants one x array: the union of steps, each series null where it has no point. */
  const steps = [...new Set(seriesList.flatMap((s) => s.steps))].sort((a, b) => a - b);
  const index = new Map(steps.map((step, i) => [step, i]));
  const columns = seriesList.map((s) => {
    const column = new Array(steps.length).fill(null);
    s.steps.forEach((step, i) => { column[index.get(step)] = s.values[i]; });
    return column;
  });
  return [steps, ...columns];
}

function drawChart(container, labels, seriesList, onZoom) {
  container.replaceChildren();
  if (!seriesList.length) return null;
  const width = Math.max(320, Math.min(container.clientWidth || 900, 1200));
  const options = {
    width, height: 320,
    scales: {x: {time: false}},
    axes: [{label: "step"}, {}],
    cursor: {drag: {x: true, y: false}},
    series: [{label: "step"}, ...labels.map((label, i) => ({label, stroke: COLORS[i % COLORS.length],
      width: 1.5, spanGaps: true, points: {show: false}}))],
    hooks: {setSelect: [(u) => {
      if (u.select.width < 2) return;
      const low = u.posToVal(u.select.left, "x"), high = u.posToVal(u.select.left + u.select.width, "x");
      u.setSelect({left: 0, width: 0, top: 0, height: 0}, false);
      if (onZoom) onZoom(low, high);
    }]},
  };
  const plot = new uPlot(options, alignSeries(seriesList), container);
  container.dataset.points = seriesList.map((s) => s.steps.length).join(",");
  return plot;
}

/* ---------- one run ---------- */
function kvTable(object, testid, keyLabel = "name") {
  const entries = Object.entries(object || {});
  if (!entries.length) return el("p", {class: "muted"}, "none");
  return el("table", {"data-testid": testid}, el("tr", {}, el("th", {}, keyLabel), el("th", {}, "value")),
    entries.map(([k, v]) => el("tr", {"data-key": k}, el("td", {}, k), el("td", {}, fmtNumber(v)))));
}

function renderRun(runId) {
  const summary = el("div");
  const chartBox = el("div", {class: "chart", "data-testid": "metric-chart"});
  const picker = el("div", {class: "series-picker", "data-testid": "metric-picker"});
  const pointsInfo = el("p", {class: "muted", "data-testid": "points-info"});
  const rest = el("div");
  const logBox = el("pre", {"data-testid": "run-log"}, "");
  main.replaceChildren(el("h1", {"data-testid": "run-title"}, `Run ${runId}`), summary,
    el("h2", {}, "Metric curves"), picker,
    el("div", {}, el("button", {"data-testid": "reset-zoom", onclick: () => { zoom = null; loadCurves(); }}, "Reset zoom"),
      " ", el("span", {class: "muted"}, "drag across the chart to zoom")),
    chartBox, pointsInfo, rest, el("h2", {}, "Log"), logBox);

  let chosen = null, zoom = null, logOffset = 0, timer = null, lastStatus = null;
  async function loadRun() {
    let run;
    try {
      run = await getJSON(`/api/runs/${encodeURIComponent(runId)}`);
    } catch (error) {
      showError(summary, error);
      return;
    }
    drawSummary(run);
    const keys = Object.keys(run.metrics);
    if (chosen === null) chosen = new Set(keys.slice(0, 3));
    picker.replaceChildren(...(keys.length ? keys.map((k) => el("label", {},
      el("input", {type: "checkbox", "data-testid": `pick-${k}`, checked: chosen.has(k),
        onchange: (e) => { e.target.checked ? chosen.add(k) : chosen.delete(k); loadCurves(); }}), " ", k))
      : [el("span", {class: "muted"}, "This run logged no metrics.")]));
    await loadCurves();
    if (run.has_log) await loadLog(run.status);
    lastStatus = run.status;
    clearTimeout(timer);
    if (run.status === "running") timer = setTimeout(loadRun, LIVE_MS);
  }
  async function loadCurves() {
    const keys = [...(chosen || [])];
    if (!keys.length) { chartBox.replaceChildren(); pointsInfo.textContent = ""; return; }
    const params = new URLSearchParams({keys: keys.join(","), points: "2000"});
    if (zoom) { params.set("low", zoom[0]); params.set("high", zoom[1]); }
    let data;
    try {
      data = await getJSON(`/api/runs/${encodeURIComponent(runId)}/metrics?${params}`);
    } catch (error) {
      showError(chartBox, error);
      return;
    }
    const series = keys.map((k) => data.series[k]);
    drawChart(chartBox, keys, series, (low, high) => { zoom = [low, high]; loadCurves(); });
    pointsInfo.replaceChildren(...keys.map((k, i) => el("span", {"data-testid": `points-${k}`,
      "data-shown": series[i].shown, "data-total": series[i].total},
      `${k}: ${series[i].shown} of ${series[i].total} points${i < keys.length - 1 ? " · " : ""}`)));
  }
  async function loadLog(status) {
    try {
      const log = await getJSON(`/api/runs/${encodeURIComponent(runId)}/log?offset=${logOffset}`);
      if (logOffset === 0 && log.truncated) logBox.textContent = "… (the start of the log is not shown)\n";
      logBox.textContent += log.text;
      logOffset = log.offset;
      if (status === "running") logBox.scrollTop = logBox.scrollHeight;
    } catch (error) {
      logBox.textContent = String(error.message || error);
    }
  }
  function drawSummary(run) {
    const lineage = run.lineage || {};
    summary.replaceChildren(
      el("p", {}, statusBadge(run.status), " ", `started ${fmtTime(run.started_at)}`,
        run.duration !== null ? ` · ${fmtDuration(run.duration)}` : "",
        ` · ${lineage.platform || "local"}`, lineage.job_id ? ` · job ${lineage.job_id}` : ""),
      run.error ? el("p", {class: "error", "data-testid": "run-error"}, run.error) : "");
    if (!run.has_log) logBox.textContent = "No training log on this machine (cloud runs keep theirs on their platform).";
    rest.replaceChildren(
      el("div", {class: "grid"},
        el("div", {}, el("h2", {}, "Params"), kvTable(run.params, "params")),
        el("div", {}, el("h2", {}, "Last metrics"), kvTable(run.metrics, "metrics")),
        el("div", {}, el("h2", {}, "Tags"), kvTable(run.tags, "tags"))),
      el("h2", {}, "Lineage"),
      el("table", {"data-testid": "lineage"},
        el("tr", {}, el("th", {}, "git commit"), el("td", {}, lineage.git_commit
          ? `${lineage.git_commit}${lineage.git_dirty ? " (uncommitted changes)" : ""}` : "not a git checkout")),
        el("tr", {}, el("th", {}, "image"), el("td", {"data-testid": "lineage-image"}, lineage.image || "")),
        el("tr", {}, el("th", {}, "image id"), el("td", {}, lineage.image_id || "")),
        el("tr", {}, el("th", {}, "image digest"), el("td", {}, lineage.image_digest || "")),
        el("tr", {}, el("th", {}, "platform"), el("td", {}, `${lineage.platform || "local"}${lineage.job_id ? " · " + lineage.job_id : ""}`)),
        Object.entries(lineage.inputs || {}).map(([name, input]) => el("tr", {"data-input": name},
          el("th", {}, `input ${name}`), el("td", {}, `${input.uri || ""} ${input.sha256 ? "sha256:" + input.sha256 : ""}`)))),
      el("details", {}, el("summary", {}, "config the run used"),
        el("pre", {"data-testid": "lineage-config"}, JSON.stringify(lineage.config || {}, null, 2))),
      el("h2", {}, "Reproduce"), el("pre", {"data-testid": "reproduce"}, run.reproduce),
      el("h2", {}, "Model files"), modelFiles(run));
  }
  loadRun();
}

function modelFiles(run) {
  if (run.model_files_error) return el("p", {class: "error"}, run.model_files_error);
  if (!run.model_files) {
    const remote = (run.artifacts || []).map((a) => a.uri || a.key).filter(Boolean);
    return el("p", {class: "muted"}, remote.length ? remote.join(", ") : "no stored model");
  }
  return el("table", {"data-testid": "model-files"},
    el("tr", {}, el("th", {}, "file"), el("th", {}, "size"), el("th", {}, "sha256")),
    run.model_files.map((f) => el("tr", {}, el("td", {}, f.path), el("td", {class: "num"}, f.size),
      el("td", {title: f.sha256}, f.sha256.slice(0, 16) + "…"))));
}

/* ---------- compare ---------- */
async function renderCompare(ids) {
  main.replaceChildren(el("h1", {}, "Compare runs"), el("p", {class: "muted"}, "Loading…"));
  let data;
  try {
    data = await getJSON(`/api/compare?ids=${encodeURIComponent(ids)}`);
  } catch (error) {
    showError(main, error);
    return;
  }
  const differing = new Set(data.differing_params);
  const table = el("table", {"data-testid": "compare-table"},
    el("tr", {}, el("th", {}, ""), data.runs.map((r) => el("th", {}, el("a", {href: `/runs/${r.id}`}, r.id)))),
    el("tr", {}, el("td", {}, "status"), data.runs.map((r) => el("td", {}, statusBadge(r.status)))),
    data.params.map((p) => el("tr", {class: differing.has(p) ? "differs" : null, "data-param": p,
      "data-testid": differing.has(p) ? "param-differs" : "param-same"},
      el("td", {}, `param ${p}`), data.runs.map((r) => el("td", {}, fmtNumber(r.params[p]))))),
    data.metrics.map((m) => el("tr", {"data-metric": m}, el("td", {}, `metric ${m}`),
      data.runs.map((r) => el("td", {class: "num"}, fmtNumber(r.metrics[m]))))));
  const select = el("select", {"data-testid": "compare-metric"},
    data.metrics.map((m) => el("option", {value: m}, m)));
  const chartBox = el("div", {class: "chart", "data-testid": "compare-chart"});
  main.replaceChildren(el("h1", {}, `Compare ${data.runs.length} runs`),
    el("p", {class: "muted"}, "Params that differ are highlighted."), table,
    el("h2", {}, "Curves"), data.metrics.length ? el("p", {}, "metric ", select) : el("p", {class: "muted"}, "no metrics"),
    chartBox);
  async function overlay() {
    const metric = select.value;
    if (!metric) return;
    const withMetric = data.runs.filter((r) => metric in r.metrics);
    const series = await Promise.all(withMetric.map((r) =>
      getJSON(`/api/runs/${encodeURIComponent(r.id)}/metrics?keys=${encodeURIComponent(metric)}&points=2000`)
        .then((d) => d.series[metric])));
    drawChart(chartBox, withMetric.map((r) => r.id), series, null);
  }
  select.addEventListener("change", overlay);
  overlay();
}

/* ---------- endpoints ---------- */
async function renderEndpoints() {
  main.replaceChildren(el("h1", {}, "Endpoints"), el("p", {class: "muted"}, "Asking each environment's deployer…"));
  let data;
  try {
    data = await getJSON("/api/endpoints");
  } catch (error) {
    showError(main, error);
    return;
  }
  const rows = data.environments.flatMap((env) => {
    const name = env.envs.map((e) => e || "(base config)").join(", ");
    if (env.error) return [el("tr", {"data-env": name}, el("td", {}, name), el("td", {}, env.deployer || ""),
      el("td", {colspan: 4, class: "error"}, env.error))];
    if (!env.endpoints.length) return [el("tr", {"data-env": name}, el("td", {}, name), el("td", {}, env.deployer),
      el("td", {colspan: 4, class: "muted"}, "nothing deployed"))];
    return env.endpoints.map((e) => el("tr", {"data-env": name, "data-endpoint": e.name, "data-testid": "endpoint-row"},
      el("td", {}, name), el("td", {}, env.deployer), el("td", {}, e.name),
      el("td", {}, el("span", {class: `dot ${e.healthy ? "dot-ok" : "dot-bad"}`}), e.status),
      el("td", {}, e.run_id ? el("a", {href: `/runs/${e.run_id}`}, e.run_id) : ""), el("td", {}, e.url)));
  });
  main.replaceChildren(el("h1", {}, "Endpoints"), el("table", {"data-testid": "endpoints-table"},
    el("tr", {}, ["environment", "deployer", "endpoint", "health", "run", "url"].map((h) => el("th", {}, h))), rows));
}

/* ---------- start ---------- */
document.getElementById("project").textContent = body.dataset.project || "";
document.title = `${body.dataset.project || "mldock"} · mldock`;
for (const link of document.querySelectorAll("[data-nav]")) {
  if (link.dataset.nav === body.dataset.page || (link.dataset.nav === "runs" && body.dataset.page !== "endpoints"))
    link.classList.add("active");
}
({
  runs: () => renderRuns(),
  run: () => renderRun(body.dataset.run),
  compare: () => renderCompare(body.dataset.ids),
  endpoints: () => renderEndpoints(),
}[body.dataset.page] || (() => showError(main, new Error("unknown page"))))();
