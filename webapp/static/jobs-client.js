/**
 * jobs-client.js: the reference browser client of the jobs API (contract §5).
 *
 * A dependency-free ES module for modern browsers; no build step. It implements the
 * recommended flow for any job type:
 *
 *   1. create(type, body)  POST /api/v1/jobs/<type> with a fresh Idempotency-Key, so a
 *                          retried request cannot make two jobs; the job is remembered
 *                          in storage so that a page reload can pick it up again.
 *   2. watch(jobId)        follows the job live: GET /api/v1/jobs/<id>/events, server-sent
 *                          events read with fetch (EventSource cannot send the identity
 *                          headers). A stream that ends before the job does is opened again
 *                          with Last-Event-ID; one that is refused (503 STREAMS_UNAVAILABLE,
 *                          any other answer, no ReadableStream) or fails three times in a row
 *                          gives way to polling GET /api/v1/jobs/<id>/status every 2-3 s with
 *                          If-None-Match (304 = nothing changed), and the stream is tried
 *                          again later. Network errors, 429 and 503 back off exponentially
 *                          (honouring Retry-After) and never give up.
 *   3. onDone / onFailed   the job leaves storage; retry(jobId) puts a failed job back.
 *
 * While a job is watched, its last event id and status document are kept with it in
 * storage: after a reload, watching it again shows that document at once and resumes the
 * stream from there.
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
// Streams in a row that could not be opened, or ended before a byte came, before the
// client polls instead (for streamRetryMs).
const STREAM_FAILURES_BEFORE_POLLING = 3;
// The first reconnect of a dropped stream (at most pollMs); doubled per failure after it.
const STREAM_RECONNECT_MS = 1000;
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
 * @property {(info: Transport) => void} [onTransport]  how updates arrive, on each change
 */

/**
 * @typedef {Object} Transport  What onTransport receives.
 * @property {string} jobId
 * @property {"stream"|"polling"} transport  an open event stream, or polling /status
 * @property {string|null} reason  why polling: "disabled" (option stream: false),
 *   "unsupported" (no ReadableStream), "refused" (an answer other than a stream, e.g. 503
 *   STREAMS_UNAVAILABLE) or "failed" (streams failed in a row); null for "stream"

/**
 * @typedef {Object} StoredJob  What the client keeps in storage per job.
 * @property {string} jobId
 * @property {string|null} type
 * @property {string} createdAt  ISO 8601
 * @property {string} [lastEventId]  the id of the last event received while watching
 * @property {StatusDocument} [document]  the document of that event
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
  #stream;
  #streamRetryMs;
  #streamIdleMs;
  #reconnectMs;
  /** @type {Map<string, Object>} one watcher (stream or poll loop) per jobId */
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
   * @param {boolean} [options.stream]  follow jobs by their event stream (false: poll only)
   * @param {number} [options.streamRetryMs]  how long to poll before trying a refused or
   *   failing stream again (at least the refusal's Retry-After)
   * @param {number} [options.streamIdleMs]  an open stream silent this long (no event, no
   *   keep-alive) counts as dropped and is opened again
   */
  constructor({ baseUrl = "", identity = {}, storage = defaultStorage(), pollMs = 2500,
                maxBackoffMs = 30000, fetchImpl = globalThis.fetch, requestTimeoutMs = 15000,
                namespace = "jobs-client", stream = true, streamRetryMs = 30000,
                streamIdleMs = 45000 } = {}) {
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
    this.#stream = stream !== false;
    this.#streamRetryMs = Math.max(1, Number(streamRetryMs));
    // The server sends a keep-alive at least every 15 s: silence far beyond is a dead link.
    this.#streamIdleMs = Math.max(1, Number(streamIdleMs));
    this.#reconnectMs = Math.min(STREAM_RECONNECT_MS, this.#pollMs);
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
   * Follows the job until it succeeds, fails or is lost: by its event stream, else by
   * polling (see the top of this file). Only one stream or poll loop runs per jobId:
   * watching a watched job just replaces its callbacks (and replays the last known status
   * document and transport to them). A job remembered with the document of its last event
   * (a reload) gets that document at once, and its stream resumes after that event.
   * Network errors, timeouts, 429, 503 and any other unexpected answer to a poll (a 401
   * of an expired token too: an identity function is asked again on every request) go to
   * onConnectionProblem and are retried with backoff; only 404 ends the watch (onLost).
   * @param {string} jobId
   * @param {Callbacks} [callbacks]
   */
  watch(jobId, callbacks = {}) {
    const existing = this.#watchers.get(jobId);
    if (existing) {
      existing.callbacks = callbacks;
      const { document, transport } = existing;
      queueMicrotask(() => {
        if (document) {
          notify(callbacks.onUpdate, document);
        }
        if (transport) {
          notify(callbacks.onTransport, transport);
        }
      });
      return;
    }
    const stored = this.#readJobs()[jobId];
    const resumed = stored && typeof stored.lastEventId === "string"
                    && isDocument(stored.document, jobId) ? stored : null;
    const watcher = { jobId, callbacks, etag: null, document: null, failures: 0,
                      timer: null, controller: null, transport: null, streamFailures: 0,
                      streamAfter: 0, lastEventId: resumed ? resumed.lastEventId : null,
                      reconnectMs: this.#reconnectMs };
    this.#watchers.set(jobId, watcher);
    if (resumed) {
      watcher.document = resumed.document;
      queueMicrotask(() => {
        if (this.#watchers.get(jobId) === watcher) {
          notify(watcher.callbacks.onUpdate, resumed.document);
        }
      });
    }
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
   * Stops following the job (its stream is closed); it stays in storage (resumeAll picks
   * it up again).
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

  /** Stops following every job (storage is kept). */
  stopAll() {
    for (const jobId of [...this.#watchers.keys()]) {
      this.stop(jobId);
    }
  }

  /**
   * Stops following the job and removes it from storage. The job itself goes on.
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

  /** fetch() with the identity headers and a timeout for the answer's headers; no answer →
   * JobsApiError(0). `streaming`: `signal` goes on aborting the body after the headers. */
  async #send(path, { signal, headers = {}, streaming = false, ...init }) {
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
      if (signal && !streaming) {
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

  // --- following a job: the event stream, else polling ----------------------------------

  #schedule(watcher, delayMs) {
    clearTimeout(watcher.timer);
    watcher.timer = setTimeout(() => {
      watcher.timer = null;
      this.#next(watcher);
    }, delayMs);
  }

  /** The next request: the stream when it may be tried, else a poll. */
  #next(watcher) {
    if (this.#watchers.get(watcher.jobId) !== watcher) {
      return; // stopped (by a callback, say) after the timer was set
    }
    if (!this.#stream) {
      this.#setTransport(watcher, "polling", "disabled");
    } else if (typeof ReadableStream !== "function" || typeof TextDecoder !== "function") {
      this.#pollInstead(watcher, "unsupported", Infinity);
    } else if (Date.now() >= watcher.streamAfter) {
      this.#openStream(watcher);
      return;
    }
    this.#poll(watcher);
  }

  #isCurrent(watcher, controller) {
    return this.#watchers.get(watcher.jobId) === watcher && watcher.controller === controller;
  }

  async #openStream(watcher) {
    const controller = new AbortController();
    watcher.controller = controller;
    const headers = { Accept: "text/event-stream" };
    if (watcher.lastEventId) {
      headers["Last-Event-ID"] = watcher.lastEventId;
    }
    let response;
    try {
      response = await this.#send(`${this.#jobPath(watcher.jobId)}/events`, {
        method: "GET", cache: "no-store", headers, signal: controller.signal,
        streaming: true });
    } catch (error) {
      if (this.#isCurrent(watcher, controller)) {
        watcher.controller = null;
        this.#streamFailed(watcher);
        this.#backOff(watcher, asApiError(error));
      }
      return;
    }
    if (!this.#isCurrent(watcher, controller)) {
      controller.abort(); // stopped while it opened
      return;
    }
    const type = (response.headers.get("Content-Type") || "").toLowerCase();
    if (response.status !== 200 || !type.startsWith("text/event-stream")) {
      // Refused (503 STREAMS_UNAVAILABLE: the server holds all the streams it may), or any
      // answer that is no stream (404, 401, a proxy, a server without streams): a poll
      // tells a lost job or a connection problem from the rest.
      const error = apiError(response, await readJson(response));
      watcher.controller = null;
      this.#pollInstead(watcher, "refused",
                        Math.max(this.#streamRetryMs, (error.retryAfter || 0) * 1000));
      this.#poll(watcher);
      return;
    }
    if (!response.body || typeof response.body.getReader !== "function") {
      controller.abort();
      watcher.controller = null;
      this.#pollInstead(watcher, "unsupported", Infinity);
      this.#poll(watcher);
      return;
    }
    this.#recovered(watcher);
    this.#setTransport(watcher, "stream", null);
    const received = await this.#readStream(watcher, response.body, controller);
    if (!this.#isCurrent(watcher, controller)) {
      return; // finished or stopped
    }
    // Ended before the job did: the server restarted, a proxy or the network cut it, or
    // it was silent for streamIdleMs. Open it again after the last event received.
    watcher.controller = null;
    if (received) {
      watcher.streamFailures = 0;
    } else {
      this.#streamFailed(watcher);
    }
    const delayMs = Math.min(this.#maxBackoffMs, watcher.reconnectMs
      * 2 ** Math.min(watcher.streamFailures, 20) * (0.8 + Math.random() * 0.4));
    this.#schedule(watcher, Math.round(delayMs));
  }

  /** Reads events until the stream ends, drops or the watch ends; whether a byte came. */
  async #readStream(watcher, body, controller) {
    const reader = body.getReader();
    const decoder = new TextDecoder(); // UTF-8; drops a leading byte order mark
    const parser = new EventStreamParser(
      (event) => this.#streamEvent(watcher, controller, event),
      (retryMs) => { watcher.reconnectMs = retryMs; });
    let received = false;
    let idle = null;
    try {
      for (;;) {
        clearTimeout(idle);
        idle = setTimeout(() => controller.abort(), this.#streamIdleMs);
        const { value, done } = await reader.read();
        if (done) {
          parser.end(decoder.decode());
          break;
        }
        received = received || value.length > 0;
        parser.push(decoder.decode(value, { stream: true }));
        if (!this.#isCurrent(watcher, controller)) {
          break;
        }
      }
    } catch {
      // dropped, silent too long, or stopped: the caller tells which
    } finally {
      clearTimeout(idle);
      reader.cancel().catch(() => {});
    }
    return received;
  }

  #streamEvent(watcher, controller, event) {
    if (event.type !== "status" || !this.#isCurrent(watcher, controller)) {
      return; // other event types are for other clients
    }
    let document = null;
    try {
      document = JSON.parse(event.data);
    } catch {
      // reported below
    }
    if (!isDocument(document, watcher.jobId)) {
      console.warn("jobs-client: ignored an unreadable status event", event.id);
      return;
    }
    watcher.lastEventId = event.id;
    watcher.etag = null; // a later poll must not get 304 for an older document
    if (!TERMINAL.has(document.status)) {
      this.#keepStored(watcher.jobId, { lastEventId: event.id, document });
    }
    this.#accept(watcher, document);
  }

  #streamFailed(watcher) {
    watcher.streamFailures += 1;
    if (watcher.streamFailures >= STREAM_FAILURES_BEFORE_POLLING) {
      this.#pollInstead(watcher, "failed", this.#streamRetryMs);
    }
  }

  /** Polls from now on; the stream is tried again after `forMs`. */
  #pollInstead(watcher, reason, forMs) {
    watcher.streamAfter = Date.now() + forMs;
    watcher.streamFailures = 0;
    this.#setTransport(watcher, "polling", reason);
  }

  #setTransport(watcher, transport, reason) {
    if (!watcher.transport || watcher.transport.transport !== transport) {
      watcher.transport = { jobId: watcher.jobId, transport, reason };
      notify(watcher.callbacks.onTransport, watcher.transport);
    }
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
    watcher.etag = etag;
    if (!this.#accept(watcher, document)) {
      this.#schedule(watcher, this.#pollMs);
    }
  }

  /** A document from a poll or an event: onUpdate if it changed; whether it finished
   * the job (then forgotten, onDone or onFailed). */
  #accept(watcher, document) {
    const changed = JSON.stringify(document) !== JSON.stringify(watcher.document);
    watcher.document = document;
    this.#completeStoredType(watcher.jobId, document.type);
    if (changed) {
      notify(watcher.callbacks.onUpdate, document);
    }
    if (!TERMINAL.has(document.status)) {
      return false;
    }
    this.forget(watcher.jobId);
    const done = document.status === "succeeded";
    notify(done ? watcher.callbacks.onDone : watcher.callbacks.onFailed, document);
    return true;
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

  /** Adds fields to a remembered job (a job watched but never remembered stays out). */
  #keepStored(jobId, fields) {
    const jobs = this.#readJobs();
    if (jobs[jobId]) {
      Object.assign(jobs[jobId], fields);
      this.#writeJobs(jobs);
    }
  }
}

/**
 * Server-sent events from decoded text (the WHATWG event stream format): field lines,
 * comments (keep-alives), data over several lines, CR, LF or CRLF line ends, and frames
 * or line ends split anywhere across chunks. Calls onEvent({type, data, id}) per
 * complete event and onRetry(ms) per retry field; an event cut off by the end is dropped.
 */
class EventStreamParser {
  #rest = "";
  #afterCr = false; // the last chunk ended in CR: a LF starting the next one belongs to it
  #type = "";
  #data = [];
  #id = null; // kept across events, as EventSource does
  #onEvent;
  #onRetry;

  constructor(onEvent, onRetry) {
    this.#onEvent = onEvent;
    this.#onRetry = onRetry;
  }

  push(text) {
    let buffer = this.#rest + text;
    if (this.#afterCr && buffer.startsWith("\n")) {
      buffer = buffer.slice(1);
    }
    this.#afterCr = false;
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    for (let match = lineEnd.exec(buffer); match; match = lineEnd.exec(buffer)) {
      this.#line(buffer.slice(start, match.index));
      start = lineEnd.lastIndex;
      this.#afterCr = start === buffer.length && match[0] === "\r";
    }
    this.#rest = buffer.slice(start);
  }

  end(text) {
    this.push(text);
    this.#rest = "";
  }

  #line(line) {
    if (line === "") {
      this.#dispatch();
      return;
    }
    if (line.startsWith(":")) {
      return; // a comment: the server's keep-alive
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) {
      value = value.slice(1);
    }
    if (field === "event") {
      this.#type = value;
    } else if (field === "data") {
      this.#data.push(value);
    } else if (field === "id" && !value.includes("\u0000")) {
      this.#id = value;
    } else if (field === "retry" && /^\d+$/.test(value)) {
      this.#onRetry(Number(value));
    } // other fields are ignored
  }

  #dispatch() {
    const type = this.#type || "message";
    const data = this.#data;
    this.#type = "";
    this.#data = [];
    if (data.length > 0) {
      this.#onEvent({ type, data: data.join("\n"), id: this.#id });
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

function isDocument(document, jobId) {
  return Boolean(document) && typeof document === "object" && document.jobId === jobId
         && typeof document.status === "string";
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
