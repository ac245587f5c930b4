/**
 * The ops page: one view at a time, chosen by the URL fragment, each drawn from the ops
 * token's answers: the dashboards (/ops/data: the summary line first, then each dashboard
 * in the order the server sends them, as a table with an inline SVG chart), the jobs
 * (/ops/api/jobs: filters, live counts, keyset pages, retry and cancel of some or of all
 * matching, pause and resume of a job type), one job's page (/ops/api/jobs/<id>) and the
 * audit trail (/ops/api/audit). Columns of the dashboards are named and formatted as each
 * query declares (`labels`, `units`: ops/dashboards/*.sql); nothing is guessed here. No
 * library and nothing from another origin; every server string is rendered as text,
 * never as markup.
 *
 * Views: VIEWS below, each a `fetch` of what it needs (resolving to the answers, or
 * throwing an ApiError) and a `draw` of them; the fragment says which and with what
 * (#view=jobs&status=failed, #view=job&id=...), so a reload or a shared link keeps it.
 * Views refresh on a timer, paused while the tab is hidden.
 *
 * The token comes from the URL fragment (#token=..., removed from the address bar at
 * once) or from the form, and is kept in sessionStorage (this tab only); it is sent only
 * in the Authorization header, never in a URL. The operator's name (X-Ops-Actor on every
 * action, as the audit trail records it) is asked once and kept in localStorage.
 * `?refresh=N` sets the refresh period in seconds (at least 1, default 10). #ops carries
 * data-ready ("true" once this module runs), data-state (ok, unauthorized, disabled,
 * error, offline, asking), data-view and data-updates (answers drawn so far), for
 * browser tests.
 */

const TOKEN_KEY = "ops-token";
const ACTOR_KEY = "ops-actor";
const ACTOR = /^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,63}$/; // ops_actions.ACTOR
const DEFAULT_REFRESH_S = 10;
const MIN_REFRESH_S = 1;
const MAX_REFRESH_S = 3600;
const LIVE_REFRESH_S = 5; // the jobs list and an active job's page: at most this apart
const REQUEST_TIMEOUT_MS = 30_000; // a hung request must not stop the refreshes
const WIDTH = 640; // chart viewBox width; CSS scales it to the column
const MAX_BAR_ROWS = 40;
const LABEL_CHARS = 32;
const FOLDED_ROWS = 12; // a time series' longer table starts folded: the chart says it
const FILTERS = ["status", "type", "errorCode", "owner", "createdFrom", "createdTo",
                 "idPrefix"]; // the API's filter names (queue_jobs/services/ops_jobs.py)
const TIME_FILTERS = new Set(["createdFrom", "createdTo"]);
const STATUSES = ["queued", "running", "succeeded", "failed"];
const ACTIVE = new Set(["queued", "running"]);
const PAGE_SIZE = 50;

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
  nav: document.querySelector(".views-nav"),
  actorForm: byId("actor-form"),
  actorShown: byId("actor-shown"),
  actorLabel: byId("actor-label"),
  actorInput: byId("actor-input"),
  actorSubmit: byId("actor-submit"),
  actorChange: byId("actor-change"),
  jobsView: byId("jobs-view"),
  filterForm: byId("filter-form"),
  counts: byId("job-counts"),
  jobsBody: byId("jobs-body"),
  selectPage: byId("select-page"),
  selectionNote: byId("selection-note"),
  retrySelected: byId("retry-selected"),
  cancelSelected: byId("cancel-selected"),
  retryMatching: byId("retry-matching"),
  cancelMatching: byId("cancel-matching"),
  confirmForm: byId("confirm-form"),
  confirmText: byId("confirm-text"),
  confirmInput: byId("confirm-input"),
  actionOutcome: byId("action-outcome"),
  firstPage: byId("first-page"),
  nextPage: byId("next-page"),
  pageNote: byId("page-note"),
  typesError: byId("types-error"),
  typesBody: byId("types-body"),
  pauseForm: byId("pause-form"),
  pauseLabel: byId("pause-label"),
  pauseReason: byId("pause-reason"),
  jobView: byId("job-view"),
  jobTitle: byId("job-title"),
  jobRetry: byId("job-retry"),
  jobCancel: byId("job-cancel"),
  jobOutcome: byId("job-outcome"),
  jobFacts: byId("job-facts"),
  jobTimeline: byId("job-timeline"),
  jobImages: byId("job-images"),
  jobInput: byId("job-input"),
  jobDocument: byId("job-document"),
  auditView: byId("audit-view"),
  auditFirst: byId("audit-first"),
  auditNext: byId("audit-next"),
};
const dashboardTemplate = byId("dashboard-template");
const chartTemplate = byId("chart-template");
// The SVG namespace, as the HTML parser gave it to the template's <svg>.
const SVG_NS = chartTemplate.content.querySelector("svg").namespaceURI;
const refreshS = refreshSeconds();
const LINE_STYLES = 6; // distinct colour, dash and width per series: ops.css .series-N

// Each view: its element, what it fetches, how it draws it, and when it refreshes
// (seconds, or null: not by itself).
const VIEWS = {
  dashboards: { element: ui.dashboards, fetch: fetchDashboards, draw: showDashboards,
                every: () => refreshS },
  jobs: { element: ui.jobsView, fetch: fetchJobs, draw: showJobs,
          every: () => Math.min(refreshS, LIVE_REFRESH_S) },
  job: { element: ui.jobView, fetch: fetchJob, draw: showJob,
         every: (answer) => ACTIVE.has(answer.job.status) ? Math.min(refreshS, LIVE_REFRESH_S)
                                                             : null },
  audit: { element: ui.auditView, fetch: fetchAudit, draw: showAudit,
           every: () => (audit.cursors.length ? null : refreshS) },
};

/** An answer of the API other than 2xx: its status and its envelope's errorCode. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let token = null;
let actor = null;
let timer = null;
let waiting = false; // a refresh came due while the tab was hidden
let generation = 0; // a newer load (or a forgotten token) makes older answers stale
const rowsOpen = new Map(); // dashboard name -> table unfolded, kept across refreshes
const jobs = { filterKey: null, formKey: null, cursors: [], cursor: null, next: null, selected: new Set(),
               shown: [], bulk: null, pausing: null };
const audit = { cursors: [], cursor: null, next: null };

start();

function start() {
  ui.form.addEventListener("submit", onSubmit);
  ui.forget.addEventListener("click", () => {
    forgetToken();
    hide(ui.errorBox);
    askForToken();
  });
  window.addEventListener("hashchange", () => {
    hide(ui.actionOutcome);
    hide(ui.jobOutcome);
    if (token) {
      load();
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && waiting && token) {
      load();
    }
  });
  startActor();
  startJobs();
  startJob();
  startAudit();
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

// ---- the fragment: #view=...&name=value, and #token=... taken out of it ----

function fragmentParts() {
  return location.hash.slice(1).split("&").filter((part) => part.includes("="));
}

/** #token=... , decoded by hand: URLSearchParams would turn a base64 "+" into a space. */
function tokenFromFragment() {
  const parts = fragmentParts();
  const part = parts.find((p) => p.startsWith("token="));
  if (part === undefined) {
    return null;
  }
  // Out of the address bar and the history: the token should not linger on screen. The
  // rest of the fragment (the view) stays.
  const rest = parts.filter((p) => p !== part).join("&");
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  try {
    return decodeURIComponent(part.slice("token=".length)).trim() || null;
  } catch {
    return null;
  }
}

/** The view and its parameters, as the fragment says (the dashboards by default). */
function route() {
  const params = {};
  for (const part of fragmentParts()) {
    const at = part.indexOf("=");
    try {
      params[decodeURIComponent(part.slice(0, at))] = decodeURIComponent(part.slice(at + 1));
    } catch {
      // a mangled part is left out
    }
  }
  const name = Object.hasOwn(VIEWS, params.view) ? params.view : "dashboards";
  return { name, params };
}

function fragmentFor(params) {
  return Object.entries(params).filter(([, value]) => value !== "" && value !== undefined)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
    .join("&");
}

/** Goes to a view; the same fragment again loads it again (hashchange would not fire). */
function navigate(params) {
  const fragment = `#${fragmentFor(params)}`;
  if (fragment === location.hash) {
    load();
  } else {
    location.hash = fragment;
  }
}

// ---- the token and the operator's name ----

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
  for (const name of Object.keys(VIEWS)) {
    hide(VIEWS[name].element);
  }
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

function startActor() {
  try {
    actor = localStorage.getItem(ACTOR_KEY);
  } catch {
    actor = null;
  }
  ui.actorForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = ui.actorInput.value.trim();
    if (!ACTOR.test(value)) {
      showError("Your name: 1 to 64 letters, digits or . _ @ : + - (no spaces), " +
                "starting with a letter or digit.");
      ui.actorInput.focus();
      return;
    }
    hide(ui.errorBox);
    actor = value;
    try {
      localStorage.setItem(ACTOR_KEY, value);
    } catch {
      // kept for this page only
    }
    showActor();
  });
  ui.actorChange.addEventListener("click", () => {
    ui.actorInput.value = actor || "";
    actor = null;
    showActor();
    ui.actorInput.focus();
  });
  showActor();
}

function showActor() {
  const asking = !actor;
  ui.actorShown.textContent = asking ? "" : `Acting as ${actor}`;
  ui.actorShown.hidden = asking;
  ui.actorChange.hidden = asking;
  for (const node of [ui.actorLabel, ui.actorInput, ui.actorSubmit]) {
    node.hidden = !asking;
  }
}

// ---- talking to the server ----

/** One request with the token (and for an action, the operator's name); the answer's
 * JSON, or an ApiError saying what the server said (its envelope) or that it is away. */
async function api(path, { method = "GET", body, acting = false } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (acting) {
    headers["X-Ops-Actor"] = actor;
  }
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch {
    throw new ApiError(0, "OFFLINE", "The server cannot be reached.");
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok || answer === null) {
    throw new ApiError(response.status, answer && answer.errorCode, envelopeText(response,
                                                                                  answer));
  }
  return answer;
}

/** "HTTP 409 JOB_NOT_RETRYABLE: Only a failed job can be retried. (filter.status: ...)" */
function envelopeText(response, answer) {
  let text = `HTTP ${response.status}`;
  if (answer && typeof answer.errorCode === "string") {
    text += ` ${answer.errorCode}`;
  }
  if (answer && typeof answer.error === "string") {
    text += `: ${answer.error}`;
  }
  if (answer && answer.fields && typeof answer.fields === "object") {
    text += ` (${flatFields(answer.fields).join("; ")})`;
  }
  return text;
}

function flatFields(fields, prefix = "") {
  return Object.entries(fields).flatMap(([name, value]) => {
    const path = prefix ? `${prefix}.${name}` : name;
    if (Array.isArray(value)) {
      return [`${path}: ${value.join(" ")}`];
    }
    return value && typeof value === "object" ? flatFields(value, path) : [`${path}: ${value}`];
  });
}

async function load() {
  clearTimeout(timer);
  waiting = false;
  const mine = ++generation;
  const { name, params } = route();
  const current = VIEWS[name];
  showView(name);
  let answer;
  try {
    answer = await current.fetch(params);
  } catch (error) {
    if (mine === generation) {
      failed(name, error);
    }
    return;
  }
  if (mine !== generation) {
    return;
  }
  hide(ui.notice);
  hide(ui.errorBox);
  current.draw(answer, params);
  noteUpdate(answer.generatedAt);
  setState("ok");
  schedule(current.every(answer));
}

function failed(name, error) {
  if (!(error instanceof ApiError)) {
    throw error;
  }
  if (error.status === 0) {
    setState("offline");
    showNotice("The server cannot be reached; trying again.");
    schedule(refreshS);
  } else if (error.status === 401) {
    forgetToken();
    setState("unauthorized");
    showError("The ops token was refused (401 Unauthorized). Enter the current OPS_TOKEN.");
    askForToken();
  } else if (error.status === 404 && (error.code === "NOT_FOUND" || !error.code)) {
    forgetToken();
    setState("disabled");
    showError("The ops page is turned off on this server (OPS_TOKEN is not set).");
  } else {
    hide(ui.notice);
    setState("error");
    // A refused request (400, 404 of a job) is not tried again until the operator acts.
    const again = error.status >= 500 || error.status === 429;
    showError(`The ${name === "job" ? "job" : name} could not be loaded (${error.message}).` +
              (again ? " Trying again." : ""));
    if (again) {
      schedule(refreshS);
    }
  }
}

function schedule(seconds) {
  clearTimeout(timer);
  const view = route().name;
  ui.refreshNote.textContent = seconds === null
    ? (view === "job" ? "The job has finished: not refreshing." : "Not refreshing.")
    : `Refreshes every ${seconds} s.`;
  if (seconds === null) {
    return;
  }
  timer = setTimeout(() => {
    if (document.hidden) {
      waiting = true; // refreshed as soon as the tab is visible again
    } else {
      load();
    }
  }, seconds * 1000);
}

function noteUpdate(generatedAt) {
  const at = generatedAt === undefined ? new Date() : new Date(generatedAt);
  ui.updatedAt.textContent = Number.isNaN(at.getTime())
    ? "Updated."
    : `Updated at ${at.toLocaleTimeString()}.`;
  ui.updatedAt.title = at.toISOString?.() ?? String(generatedAt);
  ui.app.dataset.updates = String(Number(ui.app.dataset.updates) + 1);
}

function showView(name) {
  ui.app.dataset.view = name;
  for (const [other, entry] of Object.entries(VIEWS)) {
    entry.element.hidden = other !== name;
  }
  if (name !== "dashboards") {
    hide(ui.summary);
  }
  const tab = name === "job" ? "jobs" : name;
  for (const link of ui.nav.querySelectorAll("a")) {
    if (link.dataset.view === tab) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
}

/** Runs an operator's action: with their name (asked first if unknown), its outcome or
 * the API's refusal said in `box`, then the view loaded again. */
async function act(box, perform) {
  if (!actor) {
    say(box, "Enter your name for the audit trail first (at the top of the page).", true);
    ui.actorInput.focus();
    return;
  }
  try {
    say(box, await perform(), false);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      failed("", error);
      return;
    }
    say(box, error instanceof ApiError ? `Refused: ${error.message}` : String(error), true);
  }
  load();
}

function say(box, text, isError) {
  box.textContent = text;
  box.classList.toggle("error", isError);
  box.dataset.kind = isError ? "error" : "ok";
  show(box);
}

// ---- view: the dashboards (GET /ops/data) ----

async function fetchDashboards() {
  const body = await api("/ops/data");
  if (!Array.isArray(body.dashboards)) {
    throw new ApiError(500, null, "the answer holds no dashboards");
  }
  return body;
}

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

// ---- view: the jobs (GET /ops/api/jobs, /jobs/counts, /types) ----

function startJobs() {
  ui.filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = { view: "jobs" };
    for (const input of ui.filterForm.querySelectorAll("[data-filter]")) {
      const name = input.dataset.filter;
      const value = input.value.trim();
      params[name] = TIME_FILTERS.has(name) && value ? utcOf(value) : value;
    }
    resetPages();
    navigate(params);
  });
  byId("filter-clear").addEventListener("click", () => {
    ui.filterForm.reset();
    resetPages();
    navigate({ view: "jobs" });
  });
  ui.nextPage.addEventListener("click", () => {
    jobs.cursors.push(jobs.cursor);
    jobs.cursor = jobs.next;
    load();
  });
  ui.firstPage.addEventListener("click", () => {
    resetPages();
    load();
  });
  ui.selectPage.addEventListener("change", () => {
    for (const job of jobs.shown) {
      if (ui.selectPage.checked) {
        jobs.selected.add(job.jobId);
      } else {
        jobs.selected.delete(job.jobId);
      }
    }
    for (const box of ui.jobsBody.querySelectorAll("input[type=checkbox]")) {
      box.checked = ui.selectPage.checked;
    }
    noteSelection();
  });
  ui.retrySelected.addEventListener("click", () => actOnSelected("retry"));
  ui.cancelSelected.addEventListener("click", () => actOnSelected("cancel"));
  ui.retryMatching.addEventListener("click", () => dryRun("retry"));
  ui.cancelMatching.addEventListener("click", () => dryRun("cancel"));
  ui.confirmForm.addEventListener("submit", (event) => {
    event.preventDefault();
    confirmBulk();
  });
  byId("confirm-abort").addEventListener("click", () => {
    jobs.bulk = null;
    hide(ui.confirmForm);
  });
  ui.pauseForm.addEventListener("submit", (event) => {
    event.preventDefault();
    pauseType();
  });
  byId("pause-abort").addEventListener("click", () => {
    jobs.pausing = null;
    hide(ui.pauseForm);
  });
}

function resetPages() {
  jobs.cursors = [];
  jobs.cursor = null;
}

/** The filter the fragment holds: only the API's filter names, only those given. */
function filterOf(params) {
  return Object.fromEntries(FILTERS.filter((name) => params[name])
    .map((name) => [name, params[name]]));
}

async function fetchJobs(params) {
  const filter = filterOf(params);
  const key = JSON.stringify(filter);
  if (key !== jobs.filterKey) { // another filter: its first page, nothing selected
    jobs.filterKey = key;
    resetPages();
    jobs.selected.clear();
    jobs.bulk = null;
    hide(ui.confirmForm);
  }
  const query = new URLSearchParams(filter);
  const pageQuery = new URLSearchParams({ ...filter, limit: String(PAGE_SIZE),
                                          ...(jobs.cursor ? { cursor: jobs.cursor } : {}) });
  const [page, counts, types] = await Promise.all([
    api(`/ops/api/jobs?${pageQuery}`),
    api(`/ops/api/jobs/counts?${query}`),
    // The job types are their own part of the view: their failure is said there.
    api("/ops/api/types").catch((error) => {
      if (error instanceof ApiError && error.status === 401) {
        throw error;
      }
      return { error };
    }),
  ]);
  return { page, counts, types };
}

function showJobs(answer, params) {
  if (jobs.formKey !== jobs.filterKey) { // only a new filter: a refresh keeps what is typed
    jobs.formKey = jobs.filterKey;
    fillFilterForm(params);
  }
  showCounts(answer.counts);
  const { page } = answer;
  jobs.shown = Array.isArray(page.jobs) ? page.jobs : [];
  jobs.next = page.nextCursor;
  if (jobs.shown.length) {
    ui.jobsBody.replaceChildren(...jobs.shown.map(jobRow));
  } else {
    const cell = element("td", "No job matches this filter.");
    cell.colSpan = 9;
    cell.className = "empty";
    ui.jobsBody.replaceChildren(row([cell]));
  }
  ui.selectPage.checked = jobs.shown.length > 0
    && jobs.shown.every((job) => jobs.selected.has(job.jobId));
  ui.nextPage.disabled = !page.nextCursor;
  ui.firstPage.disabled = !jobs.cursors.length && !jobs.cursor;
  ui.pageNote.textContent = `Page ${jobs.cursors.length + 1}, newest first` +
    (jobs.shown.length ? `: ${jobs.shown.length} jobs.` : ".");
  noteSelection();
  showTypes(answer.types);
}

function fillFilterForm(params) {
  for (const input of ui.filterForm.querySelectorAll("[data-filter]")) {
    const value = params[input.dataset.filter] || "";
    input.value = TIME_FILTERS.has(input.dataset.filter) && value ? localOf(value) : value;
  }
}

function showCounts(answer) {
  const counts = answer.counts || {};
  const items = [...STATUSES, "total"].map((status) => {
    const item = document.createElement("div");
    item.className = `count status-${status}`;
    item.dataset.testid = `count-${status}`;
    const value = element("dd", formatNumber(status === "total" ? answer.total ?? 0
                                                                 : counts[status] ?? 0));
    item.append(element("dt", status === "total" ? "matching" : status), value);
    return item;
  });
  ui.counts.replaceChildren(...items);
}

function jobRow(job) {
  const select = document.createElement("input");
  select.type = "checkbox";
  select.checked = jobs.selected.has(job.jobId);
  select.setAttribute("aria-label", `Select job ${job.jobId}`);
  select.dataset.testid = "row-select";
  select.addEventListener("change", () => {
    if (select.checked) {
      jobs.selected.add(job.jobId);
    } else {
      jobs.selected.delete(job.jobId);
    }
    noteSelection();
  });
  const selectCell = document.createElement("td");
  selectCell.append(select);
  const tr = row([
    selectCell,
    idCell(job.jobId),
    element("td", job.type),
    statusCell(job.status),
    numberCell(`${job.progress} %`),
    stepCell(job),
    ownerCell(job.owner),
    timeCell(job.createdAt),
    numberCell(spanOf(job.createdAt, job.finishedAt)),
  ]);
  tr.className = "job-row";
  tr.dataset.testid = "job-row";
  tr.dataset.jobId = job.jobId;
  tr.dataset.status = job.status;
  // A click anywhere but the box or the link opens the job's page.
  tr.addEventListener("click", (event) => {
    if (!event.target.closest("input, a") && !String(getSelection())) {
      navigate({ view: "job", id: job.jobId });
    }
  });
  return tr;
}

/** The id's first digits, a link to its page; the whole id on hover and when copied. */
function idCell(jobId) {
  const cell = document.createElement("td");
  const link = element("a", shortId(jobId));
  link.href = `#${fragmentFor({ view: "job", id: jobId })}`;
  link.title = jobId;
  link.className = "job-id";
  link.dataset.testid = "job-link";
  cell.append(link);
  cell.addEventListener("copy", (event) => {
    event.clipboardData.setData("text/plain", jobId);
    event.preventDefault();
  });
  return cell;
}

function statusCell(status) {
  const cell = document.createElement("td");
  const badge = element("span", status);
  badge.className = `badge status-${status}`;
  cell.append(badge);
  return cell;
}

function stepCell(job) {
  if (job.errorCode) {
    const cell = element("td", job.errorCode);
    cell.className = "error-code";
    return cell;
  }
  return textCell(job.currentStep);
}

function ownerCell(owner) {
  const cell = element("td", owner ? owner.kind : "\u2014");
  if (owner) {
    cell.title = owner.email ? `${owner.id} (${owner.email})` : owner.id;
  }
  return cell;
}

function timeCell(iso) {
  const cell = element("td", iso ? ago(iso) : "\u2014");
  if (iso) {
    cell.title = absolute(iso);
  }
  return cell;
}

function textCell(value) {
  const cell = element("td", value === null || value === undefined || value === ""
    ? "\u2014" : String(value));
  if (value === null || value === undefined) {
    cell.className = "null";
  }
  return cell;
}

function numberCell(text) {
  const cell = element("td", text);
  cell.className = "num";
  return cell;
}

function noteSelection() {
  const count = jobs.selected.size;
  ui.selectionNote.textContent = count ? `${count} selected.` : "No job selected.";
  ui.retrySelected.disabled = !count;
  ui.cancelSelected.disabled = !count;
}

/** Retry or cancel each selected job: one request each, each its own audit entry. */
function actOnSelected(action) {
  const ids = [...jobs.selected];
  act(ui.actionOutcome, async () => {
    let acted = 0;
    const skipped = [];
    for (const id of ids) {
      try {
        await api(`/ops/api/jobs/${encodeURIComponent(id)}/${action}`, { method: "POST",
                                                                          acting: true });
        acted += 1;
        jobs.selected.delete(id);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status === 401 || error.status === 0) {
          throw error;
        }
        skipped.push(`${shortId(id)}: ${error.code || error.status}`);
      }
    }
    return `${pastTense(action)} ${plural(acted, "job")}; skipped ${skipped.length}` +
      (skipped.length ? ` (${skipped.join(", ")}).` : ".");
  });
}

/** All matching the filter: the dry run's count first, acted on once typed back. */
function dryRun(action) {
  const filter = filterOf(route().params);
  hide(ui.confirmForm);
  act(ui.actionOutcome, async () => {
    const plan = await api(`/ops/api/jobs/${action}`, { method: "POST", acting: true,
                                                         body: { filter, dryRun: true } });
    jobs.bulk = { action, filter, matching: plan.matching };
    const byStatus = Object.entries(plan.byStatus || {}).filter(([, n]) => n)
      .map(([status, n]) => `${n} ${status}`).join(", ");
    ui.confirmText.textContent = `${plural(plan.matching, "job")} matching ` +
      `${describeFilter(filter)} can be ${pastTense(action).toLowerCase()}` +
      (byStatus ? ` (${byStatus})` : "") + `. Type ${plan.matching} to ${action} them.`;
    ui.confirmInput.value = "";
    show(ui.confirmForm);
    ui.confirmInput.focus();
    return `Dry run: ${plural(plan.matching, "job")} would be ${pastTense(action).toLowerCase()}.` +
      " Nothing done yet.";
  });
}

function confirmBulk() {
  const bulk = jobs.bulk;
  if (!bulk) {
    return;
  }
  if (ui.confirmInput.value.trim() !== String(bulk.matching)) {
    say(ui.actionOutcome, `Type ${bulk.matching}, the number of jobs, to confirm.`, true);
    return;
  }
  jobs.bulk = null;
  hide(ui.confirmForm);
  act(ui.actionOutcome, async () => {
    const done = await api(`/ops/api/jobs/${bulk.action}`, {
      method: "POST", acting: true, body: { filter: bulk.filter, expect: bulk.matching } });
    return `${pastTense(bulk.action)} ${plural(done.acted ?? 0, "job")}; skipped ` +
      `${done.skipped ?? 0} (changed state meanwhile).`;
  });
}

function describeFilter(filter) {
  const parts = Object.entries(filter || {}).map(([name, value]) => `${name}=${value}`);
  return parts.length ? `the filter ${parts.join(", ")}` : "no filter (every job)";
}

// ---- the job types: pause and resume (GET /ops/api/types, POST .../pause, .../resume) ----

function showTypes(answer) {
  if (answer.error) {
    ui.typesError.textContent = answer.error.status === 404 || answer.error.status === 405
      ? "Pausing a job type is not available on this server."
      : `The job types could not be loaded (${answer.error.message}).`;
    show(ui.typesError);
    ui.typesBody.replaceChildren();
    return;
  }
  hide(ui.typesError);
  const types = Array.isArray(answer.types) ? answer.types : [];
  ui.typesBody.replaceChildren(...types.map((type) => {
    const button = element("button", type.paused ? "Resume" : "Pause\u2026");
    button.type = "button";
    button.className = type.paused ? "" : "secondary";
    button.dataset.testid = type.paused ? "resume-type" : "pause-type";
    button.addEventListener("click", () => (type.paused ? resumeType(type.type)
                                                         : askPauseReason(type.type)));
    const actionCell = document.createElement("td");
    actionCell.append(button);
    const state = element("td", type.paused ? "paused" : "running");
    state.className = type.paused ? "paused" : "";
    state.dataset.testid = "type-state";
    const held = numberCell(formatNumber(type.heldJobs ?? 0));
    held.dataset.testid = "type-held";
    const tr = row([element("td", type.type), state, held, textCell(type.reason),
                    textCell(type.pausedBy), timeCell(type.pausedAt), actionCell]);
    tr.dataset.testid = "type-row";
    tr.dataset.type = type.type;
    return tr;
  }));
}

function askPauseReason(type) {
  jobs.pausing = type;
  ui.pauseLabel.textContent = `Why pause ${type}? Its users see this reason.`;
  ui.pauseReason.value = "";
  show(ui.pauseForm);
  ui.pauseReason.focus();
}

function pauseType() {
  const type = jobs.pausing;
  const reason = ui.pauseReason.value.trim();
  if (!type) {
    return;
  }
  if (!reason) {
    say(ui.actionOutcome, "Say why: the reason is shown to the users of the type.", true);
    ui.pauseReason.focus();
    return;
  }
  jobs.pausing = null;
  hide(ui.pauseForm);
  act(ui.actionOutcome, async () => {
    const done = await api(`/ops/api/types/${encodeURIComponent(type)}/pause`,
                           { method: "POST", acting: true, body: { reason } });
    return done.changed
      ? `Paused ${type}: ${plural(done.heldBack ?? 0, "queued job")} held back.`
      : `${type} was already paused.`;
  });
}

function resumeType(type) {
  act(ui.actionOutcome, async () => {
    const done = await api(`/ops/api/types/${encodeURIComponent(type)}/resume`,
                           { method: "POST", acting: true });
    return done.changed
      ? `Resumed ${type}: ${plural(done.released ?? 0, "held job")} released.`
      : `${type} was not paused.`;
  });
}

// ---- view: one job's page (GET /ops/api/jobs/<id>) ----

function startJob() {
  ui.jobRetry.addEventListener("click", () => actOnJob("retry"));
  ui.jobCancel.addEventListener("click", () => actOnJob("cancel"));
}

function fetchJob(params) {
  if (!/^[0-9a-fA-F-]{36}$/.test(params.id || "")) {
    return Promise.reject(new ApiError(400, "VALIDATION_ERROR",
                                       "the page's address names no job id"));
  }
  return api(`/ops/api/jobs/${encodeURIComponent(params.id)}`);
}

function actOnJob(action) {
  const { id } = route().params;
  act(ui.jobOutcome, async () => {
    await api(`/ops/api/jobs/${encodeURIComponent(id)}/${action}`, { method: "POST",
                                                                      acting: true });
    return action === "retry" ? "Retried: the job is queued again."
                              : "Cancel requested: a queued job stops at once, a running one " +
                                "within seconds.";
  });
}

function showJob(answer) {
  const { job, owner } = answer;
  ui.jobView.dataset.status = job.status;
  ui.jobTitle.textContent = `${job.type} ${job.jobId}`;
  ui.jobRetry.disabled = job.status !== "failed";
  ui.jobCancel.disabled = !ACTIVE.has(job.status) || Boolean(job.cancelRequestedAt);
  const facts = [
    ["Status", job.status, "status"],
    ["Progress", `${job.progress} %`, "progress"],
    ["Current step", job.currentStep, "current-step"],
    ["errorCode", job.errorCode, "error-code"],
    ["Error", job.error, "error"],
    ["Attempt", job.attempt, "attempt"],
    ["Lost runs", job.lostRuns, "lost-runs"],
    ["Owner", owner ? `${owner.kind} ${owner.id}${owner.email ? ` (${owner.email})` : ""}`
                    : null, "owner"],
    ["LLM calls", job.llmCalls, "llm-calls"],
    ["LLM tokens", job.llmTokens, "llm-tokens"],
    ["Created", job.createdAt, "created", true],
    ["Run started", job.runStartedAt, "run-started", true],
    ["Cancel requested", job.cancelRequestedAt, "cancel-requested", true],
    ["Finished", job.finishedAt, "finished", true],
    ["Took", job.finishedAt ? spanOf(job.createdAt, job.finishedAt) : null, "took"],
    ["Dispatch", job.dispatchId, "dispatch"],
  ];
  ui.jobFacts.replaceChildren(...facts.map(([label, value, name, isTime]) => {
    const item = document.createElement("div");
    item.className = "fact";
    item.dataset.testid = `fact-${name}`;
    const shown = value === null || value === undefined || value === ""
      ? "\u2014"
      : isTime ? `${absolute(value)} (${ago(value)})` : String(value);
    item.append(element("dt", label), element("dd", shown));
    return item;
  }));
  const steps = Array.isArray(answer.steps) ? answer.steps : [];
  ui.jobTimeline.replaceChildren(...(steps.length ? [timeline(steps)] : []));
  fillRecords(byTestId(ui.jobView, "job-steps"), [
    ["Step", (s) => s.step], ["Attempt", (s) => s.attempt], ["Outcome", (s) => s.outcome],
    ["Started", (s) => absolute(s.startedAt)], ["Duration", (s) => msText(s.durationMs), true],
    ["LLM calls", (s) => s.llmCalls, true],
    ["Tokens in / out", (s) => `${s.inputTokens} / ${s.outputTokens}`, true],
    ["Re-asks", (s) => s.reasks, true],
  ], steps, "No step has run yet.");
  fillRecords(byTestId(ui.jobView, "job-dispatches"), [
    ["Id", (d) => d.id], ["Status", (d) => d.status], ["Queue", (d) => d.queue],
    ["Attempts", (d) => d.attempts, true], ["Worker", (d) => d.workerId],
    ["Events", (d) => (Array.isArray(d.events) ? d.events : [])
      .map((e) => `${e.type} ${e.at ? clockTime(e.at) : ""}`.trim()).join(", ")],
  ], Array.isArray(answer.dispatches) ? answer.dispatches : [],
  "None left: procrastinate deletes a dispatch as it succeeds, the others a day later.");
  const images = Array.isArray(answer.images) ? answer.images : [];
  ui.jobImages.replaceChildren(...(images.length ? images.map((image) => {
    const item = document.createElement("li");
    item.dataset.testid = "job-image";
    const url = element("code", image.url);
    item.append(url, element("span", ` \u2014 ${image.prompt || ""}`));
    return item;
  }) : [element("li", "No image.")]));
  ui.jobInput.textContent = JSON.stringify(job.input, null, 2);
  ui.jobDocument.textContent = answer.statusDocument === null
    ? "Nothing: its owner is gone."
    : JSON.stringify(answer.statusDocument, null, 2);
  fillRecords(byTestId(ui.jobView, "job-audit"), auditColumns(),
              Array.isArray(answer.audit) ? answer.audit : [], "No operator has acted on it.");
}

/** The steps on one time axis from the first start: a bar per run, coloured by outcome. */
function timeline(steps) {
  const starts = steps.map((s) => Date.parse(s.startedAt));
  const ends = steps.map((s, i) => starts[i] + Math.max(Number(s.durationMs) || 0, 0));
  const first = Math.min(...starts);
  const span = Math.max(Math.max(...ends) - first, 1);
  const labelW = 140;
  const valueW = 70;
  const barH = 16;
  const height = steps.length * (barH + 4) + 4;
  const plotW = WIDTH - labelW - valueW;
  const svg = svgElement("svg", { viewBox: `0 0 ${WIDTH} ${height}`, class: "chart-svg",
                                  role: "img", "aria-label": "Steps on a time axis",
                                  "data-testid": "timeline" });
  steps.forEach((s, i) => {
    const y = 4 + i * (barH + 4);
    const x = labelW + ((starts[i] - first) / span) * plotW;
    const w = Math.max(((ends[i] - starts[i]) / span) * plotW, 1);
    svg.append(svgElement("text", { x: labelW - 8, y: y + barH / 2, class: "label end" },
                          s.attempt > 1 ? `${s.step} (${s.attempt})` : s.step));
    const bar = svgElement("rect", { x: x.toFixed(1), y, width: w.toFixed(1), height: barH,
                                     class: `step-bar outcome-${s.outcome}`,
                                     "data-testid": "timeline-bar" });
    bar.append(svgElement("title", {}, `${s.step}: ${s.outcome}, ${msText(s.durationMs)}, ` +
                          `${s.llmCalls} LLM calls`));
    svg.append(bar);
    svg.append(svgElement("text", { x: x + w + 4, y: y + barH / 2, class: "value" },
                          msText(s.durationMs)));
  });
  return svg;
}

// ---- view: the audit trail (GET /ops/api/audit) ----

function startAudit() {
  ui.auditNext.addEventListener("click", () => {
    audit.cursors.push(audit.cursor);
    audit.cursor = audit.next;
    load();
  });
  ui.auditFirst.addEventListener("click", () => {
    audit.cursors = [];
    audit.cursor = null;
    load();
  });
}

function fetchAudit() {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE),
                                      ...(audit.cursor ? { cursor: audit.cursor } : {}) });
  return api(`/ops/api/audit?${query}`);
}

function showAudit(answer) {
  audit.next = answer.nextCursor;
  fillRecords(byTestId(ui.auditView, "audit-table"), auditColumns(),
              Array.isArray(answer.entries) ? answer.entries : [], "No operator action yet.");
  ui.auditNext.disabled = !answer.nextCursor;
  ui.auditFirst.disabled = !audit.cursors.length && !audit.cursor;
}

function auditColumns() {
  return [
    ["When", (e) => ago(e.at), false, (e) => absolute(e.at)],
    ["Who", (e) => e.actor], ["What", (e) => e.action], ["Jobs", (e) => e.jobCount, true],
    ["Which", auditWhich],
    ["Detail", (e) => Object.entries(e.detail || {}).map(([key, value]) =>
      `${key} ${typeof value === "object" ? JSON.stringify(value) : value}`).join(", ")],
  ];
}

/** The jobs an entry names (links to their pages), or the filter it acted by. */
function auditWhich(entry) {
  const ids = Array.isArray(entry.jobIds) ? entry.jobIds : [];
  const part = document.createElement("span");
  if (entry.filter && Object.keys(entry.filter).length) {
    part.append(element("span", `${describeFilter(entry.filter)} `));
  }
  ids.slice(0, 5).forEach((id) => {
    const link = element("a", shortId(id));
    link.href = `#${fragmentFor({ view: "job", id })}`;
    link.title = id;
    link.className = "job-id";
    part.append(link, " ");
  });
  if (ids.length > 5) {
    part.append(element("span", `and ${ids.length - 5} more`));
  }
  return part;
}

/** A table of records: each column a label, a value of the record (text or a node),
 * whether it is a number, and a hover text. */
function fillRecords(table, columns, records, empty) {
  table.querySelector("thead tr").replaceChildren(...columns.map(([label, , isNumber]) => {
    const th = element("th", label);
    th.scope = "col";
    th.className = isNumber ? "num" : "";
    return th;
  }));
  const body = table.querySelector("tbody");
  if (!records.length) {
    const cell = element("td", empty);
    cell.colSpan = columns.length;
    cell.className = "empty";
    body.replaceChildren(row([cell]));
    return;
  }
  body.replaceChildren(...records.map((record) => {
    const tr = row(columns.map(([, value, isNumber, hover]) => {
      const shown = value(record);
      const cell = shown instanceof Node ? document.createElement("td") : textCell(shown);
      if (shown instanceof Node) {
        cell.append(shown);
      }
      if (isNumber) {
        cell.classList.add("num");
      }
      if (hover) {
        cell.title = hover(record);
      }
      return cell;
    }));
    tr.dataset.testid = "record-row";
    return tr;
  }));
}

// ---- times and words ----

/** A datetime-local value (the operator's local time) as ISO 8601 in UTC, and back. */
function utcOf(local) {
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? local : at.toISOString();
}

function localOf(iso) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) {
    return "";
  }
  const shifted = new Date(at.getTime() - at.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 19);
}

function ago(iso) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) {
    return String(iso);
  }
  const seconds = (Date.now() - at) / 1000;
  return seconds < 1 ? "just now" : `${duration(Math.round(seconds))} ago`;
}

function absolute(iso) {
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? String(iso) : at.toLocaleString();
}

/** From start to end (or to now, for a job still going: "4 s so far"). */
function spanOf(startIso, endIso) {
  const start = Date.parse(startIso);
  const end = endIso ? Date.parse(endIso) : Date.now();
  if (Number.isNaN(start) || Number.isNaN(end)) {
    return "\u2014";
  }
  const text = duration(Math.max(end - start, 0) / 1000);
  return endIso ? text : `${text} so far`;
}

function msText(ms) {
  return ms === null || ms === undefined ? "\u2014" : formatValue(Number(ms), "ms");
}

function plural(count, noun) {
  return `${formatNumber(count)} ${noun}${count === 1 ? "" : "s"}`;
}

function pastTense(action) {
  return action === "retry" ? "Retried" : "Cancelled";
}

/** The id's first and last digits: ids are UUIDv7, whose first digits are the time of
 * creation, so jobs created together share them. */
function shortId(id) {
  return `${id.slice(0, 8)}\u2026${id.slice(-6)}`;
}

function byTestId(root, id) {
  return root.querySelector(`[data-testid="${id}"]`);
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
