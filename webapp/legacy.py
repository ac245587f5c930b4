"""The deprecated synchronous endpoints (contract §7), kept so frontends can migrate
screen by screen. Each runs the job pipeline (or one step of it) inside the request via
queue_jobs.inline: same code, same bodies as the job results, and a job row that status,
cancel and fair use see like any other.

A call can take a minute. Under gunicorn's gthread workers it holds one thread, not the
process, so status polls are still answered; at most LEGACY_CALLS_PER_PROCESS run at
once per process (the rest of the threads stay free for polls), beyond that: 429.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from queue_jobs import jobs
from queue_jobs.domain_errors import AuthRequired, RateLimited
from queue_jobs.inline import InlineRun, pipeline_slice, run_inline
from queue_jobs.pages import PageFacts
from queue_jobs.pipeline import content_generation, website_analysis
from queue_jobs.pipeline.runner import Pipeline, StepInput
from queue_jobs.store import Owner
from webapp.context import client_address, legacy_slots, run_resources, web_config
from webapp.errors import error_response
from webapp.identity import current_owner
from webapp.jobs import content_generation_input
from webapp.schemas import (
    AudienceImagesRequest,
    AudiencesRequest,
    PitchesRequest,
    WebsiteAnalysisRequest,
    load_json_body,
)

bp = Blueprint("legacy", __name__)

DEPRECATED_SINCE = "@1795651200"  # 2026-11-26, RFC 9745 date form
# How a failed job's errorCode is answered by a synchronous call.
_FAILURE_STATUS = {
    "FETCH_FAILED": 422, "FETCH_BLOCKED": 422, "INVALID_CONTENT": 422,
    "LLM_ERROR": 502, "LLM_RATE_LIMITED": 502, "LLM_TIMEOUT": 504, "TIMEOUT": 504,
    "CANCELLED": 409,
}
WEBSITE = website_analysis.JOB_TYPE


def _owner() -> tuple[Owner, str | None]:
    """The caller, as for the jobs API; a call without any identity (allowed here, as it
    was) gets a fresh session id, answered in X-Session-Id, that can read its images."""
    try:
        return current_owner(), None
    except AuthRequired:
        session_id = f"legacy_{uuid.uuid4().hex}"
        return Owner(None, session_id), session_id


def _run(job_type: str, owner: Owner, job_input: dict[str, Any], body: dict[str, Any],
         pipeline: Pipeline | None = None,
         checkpoints: dict[str, Any] | None = None) -> InlineRun:
    slots = legacy_slots()
    if not slots.acquire(blocking=False):
        raise RateLimited("Too many synchronous calls in progress; use the jobs API.",
                          retry_after_s=5)
    try:
        new = jobs.NewJob(job_type, owner, job_input, request_body=body,
                          client_address=client_address())
        return run_inline(run_resources(), new, web_config().fair_use, pipeline, checkpoints)
    finally:
        slots.release()


def _answer(run: InlineRun, successor: str, session_id: str | None) -> Response:
    outcome = run.outcome
    if outcome.status == "succeeded":
        response = jsonify(outcome.result)
    else:
        code = outcome.error_code or "INTERNAL_ERROR"
        response = error_response(_FAILURE_STATUS.get(code, 500), outcome.error or "Failed.",
                                  code, jobId=str(run.job_id))
    response.headers["Deprecation"] = DEPRECATED_SINCE
    response.headers["Link"] = f'<{successor}>; rel="successor-version"'
    if session_id:
        response.headers["X-Session-Id"] = session_id
    return response


def _sliced(step: str, checkpoints: dict[str, Any],
            result: Callable[[StepInput], dict[str, Any]]) -> Callable[..., Response]:
    """A view for one website-analysis step, on the earlier steps' outputs from the body."""
    def view(owner: Owner, session_id: str | None, body: dict[str, Any]) -> Response:
        page = PageFacts(url=body["url"] or "", title=body["analysis"]["businessName"],
                         description=body["analysis"]["description"], site_name="")
        outputs = {"analyze": {"page": page.to_dict(), "analysis": body["analysis"]},
                   **{key: make(body) for key, make in checkpoints.items()}}
        run = _run(WEBSITE, owner, {"url": body["url"], "legacyStep": step}, body,
                   pipeline_slice(WEBSITE, step, result), outputs)
        return _answer(run, "/api/v1/jobs/website-analysis", session_id)
    return view


_audiences_view = _sliced(
    "audiences", {},
    lambda step: {"success": True, "audiences": step.outputs["audiences"]["audiences"]})
_pitches_view = _sliced(
    "pitches", {"audiences": lambda body: {"audiences": body["audiences"]}},
    lambda step: {"success": True,
                  "scenarios": website_analysis.scenarios(step, with_images=False)})
_images_view = _sliced(
    "images", {"audiences": lambda body: {"audiences": [s["audience"]
                                                        for s in body["scenarios"]]},
               "pitches": lambda body: {"pitches": [s["pitch"] for s in body["scenarios"]]}},
    lambda step: {"success": True, "scenarios": website_analysis.scenarios(step)})


@bp.post("/api/analyze-website")
def analyze_website() -> Response:
    owner, session_id = _owner()
    body = load_json_body(request, WebsiteAnalysisRequest())
    run = _run(WEBSITE, owner, {"url": body["url"]}, body)
    return _answer(run, "/api/v1/jobs/website-analysis", session_id)


@bp.post("/api/generate-audiences")
def generate_audiences() -> Response:
    return _audiences_view(*_owner(), load_json_body(request, AudiencesRequest()))


@bp.post("/api/generate-pitches")
def generate_pitches() -> Response:
    return _pitches_view(*_owner(), load_json_body(request, PitchesRequest()))


@bp.post("/api/generate-audience-images")
def generate_audience_images() -> Response:
    return _images_view(*_owner(), load_json_body(request, AudienceImagesRequest()))


@bp.post("/api/v1/enhanced-blog-generation/generate")
def enhanced_blog_generation() -> Response:
    owner = current_owner(user_required=True)
    job_input, request_body = content_generation_input(owner)
    run = _run(content_generation.JOB_TYPE, owner, job_input, request_body)
    return _answer(run, "/api/v1/jobs/content-generation", None)
