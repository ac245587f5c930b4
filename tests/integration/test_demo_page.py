"""The demo page at / and the browser client in webapp/static.

The page and its assets are served with the right types, reference nothing outside this
origin and never turn server strings into markup. Where `node` is installed, the client
(jobs-client.js) is also run for real: against a scripted fetch (ETag/304, backoff,
Retry-After, idempotent create retries, 404, cancel, retry, images; the event stream:
frames split anywhere, reconnects with Last-Event-ID, the fall back to polling, a reload)
and against the live API with a worker (create, reload and resume, done, images). Browser
tests of the page itself (Playwright) drive the data-testid attributes checked here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import playwright
import pytest
from werkzeug.serving import make_server

from tests.fakes.website import FakeWebsite
from tests.integration.support import ApiClient, ThreadWorker

STATIC_DIR = Path(__file__).resolve().parents[2] / "webapp" / "static"
ASSETS = {
    "index.html": "text/html",
    "demo.css": "text/css",
    "demo.js": "text/javascript",
    "jobs-client.js": "text/javascript",
    "ops.html": "text/html",
    "ops.css": "text/css",
    "theme.css": "text/css",
    "ops.js": "text/javascript",
}
# A system node if there is one, else the one the Playwright wheel ships (requirements.txt):
# these tests never skip for want of a JavaScript runtime.
NODE = shutil.which("node") or str(Path(playwright.__file__).parent / "driver" / "node")

# data-testid attributes the browser tests rely on (markup in index.html, cards in demo.js).
TEST_IDS = (
    "url-input", "analyze-button", "cancel-button", "retry-button", "progress-bar",
    "progress-steps", "progress-percent", "current-step", "eta", "job", "job-status",
    "job-id", "result", "scenario-card", "scenario-image", "scenario-pitch", "cta-link",
    "error-box", "error-code", "error-message", "connection-notice", "session-id",
    "transport",
)
STEP_LABELS = ("Analyzing website...", "Generating audiences...", "Generating pitches...",
               "Generating images...")


def asset_text(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def test_root_serves_the_page_and_its_module_scripts(api: ApiClient) -> None:
    response = api.http.get("/")  # no identity needed for the page itself
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-cache"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "img-src 'self' blob:" in policy
    page = response.get_data(as_text=True)
    assert '<script type="module" src="/static/demo.js"></script>' in page
    assert '<link rel="stylesheet" href="/static/demo.css">' in page
    assert 'from "./jobs-client.js"' in asset_text("demo.js")


@pytest.mark.parametrize(("name", "mimetype"), sorted(ASSETS.items()))
def test_assets_are_served_with_their_content_types(api: ApiClient, name: str,
                                                    mimetype: str) -> None:
    response = api.http.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.get_data() == (STATIC_DIR / name).read_bytes()
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    response.close()


def test_every_static_file_is_a_known_asset() -> None:
    assert sorted(path.name for path in STATIC_DIR.iterdir()) == sorted(ASSETS)


def test_an_unknown_asset_is_a_json_404(api: ApiClient) -> None:
    response = api.http.get("/static/nope.js")
    assert response.status_code == 404
    assert response.get_json()["errorCode"] == "NOT_FOUND"


def test_the_client_module_exports_its_api() -> None:
    source = asset_text("jobs-client.js")
    for export in ("export class JobsClient", "export function anonymousSession",
                   "export class JobsApiError"):
        assert export in source
    for method in ("create", "watch", "resumeAll", "stored", "retry", "cancel", "stop",
                   "forget", "imageUrl"):
        assert re.search(rf"^  (async )?{method}\(", source, re.MULTILINE), method


def _without_comments(name: str, text: str) -> str:
    if name.endswith(".html"):
        return re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)  # block comments and JSDoc
    return re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE)  # whole-line // comments


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_assets_reference_nothing_outside_this_origin(name: str) -> None:
    code = _without_comments(name, asset_text(name))
    assert not re.findall(r"\b(?:https?|wss?|ftp):/+[\w.\[-]", code, re.IGNORECASE)
    assert not re.findall(r"""(?:src|href|action)\s*=\s*["']?//""", code, re.IGNORECASE)
    assert not re.findall(r"""url\(\s*["']?(?!data:)[a-z]+:|url\(\s*["']?//""", code,
                          re.IGNORECASE)
    assert "@import" not in code


def test_the_page_has_the_test_ids_browser_tests_use() -> None:
    markup = asset_text("index.html") + asset_text("demo.js")
    missing = [test_id for test_id in TEST_IDS
               if f'data-testid="{test_id}"' not in markup
               and f'"data-testid": "{test_id}"' not in markup]
    assert not missing
    assert all(label in asset_text("index.html") for label in STEP_LABELS)
    assert 'aria-live="polite"' in asset_text("index.html")


def test_server_strings_never_become_markup() -> None:
    for name in ("demo.js", "jobs-client.js"):
        code = _without_comments(name, asset_text(name))
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                     "eval(", "new Function", "setAttribute(\"on"):
            assert sink not in code, (name, sink)


# --- the client, run by node ----------------------------------------------------------------


@pytest.fixture
def client_module(tmp_path: Path) -> Path:
    """jobs-client.js as an .mjs file: node then loads it as an ES module for sure."""
    target = tmp_path / "jobs-client.mjs"
    shutil.copyfile(STATIC_DIR / "jobs-client.js", target)
    return target


def run_node(script: str, tmp_path: Path, *args: str, timeout: float = 60) -> None:
    assert NODE is not None
    path = tmp_path / "script.mjs"
    path.write_text(script, encoding="utf-8")
    done = subprocess.run([NODE, str(path), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["demo.js", "jobs-client.js"])
def test_the_javascript_parses(name: str, tmp_path: Path) -> None:
    assert NODE is not None
    copy = tmp_path / name.replace(".js", ".mjs")
    shutil.copyfile(STATIC_DIR / name, copy)
    checked = subprocess.run([NODE, "--check", str(copy)], capture_output=True, text=True,
                             timeout=30, check=False)
    assert checked.returncode == 0, checked.stderr


def test_the_client_against_a_scripted_fetch(client_module: Path, tmp_path: Path) -> None:
    run_node(UNIT_SCRIPT, tmp_path, client_module.as_uri())


def test_the_client_streams_against_a_scripted_fetch(client_module: Path,
                                                     tmp_path: Path) -> None:
    run_node(STREAM_SCRIPT, tmp_path, client_module.as_uri())


@pytest.fixture
def served(api: ApiClient) -> Iterator[str]:
    """The test app on a real loopback port, for node's fetch."""
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="demo-api", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
    server.server_close()


def test_the_client_runs_a_website_analysis_through_the_api(
        served: str, worker: ThreadWorker, website: FakeWebsite, client_module: Path,
        tmp_path: Path) -> None:
    run_node(LIVE_SCRIPT, tmp_path, client_module.as_uri(), served, website.url("/"),
             timeout=90)


# Helpers of the scripted-fetch scripts: storage in memory, answers, documents, a
# fetch answering from a list (Response, Error thrown, function, or "hang"), waiting.
SCRIPTED_HELPERS = r"""
function memoryStorage(initial = {}) {
  const items = new Map(Object.entries(initial));
  return { getItem: (k) => (items.has(k) ? items.get(k) : null),
           setItem: (k, v) => { items.set(k, String(v)); },
           removeItem: (k) => { items.delete(k); }, items };
}

function json(status, body, headers = {}) {
  return new Response(body === undefined ? null : JSON.stringify(body),
                      { status, headers: { "Content-Type": "application/json", ...headers } });
}

function doc(jobId, status, extra = {}) {
  return { jobId, type: "website-analysis", status, progress: 0, currentStep: null,
           estimatedTimeRemaining: null, error: null, errorCode: null, result: null,
           createdAt: "2026-01-29T12:00:00Z", updatedAt: "2026-01-29T12:00:00Z", ...extra };
}

/** A fetch answering from a list: Response, Error (thrown), function, or "hang". */
function scripted(answers) {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, method: init.method, headers: { ...init.headers }, body: init.body,
                 signal: init.signal });
    const next = answers.shift();
    if (next === undefined) {
      throw new Error(`unexpected request ${init.method} ${url}`);
    }
    if (next === "hang") {
      return new Promise((_, reject) => init.signal.addEventListener(
        "abort", () => reject(new DOMException("aborted", "AbortError"))));
    }
    if (next instanceof Error) {
      throw next;
    }
    return typeof next === "function" ? next(url, init) : next;
  };
  return { calls, fetchImpl, answers };
}

async function until(predicate, ms = 2000, what = "condition") {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const session = { "x-session-id": "sess_test_1234" };
"""


UNIT_SCRIPT = r"""import assert from "node:assert/strict";

const { JobsClient, JobsApiError, anonymousSession } = await import(process.argv[2]);
""" + SCRIPTED_HELPERS + r"""
// These tests are of polling (the stream's are in STREAM_SCRIPT).
const quiet = { pollMs: 5, maxBackoffMs: 20, stream: false };

async function happyPath() {
  const fake = scripted([
    json(201, { jobId: "j1" }),
    json(200, doc("j1", "queued"), { ETag: '"a"' }),
    new Response(null, { status: 304, headers: { ETag: '"a"' } }),
    json(503, { error: "down", errorCode: "QUEUE_UNAVAILABLE" }, { "Retry-After": "0" }),
    new TypeError("fetch failed"),
    json(200, doc("j1", "running", { progress: 30, currentStep: "Generating audiences..." }),
         { ETag: '"b"' }),
    json(200, doc("j1", "succeeded", { progress: 100, result: { success: true } }),
         { ETag: '"c"' }),
  ]);
  const storage = memoryStorage();
  const client = new JobsClient({ identity: session, storage, fetchImpl: fake.fetchImpl,
                                  ...quiet });
  const seen = { updates: [], problems: [], restored: 0, done: null, storedAtFirst: null };
  const jobId = await client.create("website-analysis", { url: "http://site.test/" }, {
    onUpdate: (d) => {
      seen.updates.push(d.status);
      seen.storedAtFirst ??= client.stored().map((job) => [job.jobId, job.type]);
    },
    onConnectionProblem: (info) => seen.problems.push(info),
    onConnectionRestored: () => { seen.restored += 1; },
    onDone: (d) => { seen.done = d; },
    onFailed: () => assert.fail("not failed"),
  });
  assert.equal(jobId, "j1");
  await until(() => seen.done, 2000, "onDone");
  const [post, ...polls] = fake.calls;
  assert.equal(post.method, "POST");
  assert.equal(post.url, "/api/v1/jobs/website-analysis");
  assert.match(post.headers["Idempotency-Key"], /^[0-9a-f]{32}$/);
  assert.equal(post.headers["x-session-id"], "sess_test_1234");
  assert.equal(post.headers["Content-Type"], "application/json");
  assert.deepEqual(JSON.parse(post.body), { url: "http://site.test/" });
  assert.equal(polls[0].url, "/api/v1/jobs/j1/status");
  assert.equal(polls[0].headers["If-None-Match"], undefined);
  assert.equal(polls[1].headers["If-None-Match"], '"a"');
  assert.deepEqual(seen.updates, ["queued", "running", "succeeded"]);
  assert.deepEqual(seen.storedAtFirst, [["j1", "website-analysis"]]);
  assert.deepEqual(seen.problems.map((p) => [p.jobId, p.status, p.errorCode, p.attempt]),
                   [["j1", 503, "QUEUE_UNAVAILABLE", 1], ["j1", 0, "NETWORK_ERROR", 2]]);
  assert.ok(seen.problems.every((p) => p.delayMs > 0 && p.delayMs <= 20));
  assert.equal(seen.restored, 1);
  assert.deepEqual(seen.done.result, { success: true });
  assert.deepEqual(client.stored(), []);
  const count = fake.calls.length;
  await new Promise((resolve) => setTimeout(resolve, 40));
  assert.equal(fake.calls.length, count, "no polling after the end");
}

async function createRetriesWithTheSameKey() {
  const fake = scripted([new TypeError("reset"), json(503, { errorCode: "QUEUE_UNAVAILABLE" }),
                         json(201, { jobId: "j2" }, { "Idempotent-Replayed": "true" })]);
  const client = new JobsClient({ identity: session, storage: memoryStorage(),
                                  fetchImpl: fake.fetchImpl, ...quiet });
  const problems = [];
  const jobId = await client.create("website-analysis", { url: "http://x.test/" },
                                    { onConnectionProblem: (info) => problems.push(info) });
  client.stop(jobId);
  assert.equal(jobId, "j2");
  const keys = fake.calls.map((call) => call.headers["Idempotency-Key"]);
  assert.equal(keys.length, 3);
  assert.equal(new Set(keys).size, 1, "one key for every attempt");
  assert.deepEqual(problems.map((p) => [p.jobId, p.errorCode]),
                   [[null, "NETWORK_ERROR"], [null, "QUEUE_UNAVAILABLE"]]);
  // a second create is a new job: a new key
  const again = scripted([json(201, { jobId: "j3" })]);
  const other = new JobsClient({ identity: session, storage: memoryStorage(),
                                 fetchImpl: again.fetchImpl, ...quiet });
  await other.create("website-analysis", { url: "http://x.test/" });
  other.stopAll();
  assert.notEqual(again.calls[0].headers["Idempotency-Key"], keys[0]);
}

async function createRefusals() {
  const fake = scripted([
    json(429, { error: "Too many", errorCode: "RATE_LIMITED", retryAfter: 30 },
         { "Retry-After": "30" }),
    json(400, { error: "Invalid", errorCode: "VALIDATION_ERROR",
                fields: { url: ["Must be an http or https URL with a host."] } }),
    json(401, { error: "Who?", errorCode: "SESSION_INVALID" }),
  ]);
  const storage = memoryStorage();
  const client = new JobsClient({ identity: session, storage, fetchImpl: fake.fetchImpl,
                                  ...quiet });
  await assert.rejects(client.create("website-analysis", { url: "x" }), (error) => {
    assert.ok(error instanceof JobsApiError);
    assert.deepEqual([error.status, error.errorCode, error.retryAfter, error.message],
                     [429, "RATE_LIMITED", 30, "Too many"]);
    return true;
  });
  await assert.rejects(client.create("website-analysis", { url: "x" }), (error) => {
    assert.deepEqual([error.status, error.errorCode], [400, "VALIDATION_ERROR"]);
    assert.deepEqual(error.fields, { url: ["Must be an http or https URL with a host."] });
    return true;
  });
  await assert.rejects(client.create("website-analysis", { url: "x" }),
                       { status: 401, errorCode: "SESSION_INVALID" });
  assert.equal(fake.calls.length, 3, "refusals are not retried");
  assert.deepEqual(client.stored(), []);
}

async function lostAfterReload() {
  const storage = memoryStorage({ "jobs-client:jobs": JSON.stringify({
    gone: { jobId: "gone", type: "website-analysis", createdAt: "2026-01-01T00:00:00Z" } }) });
  const fake = scripted([json(404, { error: "Job not found.", errorCode: "JOB_NOT_FOUND" })]);
  const client = new JobsClient({ identity: session, storage, fetchImpl: fake.fetchImpl,
                                  ...quiet });
  assert.deepEqual(client.stored().map((job) => job.jobId), ["gone"]);
  let lost = null;
  const resumed = client.resumeAll(() => ({ onLost: (info) => { lost = info; } }));
  assert.deepEqual(resumed.map((job) => job.jobId), ["gone"]);
  await until(() => lost, 2000, "onLost");
  assert.equal(lost.jobId, "gone");
  assert.equal(lost.error.errorCode, "JOB_NOT_FOUND");
  assert.deepEqual(client.stored(), []);
  assert.equal(storage.getItem("jobs-client:jobs"), null);
}

async function oneLoopPerJob() {
  const fake = scripted(["hang", "hang"]);
  const client = new JobsClient({ identity: session, storage: memoryStorage(),
                                  fetchImpl: fake.fetchImpl, ...quiet });
  client.watch("j5", {});
  client.watch("j5", {});
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(fake.calls.length, 1);
  assert.equal(client.stop("j5"), true);
  assert.equal(client.stop("j5"), false);
}

async function cancelThenRetry() {
  const fake = scripted([
    json(200, doc("j6", "running", { progress: 30, currentStep: "Generating audiences..." }),
         { ETag: '"1"' }),
    json(200, { cancelled: true }),
    json(200, doc("j6", "failed", { progress: 30, currentStep: "Generating audiences...",
                                   error: "Cancelled", errorCode: "CANCELLED" }),
         { ETag: '"2"' }),
    json(200, { jobId: "j6" }),
    json(200, doc("j6", "queued"), { ETag: '"3"' }),
    json(200, doc("j6", "succeeded", { progress: 100, result: {} }), { ETag: '"4"' }),
  ]);
  const storage = memoryStorage();
  // a long poll interval: cancel itself must make the next poll happen at once
  const client = new JobsClient({ identity: session, storage, fetchImpl: fake.fetchImpl,
                                  pollMs: 60000, stream: false });
  const events = [];
  const callbacks = { onUpdate: (d) => events.push(d.status),
                      onFailed: (d) => events.push(`failed:${d.errorCode}`),
                      onDone: () => events.push("done") };
  client.watch("j6", callbacks);
  await until(() => events.length === 1, 2000, "first update");
  await client.cancel("j6");
  await until(() => events.includes("failed:CANCELLED"), 2000, "cancelled");
  assert.equal(fake.calls[1].url, "/api/v1/jobs/j6/cancel");
  assert.equal(fake.calls[1].method, "POST");
  assert.deepEqual(client.stored(), []);
  await client.retry("j6", callbacks);
  assert.equal(fake.calls[3].url, "/api/v1/jobs/j6/retry");
  await until(() => events.includes("queued"), 2000, "queued again");
  assert.equal(fake.calls[4].headers["If-None-Match"], undefined, "a fresh loop after retry");
  assert.deepEqual(client.stored().map((job) => [job.jobId, job.type]),
                   [["j6", "website-analysis"]]);
  client.stop("j6");
  assert.equal(client.stored().length, 1, "stop keeps the job in storage");
  client.forget("j6");
  assert.deepEqual(client.stored(), []);
}

async function backoffHonoursRetryAfterWithinTheCap() {
  const answers = () => [json(429, { errorCode: "RATE_LIMITED" }, { "Retry-After": "1" }), "hang"];
  for (const [maxBackoffMs, expected] of [[5000, 1000], [20, 20]]) {
    const fake = scripted(answers());
    const client = new JobsClient({ identity: session, storage: memoryStorage(),
                                    fetchImpl: fake.fetchImpl, pollMs: 5, maxBackoffMs,
                                    stream: false });
    let problem = null;
    client.watch("j7", { onConnectionProblem: (info) => { problem = info; } });
    await until(() => problem, 2000, "problem");
    client.stop("j7");
    assert.equal(problem.retryAfter, 1);
    assert.equal(problem.delayMs, expected);
  }
}

async function images() {
  let token = 0;
  const png = () => new Response(new Uint8Array([137, 80, 78, 71]),
                                 { headers: { "Content-Type": "image/png" } });
  const fake = scripted([json(404, { errorCode: "IMAGE_NOT_FOUND", error: "no" }), png()]);
  const client = new JobsClient({ identity: () => ({ Authorization: `Bearer t${++token}`,
                                                     "x-session-id": undefined }),
                                  storage: memoryStorage(), fetchImpl: fake.fetchImpl,
                                  baseUrl: "http://api.test/" });
  await assert.rejects(client.imageUrl("/api/v1/images/abc"), { status: 404 });
  const first = await client.imageUrl("/api/v1/images/abc");
  const second = await client.imageUrl("/api/v1/images/abc");
  assert.match(first, /^blob:/);
  assert.equal(first, second, "cached per path");
  assert.equal(fake.calls.length, 2);
  assert.equal(fake.calls[1].url, "http://api.test/api/v1/images/abc");
  assert.deepEqual(fake.calls[1].headers, { Authorization: "Bearer t2" });
  for (const bad of ["//evil.test/x", "http://evil.test/x", "/\\evil.test/x", "/\t/evil.test",
                     "api/v1/images/x", "", null]) {
    await assert.rejects(client.imageUrl(bad), { errorCode: "INVALID_IMAGE_PATH" });
  }
  assert.equal(fake.calls.length, 2, "no request for a foreign URL");
  client.revokeImages();
}

function sessions() {
  const storage = memoryStorage();
  const id = anonymousSession(storage);
  assert.match(id, /^[A-Za-z0-9_-]{8,128}$/);
  assert.equal(anonymousSession(storage), id);
  assert.notEqual(anonymousSession(memoryStorage()), id);
  storage.setItem("jobs-client:session-id", "bad id!");
  assert.notEqual(anonymousSession(storage), "bad id!");
  const broken = { getItem() { throw new Error("blocked"); },
                   setItem() { throw new Error("full"); }, removeItem() {} };
  const warn = console.warn;
  console.warn = () => {};
  try {
    assert.match(anonymousSession(broken), /^[A-Za-z0-9_-]{8,128}$/);
  } finally {
    console.warn = warn;
  }
}

for (const test of [happyPath, createRetriesWithTheSameKey, createRefusals, lostAfterReload,
                    oneLoopPerJob, cancelThenRetry, backoffHonoursRetryAfterWithinTheCap,
                    images, sessions]) {
  await test();
  console.log(`ok ${test.name}`);
}
"""

LIVE_SCRIPT = r"""import assert from "node:assert/strict";

const [moduleUrl, baseUrl, siteUrl] = process.argv.slice(2);
const { JobsClient, anonymousSession } = await import(moduleUrl);
const STEPS = ["Analyzing website...", "Generating audiences...", "Generating pitches...",
               "Generating images..."];

function memoryStorage() {
  const items = new Map();
  return { getItem: (k) => (items.has(k) ? items.get(k) : null),
           setItem: (k, v) => { items.set(k, String(v)); },
           removeItem: (k) => { items.delete(k); } };
}

async function until(predicate, ms, what) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const storage = memoryStorage(); // shared by both "page loads", like localStorage
const requests = [];
const fetchImpl = async (url, init) => {
  const response = await fetch(url, init);
  requests.push({ url, status: response.status, ifNoneMatch: init.headers["If-None-Match"] });
  return response;
};
// Polling only: the browser tests follow the event stream through the live API.
const options = { baseUrl, identity: { "x-session-id": anonymousSession(storage) }, storage,
                  fetchImpl, pollMs: 100, maxBackoffMs: 1000, stream: false };

// First page load: create, see the job, then the page goes away (polling stops).
const first = new JobsClient(options);
let seen = null;
const jobId = await first.create("website-analysis", { url: siteUrl },
                                 { onUpdate: (doc) => { seen ??= doc; } });
await until(() => seen, 10000, "the first status");
first.stopAll();
assert.equal(seen.jobId, jobId);
assert.deepEqual(first.stored().map((job) => [job.jobId, job.type]),
                 [[jobId, "website-analysis"]]);

// After the reload: resumeAll finds the job and follows it to the end.
const second = new JobsClient(options);
const updates = [];
const done = await new Promise((resolve, reject) => {
  const resumed = second.resumeAll({
    onUpdate: (doc) => updates.push(doc),
    onDone: resolve,
    onFailed: (doc) => reject(new Error(`failed: ${doc.errorCode} ${doc.error}`)),
    onLost: () => reject(new Error("lost")),
  });
  assert.deepEqual(resumed.map((job) => job.jobId), [jobId]);
});
assert.equal(done.status, "succeeded");
assert.equal(done.progress, 100);
assert.deepEqual(second.stored(), []);
const progress = updates.map((doc) => doc.progress);
assert.deepEqual(progress, [...progress].sort((a, b) => a - b), "progress never goes down");
for (const doc of updates.filter((doc) => doc.status === "running")) {
  assert.ok(STEPS.includes(doc.currentStep), doc.currentStep);
}
assert.ok(requests.some((request) => request.ifNoneMatch), "polls send If-None-Match");

const { analysis, scenarios } = done.result;
assert.ok(analysis.businessName);
assert.ok(scenarios.length >= 2);
const image = await second.imageUrl(scenarios[0].imageUrl);
assert.match(image, /^blob:/);
second.revokeImages();

// Another session may not see the image; finished jobs refuse cancel and retry.
const stranger = new JobsClient({ ...options, storage: memoryStorage(),
                                  identity: { "x-session-id": "someone_else_1234" } });
await assert.rejects(stranger.imageUrl(scenarios[0].imageUrl), { status: 404 });
await assert.rejects(second.cancel(jobId), { status: 409, errorCode: "JOB_NOT_CANCELLABLE" });
await assert.rejects(second.retry(jobId), { status: 409, errorCode: "JOB_NOT_RETRYABLE" });
console.log("ok live");
"""

STREAM_SCRIPT = r"""import assert from "node:assert/strict";

const { JobsClient } = await import(process.argv[2]);
""" + SCRIPTED_HELPERS + r"""
function frame(id, document) {
  return `event: status\nid: ${id}\ndata: ${JSON.stringify(document)}\n\n`;
}

/** An event stream answer sending `chunks` (text or bytes) one read each, then closing or
 * ("hang") staying open until the request is aborted. */
function sse(chunks, then = "close") {
  return (url, init) => {
    const encoder = new TextEncoder();
    const body = new ReadableStream({
      start(controller) {
        for (const chunk of chunks) {
          controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
        }
        if (then === "close") {
          controller.close();
        } else {
          init.signal.addEventListener("abort", () => controller.error(
            new DOMException("aborted", "AbortError")));
        }
      },
    });
    return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
  };
}

const quick = { pollMs: 5, maxBackoffMs: 20, streamRetryMs: 60000 };

function recorder(client, jobId) {
  const seen = { updates: [], steps: [], transports: [], problems: [], done: null,
                 failed: null };
  client.watch(jobId, {
    onUpdate: (d) => {
      seen.updates.push(d.progress === 0 ? d.status : `${d.status}:${d.progress}`);
      seen.steps.push(d.currentStep);
    },
    onTransport: (t) => seen.transports.push(`${t.transport}:${t.reason}`),
    onConnectionProblem: (info) => seen.problems.push(info.errorCode),
    onDone: (d) => { seen.done = d; },
    onFailed: (d) => { seen.failed = d; },
  });
  return seen;
}

async function framesSplitAnywhere() {
  const queued = JSON.stringify(doc("s1", "queued"));
  const running = JSON.stringify(doc("s1", "running", { progress: 30, currentStep: "Café ✓" }));
  const done = JSON.stringify(doc("s1", "succeeded", { progress: 100 }));
  const text = `: keep-alive\r\n\r\nevent: status\r\nid: 1-1-a\r\ndata: ${queued}\r\n\r\n`
    + "event: other\ndata: not a document\n\n"  // another event type: ignored
    + "retry: 7\n"
    + `event: status\nid: 2-2-b\ndata: ${running.slice(0, 20)}\ndata: ${running.slice(20)}\n\n`
    + `event:status\rid:3-3-c\rdata:${done}\r\r`;
  const bytes = new TextEncoder().encode(text);
  // Every split of the bytes in two chunks: inside a CRLF, a field, a UTF-8 character...
  for (let cut = 0; cut <= bytes.length; cut += 1) {
    const fake = scripted([sse([bytes.slice(0, cut), bytes.slice(cut)], "hang")]);
    const client = new JobsClient({ identity: session, storage: memoryStorage(),
                                    fetchImpl: fake.fetchImpl, ...quick });
    const seen = recorder(client, "s1");
    await until(() => seen.done, 2000, `done (cut ${cut})`);
    assert.deepEqual(seen.updates, ["queued", "running:30", "succeeded:100"], `cut ${cut}`);
    assert.equal(seen.steps[1], "Café ✓", `cut ${cut}`);
    assert.deepEqual(seen.transports, ["stream:null"]);
    assert.equal(fake.calls.length, 1, "one stream, no poll");
    assert.equal(fake.calls[0].url, "/api/v1/jobs/s1/events");
    assert.equal(fake.calls[0].headers.Accept, "text/event-stream");
    assert.equal(fake.calls[0].headers["x-session-id"], "sess_test_1234");
    assert.equal(fake.calls[0].headers["Last-Event-ID"], undefined);
    await until(() => fake.calls[0].signal.aborted, 2000, "the finished stream closed");
  }
}

async function reconnectsAfterTheLastEvent() {
  const storage = memoryStorage({ "jobs-client:jobs": JSON.stringify({
    s2: { jobId: "s2", type: "website-analysis", createdAt: "2026-01-01T00:00:00Z" } }) });
  const fake = scripted([
    sse([frame("1-1-a", doc("s2", "running", { progress: 10 }))]),  // ends: reconnect
    sse([": keep-alive\n\n"], "hang"),  // then silent for longer than streamIdleMs
    new TypeError("fetch failed"),  // the network is gone for a moment
    sse([frame("2-2-b", doc("s2", "succeeded", { progress: 100 }))]),
  ]);
  const client = new JobsClient({ identity: session, storage, fetchImpl: fake.fetchImpl,
                                  streamIdleMs: 50, ...quick });
  const seen = recorder(client, "s2");
  await until(() => fake.calls.length === 2, 2000, "a second stream");
  const kept = JSON.parse(storage.getItem("jobs-client:jobs")).s2;
  assert.equal(kept.lastEventId, "1-1-a");
  assert.equal(kept.document.progress, 10);
  await until(() => seen.done, 2000, "done");
  assert.deepEqual(fake.calls.map((call) => [call.url, call.headers["Last-Event-ID"]]),
                   [["/api/v1/jobs/s2/events", undefined], ["/api/v1/jobs/s2/events", "1-1-a"],
                    ["/api/v1/jobs/s2/events", "1-1-a"], ["/api/v1/jobs/s2/events", "1-1-a"]]);
  assert.ok(fake.calls[1].signal.aborted, "the silent stream was given up");
  assert.deepEqual(seen.updates, ["running:10", "succeeded:100"]);
  assert.deepEqual(seen.transports, ["stream:null"]);
  assert.deepEqual(seen.problems, ["NETWORK_ERROR"]);
  assert.deepEqual(client.stored(), []);
}

async function refusedStreamsArePolled() {
  const fake = scripted([
    json(503, { error: "Too many streams.", errorCode: "STREAMS_UNAVAILABLE" },
         { "Retry-After": "0" }),
    json(200, doc("s3", "running", { progress: 30 }), { ETag: '"a"' }),
    new Response(null, { status: 304, headers: { ETag: '"a"' } }),
    json(200, doc("s3", "succeeded", { progress: 100 }), { ETag: '"b"' }),
  ]);
  const client = new JobsClient({ identity: session, storage: memoryStorage(),
                                  fetchImpl: fake.fetchImpl, ...quick });
  const seen = recorder(client, "s3");
  await until(() => seen.done, 2000, "done");
  assert.deepEqual(fake.calls.map((call) => call.url), [
    "/api/v1/jobs/s3/events", "/api/v1/jobs/s3/status", "/api/v1/jobs/s3/status",
    "/api/v1/jobs/s3/status"]);
  assert.equal(fake.calls[2].headers["If-None-Match"], '"a"');
  assert.deepEqual(seen.transports, ["polling:refused"]);
  assert.deepEqual(seen.problems, [], "a refused stream is no connection problem");
  assert.deepEqual(seen.updates, ["running:30", "succeeded:100"]);
}

async function theStreamIsTriedAgainLater() {
  const fake = scripted([
    json(404, { error: "Not found.", errorCode: "NOT_FOUND" }),  // a server without streams
    json(200, doc("s4", "running", { progress: 30 }), { ETag: '"a"' }),
    sse([frame("2-2-b", doc("s4", "running", { progress: 30 })),
         frame("3-3-c", doc("s4", "failed", { progress: 30, errorCode: "CANCELLED" }))]),
  ]);
  const client = new JobsClient({ identity: session, storage: memoryStorage(),
                                  fetchImpl: fake.fetchImpl, ...quick, streamRetryMs: 1 });
  const seen = recorder(client, "s4");
  await until(() => seen.failed, 2000, "failed");
  assert.deepEqual(fake.calls.map((call) => call.url.split("/").at(-1)),
                   ["events", "status", "events"]);
  assert.deepEqual(seen.transports, ["polling:refused", "stream:null"]);
  assert.deepEqual(seen.updates, ["running:30", "failed:30"], "no repeat of an equal document");
}

async function repeatedFailuresFallBackToPolling() {
  const fake = scripted([
    new TypeError("fetch failed"),
    sse([]),  // opens, and ends before a byte
    new TypeError("fetch failed"),
    json(200, doc("s5", "succeeded", { progress: 100 }), { ETag: '"a"' }),
  ]);
  const client = new JobsClient({ identity: session, storage: memoryStorage(),
                                  fetchImpl: fake.fetchImpl, ...quick });
  const seen = recorder(client, "s5");
  await until(() => seen.done, 2000, "done");
  assert.deepEqual(fake.calls.map((call) => call.url.split("/").at(-1)),
                   ["events", "events", "events", "status"]);
  assert.deepEqual(seen.transports, ["stream:null", "polling:failed"]);
  assert.deepEqual(seen.problems, ["NETWORK_ERROR", "NETWORK_ERROR"]);
}

async function withoutReadableStreamsItPolls() {
  const bodiless = { status: 200, ok: true, body: null,
                     headers: new Headers({ "Content-Type": "text/event-stream" }) };
  const fake = scripted([bodiless, json(200, doc("s6", "succeeded"), { ETag: '"a"' })]);
  const client = new JobsClient({ identity: session, storage: memoryStorage(),
                                  fetchImpl: fake.fetchImpl, ...quick, streamRetryMs: 1 });
  const seen = recorder(client, "s6");
  await until(() => seen.done, 2000, "done");
  assert.deepEqual(seen.transports, ["polling:unsupported"]);
  assert.equal(fake.calls.length, 2);
}

async function aReloadResumesTheStream() {
  const kept = doc("s7", "running", { progress: 30, currentStep: "Generating audiences..." });
  const storage = memoryStorage({ "jobs-client:jobs": JSON.stringify({
    s7: { jobId: "s7", type: "website-analysis", createdAt: "2026-01-01T00:00:00Z",
          lastEventId: "4-4-d", document: kept } }) });
  const fake = scripted([sse([": keep-alive\n\n"], "hang")]);
  const client = new JobsClient({ identity: session, storage, fetchImpl: fake.fetchImpl,
                                  ...quick });
  const updates = [];
  const resumed = client.resumeAll({ onUpdate: (d) => updates.push(d) });
  assert.deepEqual(resumed.map((job) => job.jobId), ["s7"]);
  await until(() => updates.length === 1, 2000, "the kept document");
  assert.deepEqual(updates[0], kept);
  await until(() => fake.calls.length === 1, 2000, "the stream");
  assert.equal(fake.calls[0].headers["Last-Event-ID"], "4-4-d");
  // stop() closes the open stream and keeps the job for the next page
  assert.equal(client.stop("s7"), true);
  assert.ok(fake.calls[0].signal.aborted);
  assert.deepEqual(client.stored().map((job) => job.jobId), ["s7"]);
  // a job kept without its document is resumed from its current document
  const bare = memoryStorage({ "jobs-client:jobs": JSON.stringify({
    s8: { jobId: "s8", type: null, createdAt: "2026-01-01T00:00:00Z", lastEventId: "9-9-z" } }) });
  const again = scripted([sse([frame("9-9-y", doc("s8", "succeeded"))])]);
  const other = new JobsClient({ identity: session, storage: bare,
                                 fetchImpl: again.fetchImpl, ...quick });
  let done = null;
  other.resumeAll({ onDone: (d) => { done = d; } });
  await until(() => done, 2000, "done");
  assert.equal(again.calls[0].headers["Last-Event-ID"], undefined);
}

for (const test of [framesSplitAnywhere, reconnectsAfterTheLastEvent, refusedStreamsArePolled,
                    theStreamIsTriedAgainLater, repeatedFailuresFallBackToPolling,
                    withoutReadableStreamsItPolls, aReloadResumesTheStream]) {
  await test();
  console.log(`ok ${test.name}`);
}
"""
