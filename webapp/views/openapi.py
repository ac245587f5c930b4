"""The OpenAPI 3.1 document of every endpoint, served at GET /api/v1/openapi.json.

It describes operations only; every body is a schema that does the work elsewhere:
requests and query strings are the marshmallow schemas the views load with
(webapp/schemas/inputs.py), the bodies the views build are the marshmallow schemas they dump
through (webapp/schemas/responses.py), and the results the pipelines build are their JSON Schemas
(queue_jobs.services.catalog.RESULT_SCHEMAS). tests/integration/test_openapi.py checks the
live answers against the document with schemathesis.

Every endpoint is one entry of OPERATIONS; the same test fails when a URL rule of the app
has no entry. Documenting a new endpoint is one `Operation(...)`: path, method, summary,
tag, security, request schema, replies and the error statuses it can answer.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response

from queue_jobs.models import JobType
from queue_jobs.services.catalog import RESULT_SCHEMAS, sync_failures_by_status
from queue_jobs.services.ops_actions import ACTOR
from webapp.schemas import apidoc
from webapp.schemas import inputs as schemas
from webapp.schemas import ops as ops_schemas
from webapp.schemas import responses as bodies
from webapp.schemas.apidoc import JSON, Operation, Reply, Security, errors
from webapp.schemas.responses import component

bp = Blueprint("openapi", __name__)

OPENAPI_PATH = "/api/v1/openapi.json"

# ---------------------------------------------------------------------------------------
# Shared pieces: security, parameters, headers.
# ---------------------------------------------------------------------------------------

JWT_OR_SESSION: Security = ({"bearerAuth": []}, {"sessionId": []})
JWT: Security = ({"bearerAuth": []},)
# register/login: no identity needed; an x-session-id hands its organizations to the user.
SESSION_OPTIONAL: Security = ({}, {"sessionId": []})
PUBLIC: Security = ()
# The deprecated website endpoints: a JWT, a session, or nothing at all (as before).
OPTIONAL_IDENTITY: Security = ({"bearerAuth": []}, {"sessionId": []}, {})

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description":
                   "An access token from register/login (a refresh token for /auth/refresh "
                   "only). A bad or expired token, or one whose account no longer "
                   "exists, is 401 even with an x-session-id."},
    "sessionId": {"type": "apiKey", "in": "header", "name": "x-session-id", "description":
                  "An anonymous session the client makes up: 8 to 128 characters of "
                  "A-Z a-z 0-9 _ -. Malformed: 401 SESSION_INVALID."},
    "opsToken": {"type": "http", "scheme": "bearer", "description":
                 "The OPS_TOKEN of this deployment (the ops page's data, the ops API)."},
}
OPS_TOKEN: Security = ({"opsToken": []},)

_UUID = {"type": "string", "format": "uuid"}
ACTOR_PATTERN = ACTOR.pattern
PATH_PARAMETERS = {
    "jobId": "A job id (uuid); a malformed or unknown id, or another owner's job, is 404.",
    "postId": "A saved post id (uuid); malformed, unknown or not yours: 404.",
    "imageId": "An image id (uuid); malformed, unknown or not visible to you: 404.",
}
PARAMETERS: dict[str, dict[str, Any]] = {
    "IdempotencyKey": {
        "in": "header", "name": "Idempotency-Key", "required": False,
        "schema": {"type": "string", "pattern": schemas.IDEMPOTENCY_KEY.pattern},
        "description": "The same key from the same owner within 24 hours answers 201 with "
                       "the first job's id and `Idempotent-Replayed: true`; with a different "
                       "body, 422 IDEMPOTENCY_KEY_REUSED."},
    "IfNoneMatch": {
        "in": "header", "name": "If-None-Match", "required": False,
        "schema": {"type": "string"},
        "description": "The ETag of the last document seen: 304 while it has not changed."},
    "OpsActor": {
        "in": "header", "name": "X-Ops-Actor", "required": False,
        "schema": {"type": "string", "pattern": ACTOR_PATTERN},
        "description": "Who acts, as the audit trail records it (self-declared: OPS_TOKEN "
                       "is one shared secret); absent: ops-token."},
    "LastEventId": {
        "in": "header", "name": "Last-Event-ID", "required": False,
        "schema": {"type": "string"},
        "description": "The id of the last event seen: if the job changed since, the current "
                       "document comes at once; otherwise the stream waits for a change."},
    **{name: {"in": "path", "name": name, "required": True, "schema": _UUID,
              "description": text} for name, text in PATH_PARAMETERS.items()},
    "jobType": {"in": "path", "name": "jobType", "required": True,
                "schema": {"type": "string", "enum": [t.value for t in JobType]},
                "description": "A job type; another name is 404 JOB_TYPE_NOT_FOUND."},
}
HEADERS: dict[str, dict[str, Any]] = {
    "Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 0},
                    "description": "Seconds to wait before trying again."},
    "ETag": {"required": True, "schema": {"type": "string", "pattern": '^(W/)?"[^"]*"$'},
             "description": "Send it back as If-None-Match."},
    "Cache-Control": {"required": True, "schema": {"type": "string"}},
    "X-Accel-Buffering": {"required": True, "schema": {"type": "string", "enum": ["no"]},
                          "description": "Tells a proxy (nginx) not to buffer the stream."},
    "Idempotent-Replayed": {"required": False, "schema": {"type": "string", "enum": ["true"]},
                            "description": "Present when an earlier request with the same "
                                           "Idempotency-Key made the job."},
    "Deprecation": {"required": True, "schema": {"type": "string"},
                    "description": "This endpoint is kept for migration only (RFC 9745 "
                                   "date: deprecated since)."},
    "Link": {"required": True, "schema": {"type": "string"},
             "description": 'The job endpoint that replaces it: rel="successor-version".'},
    "X-Session-Id": {"required": False, "schema": {"type": "string"},
                     "description": "Sent when the call carried no identity: the session "
                                    "that owns its job and images."},
}

# How a deprecated synchronous call answers its job's failure (webapp/views/legacy.py), with
# the failed job's `jobId` in the envelope.
LEGACY_FAILURES = sync_failures_by_status()
LEGACY_NOTE = ("Runs the job's pipeline inside the request (a minute or more), on a job row "
               "the jobs API can see and cancel; a failure answers the job's errorCode and "
               "jobId.")

# One event of the stream (OpenAPI 3.2's SSE shape: its fields, `data` as JSON).
STATUS_EVENT = {
    "type": "object", "required": ["event", "id", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["status"]},
        "id": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": {"$ref": "#/components/schemas/JobStatus"}},
    },
}

CREATED = Reply("Created (or replayed).", bodies.JobCreated, ("Idempotent-Replayed",))

# The ops API (webapp/views/ops_api.py): behind OPS_TOKEN, 404 without it; X-Ops-Actor
# names who acts (self-declared: the token is shared).
_OPS_ERRORS = {401: ("OPS_TOKEN_INVALID",), 503: ("QUEUE_UNAVAILABLE",)}
_OPS_NOTE = ("404 unless the deployment sets OPS_TOKEN. Actions record `X-Ops-Actor` (a "
             "short name; else ops-token) in the audit trail.")
OPS_API_OPERATIONS = (
    Operation(
        "get", "/ops/api/jobs", "opsListJobs", "Find jobs, any owner's", "ops", OPS_TOKEN,
        {200: Reply("A page of matching jobs, newest first.", ops_schemas.OpsJobPage,
                    ("Cache-Control",))},
        {**_OPS_ERRORS, 400: ("VALIDATION_ERROR", "CURSOR_INVALID"), 404: ("NOT_FOUND",)},
        query=ops_schemas.OpsJobQuery, description=_OPS_NOTE),
    Operation(
        "get", "/ops/api/jobs/counts", "opsCountJobs", "Matching jobs by status", "ops",
        OPS_TOKEN, {200: Reply("Counts by status.", ops_schemas.OpsCounts, ("Cache-Control",))},
        {**_OPS_ERRORS, 400: ("VALIDATION_ERROR", "CURSOR_INVALID"), 404: ("NOT_FOUND",)},
        query=ops_schemas.OpsJobQuery, description=_OPS_NOTE),
    Operation(
        "get", "/ops/api/jobs/{jobId}", "opsGetJob", "A job's page", "ops", OPS_TOKEN,
        {200: Reply("The job, its step runs, dispatches, images, status document and "
                    "audit entries.", ops_schemas.OpsJobDetail, ("Cache-Control",))},
        {**_OPS_ERRORS, 404: ("JOB_NOT_FOUND", "NOT_FOUND")}, description=_OPS_NOTE),
    *(Operation(
        "post", f"/ops/api/jobs/{{jobId}}/{action}", f"ops{action.title()}Job",
        f"{action.title()} any owner's job", "ops", OPS_TOKEN,
        {200: Reply("Done, and written to the audit trail.", ops_schemas.OpsActed,
                    ("Cache-Control",))},
        {**_OPS_ERRORS, 400: ("VALIDATION_ERROR",), 404: ("JOB_NOT_FOUND", "NOT_FOUND"),
         409: (conflict,)},
        headers=("OpsActor",), description=_OPS_NOTE)
      for action, conflict in (("retry", "JOB_NOT_RETRYABLE"),
                               ("cancel", "JOB_NOT_CANCELLABLE"))),
    *(Operation(
        "post", f"/ops/api/jobs/{action}", f"opsBulk{action.title()}",
        f"{action.title()} every matching job", "ops", OPS_TOKEN,
        {200: Reply("Dry run: how many match. Run: how many were acted on or skipped.",
                    ops_schemas.OpsBulkAnswer, ("Cache-Control",))},
        {**_OPS_ERRORS, 400: ("VALIDATION_ERROR",), 404: ("NO_MATCHING_JOBS", "NOT_FOUND"),
         409: ("MORE_JOBS_MATCH",), 413: ("PAYLOAD_TOO_LARGE",)},
        body=ops_schemas.OpsBulkRequest, headers=("OpsActor",),
        description=f"Only {states} jobs match. {_OPS_NOTE}")
      for action, states in (("retry", "failed"), ("cancel", "queued and running"))),
    Operation(
        "get", "/ops/api/types", "opsJobTypes", "Job types, paused or not", "ops", OPS_TOKEN,
        {200: Reply("Every job type: paused, why, by whom, since when, jobs held.",
                    ops_schemas.OpsJobTypes, ("Cache-Control",))},
        {**_OPS_ERRORS, 404: ("NOT_FOUND",)}, description=_OPS_NOTE),
    Operation(
        "post", "/ops/api/types/{jobType}/pause", "opsPauseJobType", "Pause a job type",
        "ops", OPS_TOKEN,
        {200: Reply("Paused (or already), and written to the audit trail.",
                    ops_schemas.OpsPaused, ("Cache-Control",))},
        {**_OPS_ERRORS, 400: ("VALIDATION_ERROR",), 404: ("JOB_TYPE_NOT_FOUND", "NOT_FOUND"),
         413: ("PAYLOAD_TOO_LARGE",)},
        body=ops_schemas.OpsPauseRequest, headers=("OpsActor",),
        description="New jobs of the type are accepted and stay queued (their status "
                    "document's pausedReason says why); queued jobs no worker took are held "
                    f"back; running jobs finish. {_OPS_NOTE}"),
    Operation(
        "post", "/ops/api/types/{jobType}/resume", "opsResumeJobType", "Resume a job type",
        "ops", OPS_TOKEN,
        {200: Reply("Resumed (or was not paused): its held jobs are dispatched, oldest "
                    "first.", ops_schemas.OpsResumed, ("Cache-Control",))},
        {**_OPS_ERRORS, 400: ("VALIDATION_ERROR",), 404: ("JOB_TYPE_NOT_FOUND", "NOT_FOUND")},
        headers=("OpsActor",), description=_OPS_NOTE),
    Operation(
        "post", "/ops/api/prune", "opsPrune", "Delete old finished jobs now", "ops", OPS_TOKEN,
        {200: Reply("How many were deleted.", ops_schemas.OpsPruned, ("Cache-Control",))},
        {**_OPS_ERRORS, 400: ("VALIDATION_ERROR",), 404: ("NOT_FOUND",),
         413: ("PAYLOAD_TOO_LARGE",)},
        body=ops_schemas.OpsPruneRequest, headers=("OpsActor",), description=_OPS_NOTE),
    Operation(
        "get", "/ops/api/audit", "opsAudit", "The audit trail", "ops", OPS_TOKEN,
        {200: Reply("Operators' actions, newest first.", ops_schemas.OpsAuditPage,
                    ("Cache-Control",))},
        {**_OPS_ERRORS, 400: ("VALIDATION_ERROR", "CURSOR_INVALID"), 404: ("NOT_FOUND",)},
        query=ops_schemas.OpsAuditQuery, description=_OPS_NOTE),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post", "/api/v1/jobs/website-analysis", "createWebsiteAnalysis",
        "Start analysing a website", "jobs", JWT_OR_SESSION,
        {201: CREATED}, errors(400, 401, 413, 422, 429, 503),
        body=schemas.WebsiteAnalysisRequest, headers=("IdempotencyKey",),
        description="The job belongs to the user with a JWT, else to the session. Its "
                    "result (§6.1) names the organization it creates."),
    Operation(
        "post", "/api/v1/jobs/content-generation", "createContentGeneration",
        "Start writing a blog post", "jobs", JWT,
        {201: CREATED},
        errors(400, 401, 413, 422, 429, 503, not_found=("ORGANIZATION_NOT_FOUND",)),
        body=schemas.ContentGenerationRequest, headers=("IdempotencyKey",),
        description="The organization must be visible to the user (a malformed id is 404 "
                    "too). Sending the x-session-id that analysed it claims it first."),
    Operation(
        "get", "/api/v1/jobs/{jobId}/status", "getJobStatus", "Poll a job", "jobs",
        JWT_OR_SESSION,
        {200: Reply("The status document.", bodies.JobStatus, ("ETag", "Cache-Control")),
         304: Reply("Unchanged since the ETag sent in If-None-Match.", None, ("ETag",))},
        errors(401, 503, not_found=("JOB_NOT_FOUND",)), headers=("IfNoneMatch",)),
    Operation(
        "get", "/api/v1/jobs/{jobId}/events", "streamJobStatus",
        "Follow a job's status as server-sent events", "jobs", JWT_OR_SESSION,
        {200: Reply("`text/event-stream`: `event: status`, an `id` increasing per job, and "
                    "`data:` the status document exactly as /status answers it, on one line; "
                    "the first at once, then one per change; `: keep-alive` comments while "
                    "nothing changes (at most 15 s apart); closed after a succeeded or "
                    "failed document.", STATUS_EVENT,
                    ("Cache-Control", "X-Accel-Buffering"), media_type="text/event-stream")},
        errors(401, not_found=("JOB_NOT_FOUND",),
               service_unavailable=("QUEUE_UNAVAILABLE", "STREAMS_UNAVAILABLE")),
        headers=("LastEventId",),
        description="Driven by PostgreSQL NOTIFY. 503 STREAMS_UNAVAILABLE: this server holds "
                    "as many streams as it may; poll /status instead."),
    Operation(
        "post", "/api/v1/jobs/{jobId}/retry", "retryJob", "Retry a failed job", "jobs",
        JWT_OR_SESSION,
        {200: Reply("Queued again, resuming at the failed step.", bodies.JobCreated)},
        errors(401, 429, 503, not_found=("JOB_NOT_FOUND",), conflict=("JOB_NOT_RETRYABLE",)),
        description="Only failed (including cancelled) jobs; the job is active again and "
                    "counts against the owner's limit."),
    Operation(
        "post", "/api/v1/jobs/{jobId}/cancel", "cancelJob", "Cancel a job", "jobs",
        JWT_OR_SESSION, {200: Reply("Cancelled, or being stopped.", bodies.JobCancelled)},
        errors(401, 503, not_found=("JOB_NOT_FOUND",), conflict=("JOB_NOT_CANCELLABLE",)),
        description="A queued job fails with CANCELLED at once; a running one within 5 s."),
    Operation(
        "get", "/api/v1/jobs/", "listJobs", "List your jobs", "jobs", JWT_OR_SESSION,
        {200: Reply("Status documents without result, newest first.", bodies.JobList)},
        errors(400, 401, 503), query=schemas.JobListQuery,
        description="Also answered at /api/v1/jobs, without the slash."),
    Operation(
        "post", "/api/v1/auth/register", "register", "Create an account", "auth",
        SESSION_OPTIONAL, {201: Reply("Signed in.", bodies.SignedIn)},
        errors(400, 413, 429, 503, unauthorized=("SESSION_INVALID",), conflict=("EMAIL_TAKEN",)),
        body=schemas.RegisterRequest,
        description="Password 8 to 1024 characters. Sign-ups per client address are "
                    "limited (429)."),
    Operation(
        "post", "/api/v1/auth/login", "login", "Sign in", "auth", SESSION_OPTIONAL,
        {200: Reply("Signed in.", bodies.SignedIn)},
        errors(400, 413, 429, 503, unauthorized=("INVALID_CREDENTIALS", "SESSION_INVALID")),
        body=schemas.LoginRequest,
        description="Repeated failures per email and client address answer 429, even with "
                    "the right password."),
    Operation(
        "post", "/api/v1/auth/refresh", "refresh", "A new access token", "auth", JWT,
        {200: Reply("A fresh access token.", bodies.AccessToken)},
        errors(503, unauthorized=("AUTH_REQUIRED", "TOKEN_INVALID", "TOKEN_EXPIRED")),
        description="Send the refresh token (not an access token) as the Bearer token."),
    Operation(
        "get", "/api/v1/auth/me", "me", "You and your organizations", "auth", JWT,
        {200: Reply("The user and their organizations, newest first.", bodies.Me)},
        errors(401, 503),
        description="With the x-session-id of an anonymous analysis, its organizations "
                    "become the user's first."),
    Operation(
        "get", "/api/v1/posts/{postId}", "getPost", "A saved blog post", "posts", JWT,
        {200: Reply("The post.", component("Post"))},
        errors(401, 503, not_found=("POST_NOT_FOUND",))),
    Operation(
        "get", "/api/v1/images/{imageId}", "getImage", "A generated image", "media",
        JWT_OR_SESSION,
        {200: Reply("The image bytes with their content type.", {},
                    ("Cache-Control",), media_type="image/*")},
        errors(401, 503, not_found=("IMAGE_NOT_FOUND",)),
        description="Visible like the job that made it (or the saved post's organization)."),
    *(Operation(
        "post", path, operation_id, summary, "legacy", security,
        {200: Reply(answer, result, ("X-Session-Id",) if security == OPTIONAL_IDENTITY else ())},
        {**errors(400, 401, 413, 429, 503), **LEGACY_FAILURES, **extra},
        body=body, deprecated=True,
        description=f"Deprecated: use {successor}. {LEGACY_NOTE}")
      for path, operation_id, summary, security, body, result, answer, successor, extra in (
          ("/api/analyze-website", "analyzeWebsite", "Analyse a website, synchronously",
           OPTIONAL_IDENTITY, schemas.WebsiteAnalysisRequest, component("WebsiteAnalysisResult"),
           "The website-analysis result (§6.1).", "POST /api/v1/jobs/website-analysis", {}),
          ("/api/generate-audiences", "generateAudiences", "Target audiences for an analysis",
           OPTIONAL_IDENTITY, schemas.AudiencesRequest, component("AudiencesResult"),
           "The audiences step's part of the result.", "POST /api/v1/jobs/website-analysis",
           {}),
          ("/api/generate-pitches", "generatePitches", "A sales pitch per audience",
           OPTIONAL_IDENTITY, schemas.PitchesRequest, component("PitchesResult"),
           "The scenarios, each with its pitch.", "POST /api/v1/jobs/website-analysis", {}),
          ("/api/generate-audience-images", "generateAudienceImages",
           "An image per scenario", OPTIONAL_IDENTITY, schemas.AudienceImagesRequest,
           component("ImagesResult"), "The scenarios given, each with its new image.",
           "POST /api/v1/jobs/website-analysis", {}),
          ("/api/v1/enhanced-blog-generation/generate", "enhancedBlogGeneration",
           "Write a blog post, synchronously", JWT, schemas.ContentGenerationRequest,
           component("ContentGenerationResult"), "The content-generation result (§6.2).",
           "POST /api/v1/jobs/content-generation",
           {404: ("ORGANIZATION_NOT_FOUND",)}),
      )),
    Operation(
        "get", "/healthz", "healthz", "Liveness", "health", PUBLIC,
        {200: Reply("The process is up.", bodies.Healthy)}),
    Operation(
        "get", "/readyz", "readyz", "Readiness", "health", PUBLIC,
        {200: Reply("PostgreSQL reachable and the schema current.", bodies.Ready),
         503: Reply("Not ready: schema outdated, or PostgreSQL unreachable.", bodies.NotReady)},
        errors(503)),
    Operation(
        "get", "/", "demoPage", "The demo page", "meta", PUBLIC,
        {200: Reply("An HTML page driving the jobs API (its assets are under /static/).",
                    {"type": "string"}, ("Cache-Control",), media_type="text/html")}),
    Operation(
        "get", "/metrics", "metrics", "Prometheus metrics", "health", PUBLIC,
        {200: Reply("Prometheus text: jobs by type and status, queue depth, step durations "
                    "(from the jobs table), HTTP latency per route (summed over the "
                    "gunicorn processes).", {"type": "string"}, media_type="text/plain")},
        errors(503)),
    Operation(
        "get", "/ops", "opsPage", "The ops page", "ops", PUBLIC,
        {200: Reply("An HTML page showing the ops dashboards as tables and charts, "
                    "refreshing itself; it reads the token from `#token=` or a form and "
                    "holds no data itself.", {"type": "string"}, ("Cache-Control",),
                    media_type="text/html")},
        errors(not_found=("NOT_FOUND",)),
        description="404 unless the deployment sets OPS_TOKEN."),
    Operation(
        "get", "/ops/data", "opsData", "Every ops dashboard's rows", "ops", OPS_TOKEN,
        {200: Reply("Each ops/dashboards/*.sql run in one read-only snapshot; a query that "
                    "fails is reported in its `error`, the others still answer.", bodies.OpsData,
                    ("Cache-Control",))},
        errors(503, unauthorized=("OPS_TOKEN_INVALID",), not_found=("NOT_FOUND",)),
        description="404 unless the deployment sets OPS_TOKEN."),
    *OPS_API_OPERATIONS,
    Operation(
        "get", OPENAPI_PATH, "openapi", "This document", "meta", PUBLIC,
        {200: Reply("The OpenAPI 3.1 document.", {"type": "object"})}),
)

TAGS = [
    {"name": "jobs", "description": "Slow AI work as jobs: create, poll, retry, cancel."},
    {"name": "auth", "description": "Accounts and tokens."},
    {"name": "posts", "description": "Saved blog posts."},
    {"name": "media", "description": "Generated images."},
    {"name": "health", "description": "Liveness and readiness."},
    {"name": "meta", "description": "This document and the demo page."},
    {"name": "ops", "description": "The ops page and the ops API (behind OPS_TOKEN)."},
    {"name": "legacy", "description": "The deprecated synchronous endpoints, kept for "
                                      "migration (see the README's migration guide)."},
]


def _new_spec() -> APISpec:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Job service", version="1", openapi_version="3.1.0", plugins=[plugin],
        info={"description": "Slow AI work (website analysis, blog posts) as jobs on "
                             "PostgreSQL. Errors are always the `Error` envelope. Strings "
                             "must not contain NUL or unpaired surrogates (400)."},
        tags=TAGS)
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, parameter in PARAMETERS.items():
        spec.components.parameter(name, parameter["in"], parameter)
    for name, header in HEADERS.items():
        spec.components.header(name, header)
    spec.components.schema("Error", schema=bodies.Error)
    apidoc.add_shapes(spec, RESULT_SCHEMAS)
    return spec


def build_document(operations: tuple[Operation, ...] = OPERATIONS) -> dict[str, Any]:
    spec = _new_spec()
    for op in operations:
        apidoc.add_operation(spec, op)
    return spec.to_dict()


@functools.cache
def _document_bytes() -> bytes:
    return json.dumps(build_document(), separators=(",", ":")).encode()


@bp.get(OPENAPI_PATH)
def openapi_document() -> Response:
    return Response(_document_bytes(), mimetype=JSON)
