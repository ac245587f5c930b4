/**
 * The ops page: polls /ops/data with the ops token and shows the summary line first, then
 * each dashboard, in the order the server sends them (each file's `-- order:`), as a
 * table with an inline SVG chart for the time-series and bars ones. Columns are named and
 * formatted as each query declares (`labels`, `units`: ops/dashboards/*.sql); nothing is
 * guessed here. No library and nothing from another origin; every server string is
 * rendered as text, never as markup.
 *
 * Views: each is one module-level function that draws an answer of its data path into
 * #views (VIEWS below); only the dashboards view exists so far. A new view (a jobs list,
 * a job page) is another entry there and another function, beside showDashboards.
 *
 * The token comes from the URL fragment (#token=..., removed from the address bar at
 * once) or from the form, and is kept in sessionStorage (this tab only). `?refresh=N`
 * sets the refresh period in seconds (at least 1, default 10). #ops carries data-ready
 * ("true" once this module runs), data-state (ok, unauthorized, disabled, error,
 * offline, asking) and data-updates (answers drawn so far), for browser tests.
 */

const TOKEN_KEY = "ops-token";
const DEFAULT_REFRESH_S = 10;
const MIN_REFRESH_S = 1;
const MAX_REFRESH_S = 3600;
const REQUEST_TIMEOUT_MS = 30_000; // a hung request must not stop the refreshes
const WIDTH = 640; // chart viewBox width; CSS scales it to the column
const MAX_BAR_ROWS = 40;
const LABEL_CHARS = 32;
const FOLDED_ROWS = 12; // a time series' longer table starts folded: the chart says it

const byId = (id) => document.getElementById(id);
const ui = {
  app: byId("ops"),
  refreshNote: byId("refresh-note"),
  updatedAt: byId("updated-at"),
  form: byId("token-form"),
  input: byId("token-input"),
  errorBox: byId("error-box"),
  notice: byId("notice"),
  summary: byId("summary"),
  dashboards: byId("dashboards"),
  forget: byId("forget-button"),
};
const dashboardTemplate = byId("dashboard-template");
const chartTemplate = byId("chart-template");
// The SVG namespace, as the HTML parser gave it to the template's <svg>.
const SVG_NS = chartTemplate.content.querySelector("svg").namespaceURI;
const refreshS = refreshSeconds();
const LINE_STYLES = 6; // distinct colour, dash and width per series: ops.css .series-N

// What each view fetches, whether an answer is its kind, and the function that draws it.
const VIEWS = {
  dashboards: { path: "/ops/data", accepts: (body) => Array.isArray(body.dashboards),
                show: showDashboards },
};
const view = VIEWS.dashboards;

let token = null;
let timer = null;
let generation = 0; // a newer load (or a forgotten token) makes older answers stale
const rowsOpen = new Map(); // dashboard name -> table unfolded, kept across refreshes

start();

function start() {
  ui.refreshNote.textContent = `Refreshes every ${refreshS} s.`;
  ui.form.addEventListener("submit", onSubmit);
  ui.forget.addEventListener("click", () => {
    forgetToken();
    hide(ui.errorBox);
    askForToken();
  });
  token = tokenFromFragment() || storedToken();
  ui.app.dataset.ready = "true";
  if (token) {
    useToken(token);
  } else {
    askForToken();
  }
}

function refreshSeconds() {
  const raw = new URLSearchParams(location.search).get("refresh");
  const value = raw === null ? Number.NaN : Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    return DEFAULT_REFRESH_S;
  }
  return Math.min(Math.max(value, MIN_REFRESH_S), MAX_REFRESH_S);
}

/** #token=... , decoded by hand: URLSearchParams would turn a base64 "+" into a space. */
function tokenFromFragment() {
  const part = location.hash.slice(1).split("&").find((p) => p.startsWith("token="));
  if (part === undefined) {
    return null;
  }
  // Out of the address bar and the history: the token should not linger on screen.
  history.replaceState(null, "", location.pathname + location.search);
  try {
    return decodeURIComponent(part.slice("token=".length)).trim() || null;
  } catch {
    return null;
  }
}

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: the form asks on each visit
  }
}

function useToken(value) {
  token = value;
  try {
    sessionStorage.setItem(TOKEN_KEY, value);
  } catch {
    // kept in memory only
  }
  hide(ui.form);
  show(ui.forget);
  load();
}

function forgetToken() {
  token = null;
  generation += 1;
  clearTimeout(timer);
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing stored
  }
  ui.dashboards.replaceChildren();
  ui.summary.replaceChildren();
  hide(ui.summary);
  ui.updatedAt.textContent = "Not loaded yet.";
  hide(ui.forget);
}

function askForToken() {
  ui.app.dataset.state = ui.app.dataset.state === "unauthorized" ? "unauthorized" : "asking";
  show(ui.form);
  ui.input.value = "";
  ui.input.focus();
}

function onSubmit(event) {
  event.preventDefault(); // the page's CSP forbids submitting anyway (form-action 'none')
  const value = ui.input.value.trim();
  // A header carries visible ASCII only; fetch() would refuse anything else.
  if (!/^[\x21-\x7e]+$/.test(value)) {
    showError("Enter the token: printable ASCII characters, no spaces.");
    return;
  }
  hide(ui.errorBox);
  useToken(value);
}

async function load() {
  clearTimeout(timer);
  const mine = ++generation;
  let response;
  let body;
  try {
    response = await fetch(view.path, {
      headers: { Authorization: `Bearer ${token}` },
      cache: "no-store",
      credentials: "omit",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    body = await response.json().catch(() => null);
  } catch {
    if (mine === generation) {
      setState("offline");
      showNotice("The server cannot be reached; trying again.");
      schedule();
    }
    return;
  }
  if (mine !== generation) {
    return;
  }
  hide(ui.notice);
  if (response.status === 401) {
    forgetToken();
    setState("unauthorized");
    showError("The ops token was refused (401 Unauthorized). Enter the current OPS_TOKEN.");
    askForToken();
  } else if (response.status === 404) {
    forgetToken();
    setState("disabled");
    showError("The ops page is turned off on this server (OPS_TOKEN is not set).");
  } else if (!response.ok || !body || !view.accepts(body)) {
    setState("error");
    const reason = body && typeof body.error === "string" ? `: ${body.error}` : ".";
    showError(`The dashboards could not be loaded (HTTP ${response.status})${reason} ` +
              "Trying again.");
    schedule();
  } else {
    hide(ui.errorBox);
    view.show(body);
    noteUpdate(body.generatedAt);
    setState("ok");
    schedule();
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(load, refreshS * 1000);
}

function noteUpdate(generatedAt) {
  const at = new Date(generatedAt);
  ui.updatedAt.textContent = Number.isNaN(at.getTime())
    ? "Updated."
    : `Updated at ${at.toLocaleTimeString()}.`;
  ui.updatedAt.title = String(generatedAt);
  ui.app.dataset.updates = String(Number(ui.app.dataset.updates) + 1);
}

// ---- view: the dashboards (GET /ops/data) ----

function showDashboards(body) {
  const summaries = body.dashboards.filter((board) => board.chart === "summary");
  ui.summary.replaceChildren(...summaries.map(renderSummary));
  ui.summary.hidden = !summaries.length;
  ui.dashboards.replaceChildren(...body.dashboards
    .filter((board) => board.chart !== "summary").map(renderDashboard));
}

/** The summary line: the listed columns of the query's one row, label above value. */
function renderSummary(board) {
  const part = document.createElement(board.error ? "div" : "dl");
  part.className = "summary-board";
  part.dataset.name = String(board.name);
  part.title = board.description || "";
  if (board.error) {
    const error = element("p", `${board.title || board.name}: this query failed: ${board.error}`);
    error.className = "dashboard-error";
    error.dataset.testid = "dashboard-error";
    part.append(error);
    return part;
  }
  const columns = describeColumns(board);
  const first = Array.isArray(board.rows) && board.rows.length ? board.rows[0] : [];
  part.append(...seriesOf(board, columns).map((column) => {
    const item = document.createElement("div");
    item.className = "summary-item";
    item.dataset.testid = "summary-item";
    item.dataset.name = column.name;
    const value = element("dd", formatValue(first[column.at] ?? null, column.unit));
    value.dataset.testid = "summary-value";
    item.append(element("dt", column.label), value);
    return item;
  }));
  return part;
}

function renderDashboard(board) {
  const section = dashboardTemplate.content.firstElementChild.cloneNode(true);
  section.dataset.name = String(board.name);
  section.dataset.chart = String(board.chart);
  section.querySelector(".title").textContent = board.title || board.name;
  section.querySelector(".description").textContent = board.description || "";
  if (board.error) {
    const error = section.querySelector(".dashboard-error");
    error.textContent = `This query failed: ${board.error}`;
    show(error);
    hide(section.querySelector(".rows"));
    return section;
  }
  const columns = describeColumns(board);
  const rows = Array.isArray(board.rows) ? board.rows : [];
  const series = seriesOf(board, columns);
  if (rows.length && series.length) {
    const draw = new Map([["time-series", timeSeries], ["bars", bars]]).get(board.chart);
    if (draw) {
      section.querySelector(".chart-slot").append(draw(board, columns, rows, series));
    }
  }
  fillTable(section.querySelector("table"), columns, rows);
  section.querySelector(".truncated").hidden = !board.truncated;
  const details = section.querySelector(".rows");
  details.querySelector("summary").textContent = rows.length === 1
    ? "1 row"
    : `${rows.length} rows`;
  const name = String(board.name);
  const folded = board.chart === "time-series" && rows.length > FOLDED_ROWS;
  details.open = rowsOpen.get(name) ?? !folded;
  details.addEventListener("toggle", () => rowsOpen.set(name, details.open));
  return section;
}

/** Each column's name, its label and unit as the query declares them, and its index. */
function describeColumns(board) {
  const names = Array.isArray(board.columns) ? board.columns : [];
  const labels = Array.isArray(board.labels) ? board.labels : [];
  const units = Array.isArray(board.units) ? board.units : [];
  return names.map((name, at) => ({ name: String(name), at,
                                    label: String(labels[at] ?? name),
                                    unit: units[at] ?? null }));
}

function seriesOf(board, columns) {
  return (board.series || []).map((name) => columns.find((c) => c.name === name))
    .filter((column) => column !== undefined);
}

function fillTable(table, columns, rows) {
  table.querySelector("thead tr").replaceChildren(...columns.map((column) => {
    const th = element("th", column.label);
    th.scope = "col";
    th.title = column.name; // the query's own name, for whoever reads the SQL next
    th.dataset.column = column.name;
    if (rows.length && typeof rows[0][column.at] === "number") {
      th.className = "num"; // aligned with its figures
    }
    return th;
  }));
  const body = table.querySelector("tbody");
  if (!rows.length) {
    const cell = element("td", "No rows.");
    cell.colSpan = Math.max(columns.length, 1);
    cell.className = "empty";
    body.replaceChildren(row([cell]));
    return;
  }
  body.replaceChildren(...rows.map((values) => row(columns.map((column) => {
    const value = values[column.at];
    const cell = element("td", formatValue(value, column.unit));
    if (typeof value === "number") {
      cell.className = "num";
      if (column.unit) {
        cell.title = String(value); // the exact figure behind "4 s ago" or "28.6 %"
      }
    } else if (value === null || value === undefined) {
      cell.className = "null";
    }
    return cell;
  }))));
}

function row(cells) {
  const tr = document.createElement("tr");
  tr.append(...cells);
  return tr;
}

// ---- values in their units (dashboards.py UNITS) ----

function formatValue(value, unit) {
  if (value === null || value === undefined) {
    return "\u2014";
  }
  if (typeof value === "number") {
    switch (unit) {
      case "percent":
        return `${(value * 100).toLocaleString(undefined, { minimumFractionDigits: 1,
                                                            maximumFractionDigits: 1 })} %`;
      case "seconds":
        return duration(value);
      case "ms":
        return value < 1000 ? `${roundTo(value, value < 10 ? 1 : 0)} ms` : duration(value / 1000);
      case "ago":
        return `${duration(value)} ago`;
      default:
        return formatNumber(value);
    }
  }
  if (unit === "time") {
    const at = new Date(value);
    if (!Number.isNaN(at.getTime())) {
      return at.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit",
                                     minute: "2-digit", second: "2-digit" });
    }
  }
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** 4 s, 8.2 s, 3 min 20 s, 2 h 5 min, 1 d 3 h: two units at most. */
function duration(seconds) {
  const s = Math.max(seconds, 0);
  if (s < 60) {
    return `${roundTo(s, s < 10 && s % 1 ? 1 : 0)} s`;
  }
  const parts = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
  const first = parts.findIndex(([size]) => s >= size);
  const [size, name] = parts[first];
  const [nextSize, nextName] = parts[first + 1];
  const whole = Math.floor(s / size);
  const rest = Math.floor((s - whole * size) / nextSize);
  return rest ? `${whole} ${name} ${rest} ${nextName}` : `${whole} ${name}`;
}

function roundTo(value, digits) {
  return value.toLocaleString(undefined, { maximumFractionDigits: digits });
}

// ---- charts: drawn into copies of #chart-template, one CSS class per series style ----

function timeSeries(board, columns, rows, series) {
  const height = 180;
  const pad = { left: 44, right: 12, top: 10, bottom: 24 };
  const plotW = WIDTH - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const timeAt = Math.max(columns.findIndex((c) => c.name === "time"), 0);
  const max = niceMax(largest(rows, series));
  const x = (i) => pad.left + (rows.length === 1 ? plotW / 2 : (i * plotW) / (rows.length - 1));
  const y = (v) => pad.top + plotH - (v / max) * plotH;
  const { figure, svg } = chart(board, series, WIDTH, height, "line");
  for (const value of [0, max / 2, max]) {
    svg.append(svgElement("line", { x1: pad.left, x2: WIDTH - pad.right, y1: y(value),
                                    y2: y(value), class: "grid" }));
    svg.append(svgElement("text", { x: pad.left - 6, y: y(value), class: "axis end" },
                          formatValue(value, series[0].unit)));
  }
  const first = rows[0][timeAt];
  const last = rows[rows.length - 1][timeAt];
  svg.append(svgElement("text", { x: pad.left, y: height - 6, class: "axis" },
                        clockTime(first)));
  svg.append(svgElement("text", { x: WIDTH - pad.right, y: height - 6, class: "axis end" },
                        clockTime(last)));
  // Drawn first to last, widest first (ops.css): lines that coincide stay visible, the
  // thinner dashed ones on top of the wider ones.
  series.forEach((s, k) => {
    const points = rows.map((r, i) => `${x(i).toFixed(1)},${y(number(r[s.at])).toFixed(1)}`);
    const line = svgElement("polyline", { points: points.join(" "),
                                          class: `line series-${k % LINE_STYLES}`,
                                          "data-testid": "chart-line", "data-series": s.name });
    line.append(svgElement("title", {}, s.label));
    svg.append(line);
  });
  return figure;
}

function bars(board, columns, rows, series) {
  const shown = rows.slice(0, MAX_BAR_ROWS);
  const seriesAt = new Set(series.map((s) => s.at));
  // A bar group is labelled by its `label` column (queue_jobs/observability/dashboards.py), else by the
  // row's text columns.
  const named = columns.findIndex((c) => c.name === "label");
  const labelAt = named >= 0 ? [named] : columns.map((c) => c.at).filter((i) =>
    !seriesAt.has(i) && shown.every((r) => r[i] === null || typeof r[i] === "string"));
  const barH = 14;
  const groupH = series.length * barH + 10;
  const labelW = 220;
  const valueW = 72;
  const top = 6;
  const axisH = 18;
  const plotH = shown.length * groupH;
  const scale = barScale(board.scale, shown, series, WIDTH - labelW - valueW);
  const height = top + plotH + (scale.ticks.length ? axisH : 0);
  const { figure, svg } = chart(board, series, WIDTH, height, "bar");
  figure.dataset.scale = scale.kind;
  for (const tick of scale.ticks) { // a log axis: one line per power of ten
    const at = labelW + scale.width(tick);
    svg.append(svgElement("line", { x1: at, x2: at, y1: top, y2: top + plotH, class: "grid" }));
    svg.append(svgElement("text", { x: at, y: top + plotH + axisH / 2 + 2,
                                    class: "axis middle", "data-testid": "chart-tick" },
                          formatValue(tick, series[0].unit)));
  }
  shown.forEach((r, g) => {
    const label = labelAt.map((i) => r[i] ?? "\u2014").join(" / ") || `row ${g + 1}`;
    const groupTop = top + g * groupH;
    const text = svgElement("text", { x: labelW - 8, y: groupTop + (series.length * barH) / 2,
                                      class: "label end" }, truncate(label));
    text.append(svgElement("title", {}, label));
    svg.append(text);
    series.forEach((s, k) => {
      const value = number(r[s.at]);
      const shownValue = formatValue(value, s.unit);
      const barW = scale.width(value);
      const bar = svgElement("rect", { x: labelW, y: groupTop + k * barH,
                                       width: Math.max(barW, 1).toFixed(1), height: barH - 2,
                                       class: `bar series-${k % LINE_STYLES}`,
                                       "data-testid": "chart-bar", "data-series": s.name });
      bar.append(svgElement("title", {}, `${label}, ${s.label}: ${shownValue}`));
      svg.append(bar);
      svg.append(svgElement("text", { x: labelW + barW + 4, y: groupTop + k * barH + barH / 2,
                                      class: "value" }, shownValue));
    });
  });
  if (rows.length > shown.length) {
    figure.querySelector("figcaption").append(
      element("span", ` (first ${shown.length} of ${rows.length} rows)`));
  }
  return figure;
}

/** A bar's length for a value: linear from 0, or log from the power of ten below the
 * smallest value to the one above the largest (`-- scale: log`: durations, where one
 * outlier would flatten every other bar), with a tick at each power of ten. */
function barScale(kind, rows, series, span) {
  const values = rows.flatMap((r) => series.map((s) => number(r[s.at]))).filter((v) => v > 0);
  if (kind !== "log" || !values.length) {
    const max = Math.max(...values, 0) || 1;
    return { kind: "linear", ticks: [], width: (v) => (v / max) * span };
  }
  const low = Math.ceil(Math.log10(Math.min(...values))) - 1;
  const high = Math.max(Math.ceil(Math.log10(Math.max(...values))), low + 1);
  const width = (v) => v > 0
    ? Math.max(0, (Math.log10(v) - low) / (high - low)) * span
    : 0;
  const ticks = [];
  for (let power = low; power <= high; power += 1) {
    ticks.push(10 ** power);
  }
  return { kind: "log", ticks, width };
}

/** A figure whose legend shows each series as it is drawn: its colour, and for lines its
 * dash pattern and width. */
function chart(board, series, width, height, mark) {
  const figure = chartTemplate.content.firstElementChild.cloneNode(true);
  figure.dataset.chart = String(board.chart);
  const svg = figure.querySelector("svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("aria-label", `${board.title || board.name}: ${board.chart} chart`);
  const legend = figure.querySelector("figcaption");
  series.forEach((s, k) => {
    const key = svgElement("svg", { viewBox: "0 0 28 10", class: "key", "aria-hidden": "true" });
    key.append(mark === "line"
      ? svgElement("line", { x1: 1, x2: 27, y1: 5, y2: 5, class: `line series-${k % LINE_STYLES}` })
      : svgElement("rect", { x: 8, y: 0, width: 12, height: 10,
                             class: `bar series-${k % LINE_STYLES}` }));
    const item = element("span", "");
    item.className = "legend-item";
    item.dataset.testid = "legend-item";
    item.append(key, element("span", s.label));
    legend.append(item);
  });
  return { figure, svg };
}

function svgElement(name, attributes, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) {
    node.setAttribute(key, String(value));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function largest(rows, series) {
  return rows.reduce((max, r) => series.reduce((m, s) => Math.max(m, number(r[s.at])), max), 0);
}

/** The axis top: 1, 2 or 5 times a power of ten, at least 1. */
function niceMax(value) {
  if (!(value > 1)) {
    return 1;
  }
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((top) => top >= value);
}

function number(value) {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function formatNumber(value) {
  return value.toLocaleString(undefined, { maximumFractionDigits: 4 });
}

function clockTime(value) {
  const at = new Date(value);
  return Number.isNaN(at.getTime())
    ? String(value ?? "")
    : at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function truncate(text) {
  return text.length > LABEL_CHARS ? `${text.slice(0, LABEL_CHARS - 1)}\u2026` : text;
}

// ---- small DOM helpers ----

function element(name, text) {
  const node = document.createElement(name);
  node.textContent = text;
  return node;
}

function show(node) {
  node.hidden = false;
}

function hide(node) {
  node.hidden = true;
}

function setState(state) {
  ui.app.dataset.state = state;
}

function showError(message) {
  ui.errorBox.textContent = message;
  show(ui.errorBox);
}

function showNotice(message) {
  ui.notice.textContent = message;
  show(ui.notice);
}
