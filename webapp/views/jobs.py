"""The jobs API (contract §5): thin views over queue_jobs.services.jobs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from queue_jobs.models import JobType, Owner
from queue_jobs.observability import live_metrics
from queue_jobs.services import connections, jobs, live, organizations
from queue_jobs.services.errors import StreamsRefused
from webapp.context import client_address, db_pool, live_feed, web_config
from webapp.hooks.identity import current_owner
from webapp.schemas.inputs import (
    ContentGenerationRequest,
    JobListQuery,
    WebsiteAnalysisRequest,
    idempotency_key,
    load,
    load_json_body,
)
from webapp.schemas.responses import JobCancelled, JobCreated, JobList, dumped

bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs")


def _create(job_type: str, owner: Owner, job_input: dict[str, Any],
            body: dict[str, Any]) -> Response:
    new = jobs.NewJob(job_type, owner, job_input, request_body=body,
                      client_address=client_address(), idempotency_key=idempotency_key(request))
    # Without an Idempotency-Key a create is one statement: no transaction round trips.
    pool = db_pool()
    keyed = new.idempotency_key is not None
    with pool.connection() if keyed else connections.autocommit(pool) as conn:
        created = jobs.create_job(conn, new, web_config().fair_use)
    response = dumped(JobCreated, {"jobId": created.job_id}, 201)
    if created.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.post("/website-analysis")
def create_website_analysis() -> Response:
    owner = current_owner()
    body = load_json_body(request, WebsiteAnalysisRequest())
    return _create(JobType.WEBSITE_ANALYSIS, owner, {"url": body["url"]}, body)


@bp.post("/content-generation")
def create_content_generation() -> Response:
    owner = current_owner(user_required=True)
    body = load_json_body(request, ContentGenerationRequest())
    job_input, request_body = organizations.content_generation_input(db_pool(), owner, body)
    return _create(JobType.CONTENT_GENERATION, owner, job_input, request_body)


@bp.get("/<job_id>/status")
def job_status(job_id: str) -> Response:
    owner = current_owner(account_checked_by_service=True)  # in job_status's one statement
    parsed = jobs.parse_job_id(job_id)
    known = request.if_none_match
    tags = sorted(known.as_set(include_weak=True))
    feed = live_feed()
    # Unchanged since this process last read it (the change feed says so): no round trip.
    answer = feed.status_from_memory(parsed, owner, tags, known.star_tag)
    if answer is None:
        token = feed.token()
        with connections.autocommit(db_pool()) as conn:  # reads only
            answer = jobs.job_status(conn, parsed, owner, tags, known.star_tag)
        if answer.row is not None:
            feed.remember(token, answer.row, answer.position)
        live_metrics.FROM_DATABASE.inc()
    if answer.body is None or known.contains_weak(answer.etag):
        response = Response(status=304)
    else:
        response = Response(answer.body, mimetype="application/json")
    response.set_etag(answer.etag)
    response.headers["Cache-Control"] = "no-cache"  # always revalidate with If-None-Match
    return response


@bp.get("/<job_id>/events")
def job_events(job_id: str) -> Response:
    """Server-sent events of the job's status document (docs/api.md, "Live status")."""
    owner = current_owner(account_checked_by_service=True)  # by open_stream's read
    parsed = jobs.parse_job_id(job_id)
    feed = live_feed()
    try:
        stream = feed.open_stream(parsed, owner, request.headers.get("Last-Event-ID"))
    except live.StreamsFull:
        raise StreamsRefused() from None
    frames = live.stream_frames(feed, stream, keepalive_s=web_config().stream_keepalive_s)
    response = Response(frames, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


@bp.post("/<job_id>/retry")
def retry_job(job_id: str) -> Response:
    owner = current_owner()
    parsed = jobs.parse_job_id(job_id)
    with db_pool().connection() as conn:
        version = jobs.retry_job(conn, parsed, owner, web_config().fair_use)
    live_feed().written_here(parsed, version)  # committed: no answer from before it
    return dumped(JobCreated, {"jobId": parsed})


@bp.post("/<job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    owner = current_owner()
    parsed = jobs.parse_job_id(job_id)
    with db_pool().connection() as conn:
        version = jobs.cancel_job(conn, parsed, owner)
    live_feed().written_here(parsed, version)  # committed: no answer from before it
    return dumped(JobCancelled, {"cancelled": True})


# One rule for /api/v1/jobs/ and /api/v1/jobs (no redirect): one operation to document.
@bp.get("/", strict_slashes=False)
def list_jobs() -> Response:
    owner = current_owner(account_checked_by_service=True)  # by list_jobs
    query = load(JobListQuery(), request.args.to_dict())
    with connections.autocommit(db_pool()) as conn:  # reads only
        documents = jobs.list_jobs(conn, owner, query.get("status"), query["limit"])
    return dumped(JobList, {"jobs": documents, "count": len(documents), "limit": query["limit"]})
