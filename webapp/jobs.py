"""The jobs API (contract §5): thin views over queue_jobs.jobs."""

from __future__ import annotations

import hashlib
import json

from flask import Blueprint, Response, current_app, jsonify, request
from psycopg_pool import ConnectionPool

from queue_jobs import jobs
from queue_jobs.pipeline.website_analysis import JOB_TYPE as WEBSITE_ANALYSIS
from webapp.identity import current_owner
from webapp.schemas import JobListQuery, WebsiteAnalysisRequest, load, load_json_body

bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs")


def _pool() -> ConnectionPool:
    pool: ConnectionPool = current_app.extensions["db_pool"]
    return pool


@bp.post("/website-analysis")
def create_website_analysis() -> tuple[Response, int]:
    owner = current_owner()
    body = load_json_body(request, WebsiteAnalysisRequest())
    with _pool().connection() as conn:
        job_id = jobs.create_job(conn, WEBSITE_ANALYSIS, owner, {"url": body["url"]})
    return jsonify({"jobId": str(job_id)}), 201


@bp.get("/<job_id>/status")
def job_status(job_id: str) -> Response:
    owner = current_owner()
    with _pool().connection() as conn:
        document = jobs.job_status(conn, jobs.parse_job_id(job_id), owner)
    body = json.dumps(document, separators=(",", ":")).encode()
    etag = hashlib.blake2b(body, digest_size=16).hexdigest()
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        response = Response(body, mimetype="application/json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = "no-cache"  # always revalidate with If-None-Match
    return response


@bp.post("/<job_id>/retry")
def retry_job(job_id: str) -> Response:
    owner = current_owner()
    parsed = jobs.parse_job_id(job_id)
    with _pool().connection() as conn:
        jobs.retry_job(conn, parsed, owner)
    return jsonify({"jobId": str(parsed)})


@bp.post("/<job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    owner = current_owner()
    with _pool().connection() as conn:
        jobs.cancel_job(conn, jobs.parse_job_id(job_id), owner)
    return jsonify({"cancelled": True})


@bp.get("")
@bp.get("/")
def list_jobs() -> Response:
    owner = current_owner()
    query = load(JobListQuery(), request.args.to_dict())
    with _pool().connection() as conn:
        documents = jobs.list_jobs(conn, owner, query["status"], query["limit"])
    return jsonify({"jobs": documents, "count": len(documents), "limit": query["limit"]})
