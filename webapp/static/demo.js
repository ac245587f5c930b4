/**
 * The demo page: analyse a website with the jobs API through jobs-client.js.
 *
 * Every string from the server is rendered as text (textContent or text nodes), never
 * as HTML; links are made only for http(s) URLs. Elements carry data-testid attributes
 * for browser tests; #job carries data-status (queued, running, succeeded, failed, lost),
 * #transport data-transport (stream or polling: how updates of a running job arrive), and
 * #app data-ready="true" once this module has started.
 */

import { JobsClient, anonymousSession } from "./jobs-client.js";

const JOB_TYPE = "website-analysis";
const STEPS = ["Analyzing website...", "Generating audiences...", "Generating pitches...",
               "Generating images..."];
const ACTIVE = new Set(["queued", "running"]);
const STATUS_TEXT = { queued: "Queued", running: "Running", succeeded: "Done",
                      failed: "Failed" };
const TRANSPORT = {
  stream: ["Live", "Updates arrive as they happen (event stream)."],
  polling: ["Polling", "Live updates are unavailable: checking every few seconds."],
};

const ui = {
  app: byId("app"),
  form: byId("analyze-form"),
  url: byId("url-input"),
  analyze: byId("analyze-button"),
  notice: byId("connection-notice"),
  errorBox: byId("error-box"),
  errorCode: byId("error-code"),
  errorMessage: byId("error-message"),
  errorFields: byId("error-fields"),
  job: byId("job"),
  status: byId("job-status"),
  transport: byId("transport"),
  steps: [...byId("progress-steps").querySelectorAll("li")],
  progress: byId("progress-bar"),
  percent: byId("progress-percent"),
  step: byId("current-step"),
  eta: byId("eta"),
  jobId: byId("job-id"),
  cancel: byId("cancel-button"),
  retry: byId("retry-button"),
  result: byId("result"),
  session: byId("session-id"),
};

const session = anonymousSession();
const client = new JobsClient({ identity: { "x-session-id": session }, namespace: "jobs-demo" });
let currentJobId = null;
let cancelling = false;

/** Callbacks of the job on screen; updates of any other job are ignored. */
const callbacks = {
  onUpdate(doc) {
    if (isCurrent(doc.jobId)) {
      hideNotice();
      renderStatus(doc);
    }
  },
  onDone(doc) {
    if (isCurrent(doc.jobId)) {
      renderResult(doc.result || {});
    }
  },
  onFailed(doc) {
    if (isCurrent(doc.jobId)) {
      showError({ errorCode: doc.errorCode, message: doc.error });
    }
  },
  onConnectionProblem(info) {
    if (info.jobId === null || isCurrent(info.jobId)) {
      showNotice(info);
    }
  },
  onConnectionRestored(info) {
    if (isCurrent(info.jobId)) {
      hideNotice();
    }
  },
  onTransport(info) {
    if (isCurrent(info.jobId)) {
      renderTransport(info.transport);
    }
  },
  onLost(info) {
    if (isCurrent(info.jobId)) {
      ui.job.dataset.status = "lost";
      setText(ui.status, "This job is no longer available.");
      setActions(null);
      showError({ errorCode: info.error.errorCode,
                  message: "The job is unknown here: it expired, or it belongs to "
                           + "another session." });
    }
  },
};

// --- actions ------------------------------------------------------------------------------

async function analyze(event) {
  event.preventDefault();
  const url = normalizeUrl(ui.url.value);
  if (!url) {
    showError({ errorCode: "VALIDATION_ERROR", message: "Enter a website address." });
    ui.url.focus();
    return;
  }
  if (currentJobId) {
    client.forget(currentJobId); // it runs on, but this page follows the new one
  }
  showJob(null);
  setText(ui.status, "Submitting...");
  ui.analyze.disabled = true;
  try {
    showJob(await client.create(JOB_TYPE, { url }, callbacks));
    setText(ui.status, "Queued");
  } catch (error) {
    ui.job.hidden = true;
    showError(error);
  } finally {
    ui.analyze.disabled = false;
  }
}

async function cancel() {
  cancelling = true;
  ui.cancel.disabled = true;
  setText(ui.status, "Cancelling...");
  try {
    await client.cancel(currentJobId);
  } catch (error) {
    cancelling = false;
    ui.cancel.disabled = false;
    showError(error);
  }
}

async function retry() {
  const jobId = currentJobId;
  ui.retry.disabled = true;
  hideError();
  try {
    await client.retry(jobId, callbacks);
    ui.retry.hidden = true;
    setText(ui.status, "Retrying...");
  } catch (error) {
    showError(error);
  } finally {
    ui.retry.disabled = false;
  }
}

/** After a reload: follow the newest remembered analysis, forget older ones. */
function resume() {
  const mine = client.stored().filter((job) => job.type === JOB_TYPE || !job.type);
  const latest = mine.at(-1);
  for (const job of mine.slice(0, -1)) {
    client.forget(job.jobId);
  }
  if (latest) {
    showJob(latest.jobId);
    setText(ui.status, "Resuming...");
    client.resumeAll(callbacks);
  }
}

// --- rendering: job -------------------------------------------------------------------------

function showJob(jobId) {
  currentJobId = jobId;
  cancelling = false;
  hideError();
  hideNotice();
  clearResult();
  ui.job.hidden = false;
  ui.job.dataset.status = jobId ? "queued" : "";
  setText(ui.jobId, jobId || "");
  renderSteps(null, "queued");
  ui.progress.value = 0;
  setText(ui.percent, "0%");
  setText(ui.step, "\u2014");
  setText(ui.eta, "\u2014");
  setActions(jobId ? "queued" : null);
  renderTransport(null);
}

/** The small badge by the heading: how updates arrive while the job is active. */
function renderTransport(transport) {
  const [label, title] = TRANSPORT[transport] || ["", ""];
  ui.transport.dataset.transport = transport || "";
  setText(ui.transport, label);
  ui.transport.title = title;
  ui.transport.hidden = !label || !ACTIVE.has(ui.job.dataset.status);
}

function renderStatus(doc) {
  const progress = clampPercent(doc.progress);
  ui.job.dataset.status = doc.status;
  setText(ui.jobId, doc.jobId);
  setText(ui.status, describe(doc, progress));
  ui.progress.value = progress;
  setText(ui.percent, `${progress}%`);
  setText(ui.step, doc.currentStep || (doc.status === "queued" ? "Waiting for a worker"
                                                               : "\u2014"));
  setText(ui.eta, formatEta(doc));
  renderSteps(doc.currentStep, doc.status);
  if (!ACTIVE.has(doc.status)) {
    cancelling = false;
  }
  setActions(doc.status);
  renderTransport(ui.transport.dataset.transport);
}

function describe(doc, progress) {
  const status = STATUS_TEXT[doc.status] || String(doc.status);
  if (cancelling && ACTIVE.has(doc.status)) {
    return `Cancelling... (${progress}%)`;
  }
  if (doc.status === "running" && doc.currentStep) {
    return `${status}: ${doc.currentStep} (${progress}%)`;
  }
  return doc.status === "failed" ? `${status}: ${doc.errorCode || "error"}` : status;
}

/** The four steps: done, current (or failed) and pending ones. */
function renderSteps(currentStep, status) {
  const index = STEPS.indexOf(currentStep);
  ui.steps.forEach((item, position) => {
    let state = "pending";
    if (status === "succeeded" || position < index) {
      state = "done";
    } else if (position === index) {
      state = status === "failed" ? "failed" : "current";
    }
    item.dataset.state = state;
    setText(item.querySelector(".state"), state === "pending" ? "" : `(${state})`);
    if (state === "current" || state === "failed") {
      item.setAttribute("aria-current", "step");
    } else {
      item.removeAttribute("aria-current");
    }
  });
}

function setActions(status) {
  ui.cancel.hidden = !ACTIVE.has(status);
  ui.cancel.disabled = cancelling;
  ui.retry.hidden = status !== "failed";
}

function formatEta(doc) {
  if (doc.status === "succeeded") {
    return "Done";
  }
  if (!ACTIVE.has(doc.status)) {
    return "\u2014";
  }
  const seconds = doc.estimatedTimeRemaining;
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) {
    return "Estimating...";
  }
  if (seconds < 60) {
    return `About ${Math.max(1, Math.round(seconds))} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `About ${minutes} min ${Math.round(seconds % 60)} s`;
}

// --- rendering: result ----------------------------------------------------------------------

function renderResult(result) {
  const analysis = result.analysis || {};
  setText(byId("business-name"), analysis.businessName || "Analysis");
  setText(byId("result-url"), result.url || "");
  setText(byId("result-business-type"), analysis.businessType);
  setText(byId("result-industry"), analysis.industry);
  setText(byId("result-description"), analysis.description);
  setText(byId("result-audience"), analysis.targetAudience);
  setText(byId("result-voice"), analysis.brandVoice);
  byId("result-keywords").replaceChildren(
    ...asList(analysis.keywords).map((word) => el("li", { "data-testid": "keyword" }, word)));
  byId("scenarios").replaceChildren(...asList(result.scenarios).map(scenarioCard));
  const ctas = asList(result.ctas).map(ctaItem);
  byId("ctas").replaceChildren(...(ctas.length ? ctas : [el("li", {}, "None found.")]));
  const meta = result.metadata || {};
  setText(byId("result-meta"), meta.provider
    ? `Made by the ${meta.provider} provider${meta.model ? ` (${meta.model})` : ""}.` : "");
  ui.result.hidden = false;
}

function scenarioCard(scenario) {
  const audience = scenario.audience || {};
  const picture = el("div", { class: "picture", "data-testid": "scenario-image-box" },
                     el("span", { class: "placeholder" }, "Loading image..."));
  loadImage(picture, scenario.imageUrl, audience.name);
  return el("article", { class: "card", "data-testid": "scenario-card",
                         "data-scenario-id": scenario.id || "" },
    picture,
    el("h4", { "data-testid": "scenario-audience" }, audience.name || "Audience"),
    el("p", { "data-testid": "scenario-description" }, audience.description || ""),
    el("p", { class: "label" }, "Pain points"),
    el("ul", { "data-testid": "scenario-pain-points" },
       ...asList(audience.painPoints).map((point) => el("li", {}, point))),
    el("p", { class: "label" }, "Pitch"),
    el("blockquote", { class: "pitch", "data-testid": "scenario-pitch" }, scenario.pitch || ""));
}

/** The image through client.imageUrl (fetch with identity headers, object URL). */
function loadImage(box, path, audienceName) {
  if (!path) {
    box.replaceChildren(el("span", { class: "placeholder" }, "No image"));
    return;
  }
  client.imageUrl(path).then((objectUrl) => {
    const image = el("img", { alt: `Illustration for ${audienceName || "this audience"}`,
                              "data-testid": "scenario-image" });
    image.src = objectUrl;
    box.replaceChildren(image);
  }, (error) => {
    box.replaceChildren(el("span", { class: "placeholder" },
                           `Image unavailable (${error.errorCode || "error"})`));
  });
}

function ctaItem(cta) {
  const text = String(cta.text || cta.href || "Link");
  const href = httpUrl(cta.href);
  const node = href
    ? el("a", { href, rel: "noopener noreferrer nofollow", target: "_blank",
                "data-testid": "cta-link" }, text)
    : el("span", { "data-testid": "cta-text" }, text);
  return el("li", {}, node);
}

function clearResult() {
  client.revokeImages();
  ui.result.hidden = true;
  byId("scenarios").replaceChildren();
  byId("ctas").replaceChildren();
  byId("result-keywords").replaceChildren();
}

// --- messages -------------------------------------------------------------------------------

/** Shows an API error ({errorCode, message|error, fields, retryAfter}) as plain text. */
function showError(error) {
  setText(ui.errorCode, `${error.errorCode || "ERROR"}:`);
  let message = error.message || error.error || "Something went wrong.";
  if (typeof error.retryAfter === "number") {
    message += ` Try again in ${error.retryAfter} s.`;
  }
  setText(ui.errorMessage, message);
  ui.errorFields.replaceChildren(...flattenFields(error.fields).map(
    ([name, text]) => el("li", {}, `${name}: ${text}`)));
  ui.errorBox.hidden = false;
}

function hideError() {
  ui.errorBox.hidden = true;
  setText(ui.errorCode, "");
  setText(ui.errorMessage, "");
  ui.errorFields.replaceChildren();
}

function showNotice(info) {
  const seconds = Math.ceil(info.delayMs / 1000);
  setText(ui.notice, `Connection problem (${info.errorCode}: ${info.message}). `
                     + `Trying again in ${seconds} s...`);
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
  setText(ui.notice, "");
}

/** {"url": ["Not a URL."], "a": {"b": ["..."]}} → [["url", "Not a URL."], ["a.b", "..."]] */
function flattenFields(fields, prefix = "") {
  if (!fields || typeof fields !== "object") {
    return [];
  }
  return Object.entries(fields).flatMap(([name, value]) => {
    const path = prefix ? `${prefix}.${name}` : name;
    if (Array.isArray(value)) {
      return value.every((item) => typeof item !== "object")
        ? [[path, value.join(" ")]] : value.flatMap((item) => flattenFields(item, path));
    }
    return value && typeof value === "object" ? flattenFields(value, path)
                                               : [[path, String(value)]];
  });
}

// --- small helpers --------------------------------------------------------------------------

function byId(id) {
  return document.getElementById(id);
}

function isCurrent(jobId) {
  return jobId !== null && jobId === currentJobId;
}

function setText(node, value) {
  node.textContent = value === null || value === undefined ? "" : String(value);
}

/** An element with attributes and children; strings become text nodes, never markup. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, value);
  }
  node.append(...children.map((child) => (child instanceof Node ? child : String(child))));
  return node;
}

function asList(value) {
  return Array.isArray(value) ? value : [];
}

function clampPercent(value) {
  const number = Number(value);
  return Number.isFinite(number) ? Math.min(100, Math.max(0, Math.round(number))) : 0;
}

/** The URL if it is absolute http(s), else null (javascript:, data:, relative...). */
function httpUrl(value) {
  try {
    const url = new URL(String(value));
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** What the user typed, with https:// added when no scheme is given; "" if empty.
 * The server decides what is valid (http or https with a host). */
function normalizeUrl(value) {
  const text = value.trim();
  if (!text) {
    return "";
  }
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
}

ui.session.textContent = session;
ui.form.addEventListener("submit", analyze);
ui.cancel.addEventListener("click", cancel);
ui.retry.addEventListener("click", retry);
resume();
ui.app.dataset.ready = "true";
