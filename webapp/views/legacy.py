"""The deprecated synchronous endpoints (contract §7), kept so frontends can migrate
screen by screen. Each runs the job pipeline (or one step of it) inside the request via
queue_jobs.services.sync_runs: same code, same bodies as the job results, and a job row that status,
cancel and fair use see like any other.

A call can take a minute. Under gunicorn's gthread workers it holds one thread, not the
process, so status polls are still answered; at most LEGACY_CALLS_PER_PROCESS run at
once per process (the rest of the threads stay free for polls), beyond that: 429.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema

from queue_jobs.models import JobType, Owner
from queue_jobs.services import jobs, organizations, sync_runs
from queue_jobs.services.errors import AuthRequired, RateLimited
from queue_jobs.services.sync_runs import InlineRun
from webapp.context import client_address, db_pool, legacy_slots, run_resources, web_config
from webapp.hooks.errors import error_response
from webapp.hooks.identity import current_owner
from webapp.schemas.inputs import (
    AudienceImagesRequest,
    AudiencesRequest,
    ContentGenerationRequest,
    PitchesRequest,
    WebsiteAnalysisRequest,
    load_json_body,
)

bp = Blueprint("legacy", __name__)

DEPRECATED_SINCE = "@1795651200"  # 2026-11-26, RFC 9745 date form
WEBSITE = JobType.WEBSITE_ANALYSIS


def _owner() -> tuple[Owner, str | None]:
    """The caller, as for the jobs API; a call without any identity (allowed here, as it
    was) gets a fresh session id, answered in X-Session-Id, that can read its images."""
    try:
        return current_owner(), None
    except AuthRequired:
        session_id = f"legacy_{uuid.uuid4().hex}"
        return Owner(None, session_id), session_id


@contextmanager
def _slot() -> Iterator[None]:
    """One of this process's LEGACY_CALLS_PER_PROCESS slots, or 429 at once."""
    slots = legacy_slots()
    if not slots.acquire(blocking=False):
        raise RateLimited("Too many synchronous calls in progress; use the jobs API.",
                          retry_after_s=5)
    try:
        yield
    finally:
        slots.release()


def _run(job_type: str, owner: Owner, job_input: dict[str, Any],
         body: dict[str, Any]) -> InlineRun:
    with _slot():
        new = jobs.NewJob(job_type, owner, job_input, request_body=body,
                          client_address=client_address())
        return sync_runs.run_inline(run_resources(), new, web_config().fair_use)


def _step_view(step: str, schema: Schema) -> Response:
    owner, session_id = _owner()
    body = load_json_body(request, schema)
    with _slot():
        run = sync_runs.run_website_step(run_resources(), step, owner, body,
                                         client_address(), web_config().fair_use)
    return _answer(run, "/api/v1/jobs/website-analysis", session_id)


def _answer(run: InlineRun, successor: str, session_id: str | None) -> Response:
    outcome = run.outcome
    if outcome.status == "succeeded":
        response = jsonify(outcome.result)
    else:
        code = outcome.error_code or "INTERNAL_ERROR"
        response = error_response(run.failure_status, outcome.error or "Failed.", code,
                                  jobId=str(run.job_id))
    response.headers["Deprecation"] = DEPRECATED_SINCE
    response.headers["Link"] = f'<{successor}>; rel="successor-version"'
    if session_id:
        response.headers["X-Session-Id"] = session_id
    return response


@bp.post("/api/analyze-website")
def analyze_website() -> Response:
    owner, session_id = _owner()
    body = load_json_body(request, WebsiteAnalysisRequest())
    run = _run(WEBSITE, owner, {"url": body["url"]}, body)
    return _answer(run, "/api/v1/jobs/website-analysis", session_id)


@bp.post("/api/generate-audiences")
def generate_audiences() -> Response:
    return _step_view("audiences", AudiencesRequest())


@bp.post("/api/generate-pitches")
def generate_pitches() -> Response:
    return _step_view("pitches", PitchesRequest())


@bp.post("/api/generate-audience-images")
def generate_audience_images() -> Response:
    return _step_view("images", AudienceImagesRequest())


@bp.post("/api/v1/enhanced-blog-generation/generate")
def enhanced_blog_generation() -> Response:
    owner = current_owner(user_required=True)
    body = load_json_body(request, ContentGenerationRequest())
    job_input, request_body = organizations.content_generation_input(db_pool(), owner, body)
    run = _run(JobType.CONTENT_GENERATION, owner, job_input, request_body)
    return _answer(run, "/api/v1/jobs/content-generation", None)
