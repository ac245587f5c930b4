/**
 * jobs-client.js: the reference browser client of the jobs API (contract §5).
 *
 * A dependency-free ES module for modern browsers; no build step. It implements the
 * recommended flow for any job type:
 *
 *   1. create(type, body)  POST /api/v1/jobs/<type> with a fresh Idempotency-Key, so a
 *                          retried request cannot make two jobs; the job is remembered
 *                          in storage so that a page reload can pick it up again.
 *   2. watch(jobId)        GET /api/v1/jobs/<id>/status every 2-3 s with If-None-Match
 *                          (304 = nothing changed). Network errors, 429 and 503 back off
 *                          exponentially (honouring Retry-After) and never give up.
 *   3. onDone / onFailed   the job leaves storage; retry(jobId) puts a failed job back.
 *
 * Usage:
 *
 *   import { JobsClient, anonymousSession } from "/static/jobs-client.js";
 *
 *   const client = new JobsClient({ identity: { "x-session-id": anonymousSession() } });
 *   const callbacks = {
 *     onUpdate: (doc) => showProgress(doc),      // every change of the status document
 *     onDone: (doc) => showResult(doc.result),   // status "succeeded"
 *     onFailed: (doc) => showError(doc),         // status "failed" (CANCELLED included)
 *   };
 *   client.resumeAll(callbacks);                 // jobs still running before a reload
 *   const jobId = await client.create("website-analysis", { url }, callbacks);
 *
 * Signed-in users pass a function, so that a refreshed token is used from then on:
 *   new JobsClient({ identity: () => ({ Authorization: `Bearer ${auth.accessToken}` }) })
 *
 * Images (/api/v1/images/<id>) need the identity headers too: a bare <img src> is
 * refused. Use `img.src = await client.imageUrl(scenario.imageUrl)`.
 */

const API_PREFIX = "/api/v1";
const SESSION_KEY = "jobs-client:session-id";
const SESSION_ID = /^[A-Za-z0-9_-]{8,128}$/;
const TERMINAL = new Set(["succeeded", "failed"]);
const CREATE_ATTEMPTS = 3;
// A same-origin API path: one leading slash, no backslash, whitespace or control
// characters (URL parsers turn "/\host" or "/<TAB>/host" into another origin).
const API_PATH = /^\/(?![/\\])[^\\\s\u0000-\u001f\u007f]*$/;

/**
 * @typedef {Object} StatusDocument  The body of GET /api/v1/jobs/<id>/status.
 * @property {string} jobId
 * @property {string} type
 * @property {"queued"|"running"|"succeeded"|"failed"} status
 * @property {number} progress                  0-100
 * @property {string|null} currentStep
 * @property {number|null} estimatedTimeRemaining  seconds (the wait included while queued)
 * @property {number|null} queuePosition  while queued: 1 = the next to start; else null
 * @property {string|null} error
 * @property {string|null} errorCode
 * @property {Object|null} result
 * @property {string} createdAt
 * @property {string} updatedAt
 */

/**
 * @typedef {Object} ConnectionProblem  What onConnectionProblem receives.
 * @property {string|null} jobId       null while creating a job
 * @property {number} attempt          consecutive failures so far
 * @property {number} delayMs          wait before the next attempt
 * @property {number} status           HTTP status, 0 for a network error or timeout
 * @property {string} errorCode        e.g. QUEUE_UNAVAILABLE, RATE_LIMITED, NETWORK_ERROR
 * @property {string} message
 * @property {number|null} retryAfter  seconds, from Retry-After
 * @property {JobsApiError} error
 */

/**
 * @typedef {Object} Callbacks  All optional. Exceptions thrown by them are logged and
 *   never stop the polling.
 * @property {(doc: StatusDocument) => void} [onUpdate]  every change, terminal ones included
 * @property {(doc: StatusDocument) => void} [onDone]    succeeded (after onUpdate)
 * @property {(doc: StatusDocument) => void} [onFailed]  failed (after onUpdate)
 * @property {(info: ConnectionProblem) => void} [onConnectionProblem]
 * @property {(info: {jobId: string}) => void} [onConnectionRestored]  first good answer
 *   after a problem
 * @property {(info: {jobId: string, error: JobsApiError}) => void} [onLost]  404: the job
 *   is unknown, expired or not visible with this identity
 */

/**
 * @typedef {Object} StoredJob  What the client keeps in storage per job.
 * @property {string} jobId
 * @property {string|null} type
 * @property {string} createdAt  ISO 8601
 */

/** An API answer other than success, or no answer at all (status 0). */
export class JobsApiError extends Error {
  /**
   * @param {string} message
   * @param {Object} [details]
   * @param {number} [details.status]            HTTP status; 0 = network error or timeout
   * @param {string} [details.errorCode]         the API's errorCode (contract §4)
   * @param {Object|null} [details.fields]       400: the invalid fields and their messages
   * @param {number|null} [details.retryAfter]   429/503: seconds to wait
   * @param {Object|null} [details.body]         the parsed error body
   * @param {unknown} [details.cause]
   */
  constructor(message, { status = 0, errorCode = "NETWORK_ERROR", fields = null,
                         retryAfter = null, body = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "JobsApiError";
    this.status = status;
    this.errorCode = errorCode;
    this.fields = fields;
    this.retryAfter = retryAfter;
    this.body = body;
  }
}

/**
 * The anonymous session id of this browser: created once (random, 8-128 characters of
 * [A-Za-z0-9_-]) and kept in storage. Send it as `{"x-session-id": id}`.
 * @param {Storage} [storage]  defaults to localStorage (memory when that is unavailable)
 * @returns {string}
 */
export function anonymousSession(storage = defaultStorage()) {
  const existing = readItem(storage, SESSION_KEY);
  if (existing && SESSION_ID.test(existing)) {
    return existing;
  }
  const created = `anon_${randomId()}`;
  writeItem(storage, SESSION_KEY, created);
  return created;
}

/** Polls, remembers and controls jobs of the jobs API. */
export class JobsClient {
  #baseUrl;
  #identity;
  #storage;
  #storageKey;
  #pollMs;
  #maxBackoffMs;
  #timeoutMs;
  #fetch;
  /** @type {Map<string, Object>} one watcher (poll loop) per jobId */
  #watchers = new Map();
  /** @type {Map<string, Promise<string>>} object URLs of fetched images, by path */
  #images = new Map();

  /**
   * @param {Object} options
   * @param {string} [options.baseUrl]  origin of the API, "" = this page's origin
   * @param {Object|(() => Object|Promise<Object>)} options.identity  headers, or a
   *   function returning them: {"x-session-id": id} or {Authorization: "Bearer ..."}
   * @param {Storage} [options.storage]  where jobs are remembered (localStorage)
   * @param {number} [options.pollMs]  delay between status polls
   * @param {number} [options.maxBackoffMs]  longest wait after errors
   * @param {typeof fetch} [options.fetchImpl]
   * @param {number} [options.requestTimeoutMs]  a request without an answer by then fails
   * @param {string} [options.namespace]  prefix of the storage key (one per application)
   */
  constructor({ baseUrl = "", identity = {}, storage = defaultStorage(), pollMs = 2500,
                maxBackoffMs = 30000, fetchImpl = globalThis.fetch, requestTimeoutMs = 15000,
                namespace = "jobs-client" } = {}) {
    if (typeof fetchImpl !== "function") {
      throw new TypeError("JobsClient needs fetch (pass fetchImpl).");
    }
    this.#baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.#identity = identity;
    this.#storage = storage;
    this.#storageKey = `${namespace}:jobs`;
    this.#pollMs = Math.max(1, Number(pollMs));
    this.#maxBackoffMs = Math.max(this.#pollMs, Number(maxBackoffMs));
    this.#timeoutMs = Math.max(1, Number(requestTimeoutMs));
    this.#fetch = (url, init) => fetchImpl(url, init); // never called as a method
  }

  /**
   * Creates a job, remembers it and starts watching it.
   * Network errors and 503 are retried twice with the same Idempotency-Key (reported
   * through onConnectionProblem); every other refusal is thrown.
   * @param {string} type  e.g. "website-analysis", "content-generation"
   * @param {Object} body  the request body of that job type
   * @param {Callbacks} [callbacks]
   * @returns {Promise<string>} the jobId
   * @throws {JobsApiError} 400 (fields), 401, 404, 413, 422, 429 (retryAfter), 503, 0
   */
  async create(type, body, callbacks = {}) {
    const path = `${API_PREFIX}/jobs/${encodeURIComponent(type)}`;
    const { jobId } = await this.#postCreate(path, body, callbacks);
    this.#remember({ jobId, type, createdAt: new Date().toISOString() });
    this.watch(jobId, callbacks);
    return jobId;
  }

  /**
   * Polls the job until it succeeds, fails or is lost. Only one poll loop runs per
   * jobId: watching a watched job just replaces its callbacks (and replays the last
   * known status document to them). Network errors, timeouts, 429, 503 and any other
   * unexpected answer (a 401 of an expired token too: an identity function is asked
   * again on every request) go to onConnectionProblem and are retried with backoff;
   * only 404 ends the watch (onLost).
   * @param {string} jobId
   * @param {Callbacks} [callbacks]
   */
  watch(jobId, callbacks = {}) {
    const existing = this.#watchers.get(jobId);
    if (existing) {
      existing.callbacks = callbacks;
      if (existing.document) {
        const document = existing.document;
        queueMicrotask(() => notify(callbacks.onUpdate, document));
      }
      return;
    }
    const watcher = { jobId, callbacks, etag: null, document: null, failures: 0,
                      timer: null, controller: null };
    this.#watchers.set(jobId, watcher);
    this.#schedule(watcher, 0);
  }

  /**
   * Watches again every job remembered in storage (after a page reload).
   * @param {Callbacks|((job: StoredJob) => Callbacks)} [callbacks]  the same callbacks
   *   for all, or a function choosing them per job
   * @returns {StoredJob[]} the jobs now watched
   */
  resumeAll(callbacks = {}) {
    const jobs = this.stored();
    for (const job of jobs) {
      this.watch(job.jobId, typeof callbacks === "function" ? callbacks(job) : callbacks);
    }
    return jobs;
  }

  /**
   * The jobs remembered in storage, oldest first.
   * @returns {StoredJob[]}
   */
  stored() {
    return Object.values(this.#readJobs())
      .filter((job) => job && typeof job.jobId === "string")
      .sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt)));
  }

  /**
   * Puts a failed job (cancelled ones included) back in the queue, remembers it and
   * watches it again. The same jobId resumes at the step that failed.
   * @param {string} jobId
   * @param {Callbacks} [callbacks]
   * @returns {Promise<string>} the jobId
   * @throws {JobsApiError} 409 JOB_NOT_RETRYABLE, 404 (the job is then forgotten), 429
   */
  async retry(jobId, callbacks = {}) {
    try {
      await this.#post(`${this.#jobPath(jobId)}/retry`);
    } catch (error) {
      if (error.status === 404) {
        this.forget(jobId);
      }
      throw error;
    }
    this.stop(jobId); // a fresh loop: no stale ETag, no backoff
    const known = this.#readJobs()[jobId];
    this.#remember({ jobId, type: known ? known.type : null,
                     createdAt: known ? known.createdAt : new Date().toISOString() });
    this.watch(jobId, callbacks);
    return jobId;
  }

  /**
   * Asks to cancel a queued or running job. The watcher then sees it `failed` with
   * errorCode CANCELLED (at once when queued, within seconds when running).
   * @param {string} jobId
   * @returns {Promise<void>}
   * @throws {JobsApiError} 409 JOB_NOT_CANCELLABLE (already finished), 404
   */
  async cancel(jobId) {
    await this.#post(`${this.#jobPath(jobId)}/cancel`);
    this.#pollSoon(jobId);
  }

  /**
   * Stops polling the job; it stays in storage (resumeAll picks it up again).
   * @param {string} jobId
   * @returns {boolean} whether it was being watched
   */
  stop(jobId) {
    const watcher = this.#watchers.get(jobId);
    if (!watcher) {
      return false;
    }
    this.#watchers.delete(jobId);
    clearTimeout(watcher.timer);
    if (watcher.controller) {
      watcher.controller.abort();
    }
    return true;
  }

  /** Stops every poll loop (storage is kept). */
  stopAll() {
    for (const jobId of [...this.#watchers.keys()]) {
      this.stop(jobId);
    }
  }

  /**
   * Stops polling the job and removes it from storage. The job itself goes on.
   * @param {string} jobId
   */
  forget(jobId) {
    this.stop(jobId);
    const jobs = this.#readJobs();
    if (jobId in jobs) {
      delete jobs[jobId];
      this.#writeJobs(jobs);
    }
  }

  /**
   * Fetches an image of a result (e.g. "/api/v1/images/<id>") with the identity headers
   * and resolves to an object URL for <img src>. Cached per path until revokeImages().
   * Only same-origin API paths are accepted, so identity headers never leave the API.
   * @param {string} path
   * @returns {Promise<string>}
   * @throws {JobsApiError} 404 (not visible), 0 (network), INVALID_IMAGE_PATH
   */
  imageUrl(path) {
    if (typeof path !== "string" || !API_PATH.test(path)) {
      return Promise.reject(new JobsApiError("Not an API path.",
                                             { errorCode: "INVALID_IMAGE_PATH" }));
    }
    let pending = this.#images.get(path);
    if (!pending) {
      pending = this.#fetchImage(path);
      this.#images.set(path, pending);
      const cached = pending;
      cached.catch(() => {
        if (this.#images.get(path) === cached) {
          this.#images.delete(path); // a failed image can be asked for again
        }
      });
    }
    return pending;
  }

  /** Releases every object URL made by imageUrl(). */
  revokeImages() {
    for (const pending of this.#images.values()) {
      pending.then((url) => URL.revokeObjectURL(url), () => {});
    }
    this.#images.clear();
  }

  // --- requests -----------------------------------------------------------------------

  async #postCreate(path, body, callbacks) {
    const headers = { "Idempotency-Key": randomId() }; // the same key on every attempt
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.#post(path, body, headers);
      } catch (error) {
        const transient = error.status === 0 || error.status === 503;
        if (!transient || attempt >= CREATE_ATTEMPTS) {
          throw error;
        }
        const delayMs = this.#backoffMs(attempt, error.retryAfter);
        notify(callbacks.onConnectionProblem, problemInfo(null, attempt, delayMs, error));
        await sleep(delayMs);
      }
    }
  }

  async #post(path, body, headers = {}) {
    const init = { method: "POST", headers: { ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await this.#send(path, init);
    const data = await readJson(response);
    if (!response.ok) {
      throw apiError(response, data);
    }
    return data;
  }

  async #fetchImage(path) {
    const response = await this.#send(path, { method: "GET" });
    if (!response.ok) {
      throw apiError(response, await readJson(response));
    }
    return URL.createObjectURL(await response.blob());
  }

  /** fetch() with the identity headers and a timeout; no answer → JobsApiError(0). */
  async #send(path, { signal, headers = {}, ...init }) {
    const identity = await this.#identityHeaders();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#timeoutMs);
    const abort = () => controller.abort();
    if (signal) {
      signal.addEventListener("abort", abort, { once: true });
    }
    try {
      return await this.#fetch(this.#baseUrl + path, {
        ...init, headers: { ...identity, ...headers }, signal: controller.signal });
    } catch (error) {
      if (signal && signal.aborted) {
        throw error; // stopped on purpose: not a connection problem
      }
      const timedOut = controller.signal.aborted;
      throw new JobsApiError(timedOut ? "The server did not answer in time."
                                      : "The server could not be reached.",
                             { errorCode: timedOut ? "NETWORK_TIMEOUT" : "NETWORK_ERROR",
                               cause: error });
    } finally {
      clearTimeout(timer);
      if (signal) {
        signal.removeEventListener("abort", abort);
      }
    }
  }

  async #identityHeaders() {
    const source = typeof this.#identity === "function" ? await this.#identity()
                                                        : this.#identity;
    const headers = {};
    for (const [name, value] of Object.entries(source || {})) {
      if (value !== undefined && value !== null && value !== "") {
        headers[name] = String(value);
      }
    }
    return headers;
  }

  #jobPath(jobId) {
    return `${API_PREFIX}/jobs/${encodeURIComponent(jobId)}`;
  }

  // --- the poll loop ------------------------------------------------------------------

  #schedule(watcher, delayMs) {
    clearTimeout(watcher.timer);
    watcher.timer = setTimeout(() => {
      watcher.timer = null;
      this.#poll(watcher);
    }, delayMs);
  }

  #pollSoon(jobId) {
    const watcher = this.#watchers.get(jobId);
    if (watcher && watcher.timer !== null) { // not while a request is in flight
      this.#schedule(watcher, 0);
    }
  }

  async #poll(watcher) {
    watcher.controller = new AbortController();
    let outcome;
    try {
      const response = await this.#send(`${this.#jobPath(watcher.jobId)}/status`, {
        method: "GET", cache: "no-store", signal: watcher.controller.signal,
        headers: watcher.etag ? { "If-None-Match": watcher.etag } : {} });
      outcome = await readStatus(response);
    } catch (error) {
      outcome = { kind: "problem", error: asApiError(error) };
    } finally {
      watcher.controller = null;
    }
    if (this.#watchers.get(watcher.jobId) === watcher) { // not stopped meanwhile
      this.#handle(watcher, outcome);
    }
  }

  #handle(watcher, outcome) {
    if (outcome.kind === "problem") {
      this.#backOff(watcher, outcome.error);
      return;
    }
    this.#recovered(watcher);
    if (outcome.kind === "lost") {
      this.forget(watcher.jobId);
      notify(watcher.callbacks.onLost, { jobId: watcher.jobId, error: outcome.error });
    } else if (outcome.kind === "document") {
      this.#received(watcher, outcome.document, outcome.etag);
    } else { // 304: nothing changed
      this.#schedule(watcher, this.#pollMs);
    }
  }

  #received(watcher, document, etag) {
    const changed = JSON.stringify(document) !== JSON.stringify(watcher.document);
    watcher.etag = etag;
    watcher.document = document;
    this.#completeStoredType(watcher.jobId, document.type);
    if (changed) {
      notify(watcher.callbacks.onUpdate, document);
    }
    if (!TERMINAL.has(document.status)) {
      this.#schedule(watcher, this.#pollMs);
      return;
    }
    this.forget(watcher.jobId);
    const done = document.status === "succeeded";
    notify(done ? watcher.callbacks.onDone : watcher.callbacks.onFailed, document);
  }

  #backOff(watcher, error) {
    watcher.failures += 1;
    const delayMs = this.#backoffMs(watcher.failures, error.retryAfter);
    notify(watcher.callbacks.onConnectionProblem,
           problemInfo(watcher.jobId, watcher.failures, delayMs, error));
    this.#schedule(watcher, delayMs);
  }

  #recovered(watcher) {
    if (watcher.failures > 0) {
      watcher.failures = 0;
      notify(watcher.callbacks.onConnectionRestored, { jobId: watcher.jobId });
    }
  }

  /** pollMs doubled per failure (±20 % jitter), at least Retry-After, at most the cap. */
  #backoffMs(attempt, retryAfterSeconds) {
    const exponential = this.#pollMs * 2 ** Math.min(attempt, 20) * (0.8 + Math.random() * 0.4);
    const floor = retryAfterSeconds === null || retryAfterSeconds === undefined
      ? 0 : retryAfterSeconds * 1000;
    return Math.round(Math.min(this.#maxBackoffMs, Math.max(floor, exponential)));
  }

  // --- storage ------------------------------------------------------------------------

  #readJobs() {
    try {
      const jobs = JSON.parse(readItem(this.#storage, this.#storageKey) || "{}");
      return jobs && typeof jobs === "object" && !Array.isArray(jobs) ? jobs : {};
    } catch {
      return {}; // unreadable: start afresh
    }
  }

  #writeJobs(jobs) {
    if (Object.keys(jobs).length === 0) {
      removeItem(this.#storage, this.#storageKey);
    } else {
      writeItem(this.#storage, this.#storageKey, JSON.stringify(jobs));
    }
  }

  #remember(job) {
    const jobs = this.#readJobs();
    jobs[job.jobId] = { jobId: job.jobId, type: job.type, createdAt: job.createdAt };
    this.#writeJobs(jobs);
  }

  #completeStoredType(jobId, type) {
    const jobs = this.#readJobs();
    if (jobs[jobId] && !jobs[jobId].type && type) {
      jobs[jobId].type = type;
      this.#writeJobs(jobs);
    }
  }
}

// --- helpers (module private) -----------------------------------------------------------

/** Classifies a status answer: document, unchanged (304), lost (404) or problem. */
async function readStatus(response) {
  if (response.status === 304) {
    return { kind: "unchanged" };
  }
  const body = await readJson(response);
  if (response.status === 200 && body && typeof body.status === "string") {
    return { kind: "document", document: body, etag: response.headers.get("ETag") };
  }
  const error = response.ok
    ? new JobsApiError("Unreadable status document.", { status: response.status,
                                                         errorCode: "BAD_RESPONSE" })
    : apiError(response, body);
  return { kind: response.status === 404 ? "lost" : "problem", error };
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function apiError(response, body) {
  const data = body && typeof body === "object" ? body : {};
  return new JobsApiError(data.error || `HTTP ${response.status}`, {
    status: response.status,
    errorCode: data.errorCode || `HTTP_${response.status}`,
    fields: data.fields || null,
    retryAfter: retryAfterSeconds(response, data),
    body: body,
  });
}

function asApiError(error) {
  return error instanceof JobsApiError ? error
    : new JobsApiError(String(error && error.message ? error.message : error),
                       { errorCode: "CLIENT_ERROR", cause: error });
}

/** Retry-After in seconds (delta-seconds or HTTP date), else the body's retryAfter. */
function retryAfterSeconds(response, body) {
  const header = (response.headers.get("Retry-After") || "").trim();
  if (/^\d+$/.test(header)) {
    return Number(header);
  }
  const date = header ? Date.parse(header) : NaN;
  if (!Number.isNaN(date)) {
    return Math.max(0, Math.ceil((date - Date.now()) / 1000));
  }
  const fromBody = Number(body.retryAfter);
  return body.retryAfter !== undefined && Number.isFinite(fromBody) && fromBody >= 0
    ? fromBody : null;
}

function problemInfo(jobId, attempt, delayMs, error) {
  return { jobId, attempt, delayMs, status: error.status, errorCode: error.errorCode,
           message: error.message, retryAfter: error.retryAfter, error };
}

/** Calls an optional callback; its exceptions are logged, never propagated. */
function notify(callback, ...args) {
  if (typeof callback !== "function") {
    return;
  }
  try {
    callback(...args);
  } catch (error) {
    console.error("jobs-client: a callback failed", error);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** 32 hex characters from the platform's CSPRNG (also outside secure contexts). */
function randomId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function defaultStorage() {
  try {
    if (globalThis.localStorage) {
      return globalThis.localStorage; // throws where storage is blocked
    }
  } catch {
    // fall through: keep jobs in memory for this page only
  }
  return memoryStorage();
}

function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => { items.set(key, String(value)); },
    removeItem: (key) => { items.delete(key); },
  };
}

function readItem(storage, key) {
  try {
    return storage.getItem(key);
  } catch {
    return null;
  }
}

function writeItem(storage, key, value) {
  try {
    storage.setItem(key, value);
  } catch (error) {
    console.warn("jobs-client: storage is full or blocked", error);
  }
}

function removeItem(storage, key) {
  try {
    storage.removeItem(key);
  } catch {
    // nothing to do
  }
}
