"""The ops API under /ops/api, behind OPS_TOKEN like /ops/data (webapp/hooks/ops_token.py):
find any job (filters, keyset pages, counts), read one job's page, retry or cancel one
job or many by filter, pause or resume a job type, prune finished jobs, read the audit
trail. Thin views over
queue_jobs.services.ops_jobs and ops_actions; jobs-admin (queue_jobs/admin) is the same
over the command line. docs/operations.md, "The operator's console", has curl examples.

Who acts: the `X-Ops-Actor` header (a short name), else "ops-token". OPS_TOKEN is one
shared secret, so the actor is self-declared: the audit trail records it as given.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from flask import Blueprint, Response, request

from queue_jobs.models import Owner
from queue_jobs.services import connections, jobs, ops_actions, ops_jobs
from queue_jobs.services.connections import Conn
from queue_jobs.services.ops_jobs import JobFilter
from webapp.context import db_pool, live_feed, web_config
from webapp.hooks.ops_token import check_ops_token, only_when_configured
from webapp.schemas.inputs import load, load_json_body
from webapp.schemas.ops import (
    OpsActed,
    OpsAuditPage,
    OpsAuditQuery,
    OpsBulkAnswer,
    OpsBulkRequest,
    OpsCounts,
    OpsJobDetail,
    OpsJobPage,
    OpsJobQuery,
    OpsJobTypes,
    OpsPaused,
    OpsPauseRequest,
    OpsPruned,
    OpsPruneRequest,
    OpsResumed,
)
from webapp.schemas.responses import dumped

bp = Blueprint("ops_api", __name__, url_prefix="/ops/api")
# Job ids are <uuid:...>: /jobs/retry and /jobs/cancel (bulk) are not a job's page, and a
# malformed id is 404 NOT_FOUND before any view runs.
ACTOR_HEADER = "X-Ops-Actor"


@bp.before_request
def authorised() -> None:
    only_when_configured()
    check_ops_token()


@bp.after_request
def private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _actor() -> str:
    return ops_actions.check_actor(request.headers.get(ACTOR_HEADER))


def _filter(values: dict[str, Any]) -> JobFilter:
    return JobFilter.from_strings({name: values.get(name) for name in ops_jobs.FILTER_NAMES
                                   if name in values})


@bp.get("/jobs")
def list_jobs() -> Response:
    query = load(OpsJobQuery(), request.args.to_dict())
    with connections.autocommit(db_pool()) as conn:  # reads only
        page = ops_jobs.search(conn, _filter(query), query.get("cursor"), query.get("limit"))
    return dumped(OpsJobPage, page)


@bp.get("/jobs/counts")
def count_jobs() -> Response:
    query = load(OpsJobQuery(), request.args.to_dict())
    with connections.autocommit(db_pool()) as conn:
        counts = ops_jobs.counts(conn, _filter(query))
    return dumped(OpsCounts, {"counts": counts, "total": sum(counts.values())})


@bp.get("/jobs/<uuid:job_id>")
def job_detail(job_id: uuid.UUID) -> Response:
    with db_pool().connection() as conn:
        detail = ops_jobs.job_detail(conn, job_id, _as_its_owner_sees_it)
    return dumped(OpsJobDetail, detail)


def _as_its_owner_sees_it(conn: Conn, job_id: uuid.UUID, owner: Owner) -> Any:
    """The status document, as GET /api/v1/jobs/<id>/status answers the job's owner."""
    answer = jobs.job_status(conn, job_id, owner)
    return None if answer.body is None else json.loads(answer.body)


@bp.post("/jobs/<uuid:job_id>/retry")
def retry_job(job_id: uuid.UUID) -> Response:
    actor, parsed = _actor(), job_id
    with db_pool().connection() as conn:
        version = ops_actions.retry_one(conn, actor, parsed,
                                        fair=web_config().fair_use.fair_dispatch)
    live_feed().written_here(parsed, version)  # committed: no answer from before it
    return dumped(OpsActed, {"jobId": parsed, "action": "retry", "actor": actor})


@bp.post("/jobs/<uuid:job_id>/cancel")
def cancel_job(job_id: uuid.UUID) -> Response:
    actor, parsed = _actor(), job_id
    with db_pool().connection() as conn:
        version = ops_actions.cancel_one(conn, actor, parsed)
    live_feed().written_here(parsed, version)
    return dumped(OpsActed, {"jobId": parsed, "action": "cancel", "actor": actor})


def _bulk(action: str) -> Response:
    actor = _actor()
    body = load_json_body(request, OpsBulkRequest())
    job_filter = _filter(body["filter"])
    if body.get("dryRun"):
        with connections.autocommit(db_pool()) as conn:
            plan = ops_actions.matching(conn, action, job_filter)
        return dumped(OpsBulkAnswer, {**plan, "dryRun": True})
    report = ops_actions.run_bulk(db_pool(), actor, action, job_filter, body["expect"],
                                  fair=web_config().fair_use.fair_dispatch)
    return dumped(OpsBulkAnswer, {**report, "dryRun": False})


@bp.post("/jobs/retry")
def bulk_retry() -> Response:
    return _bulk("retry")


@bp.post("/jobs/cancel")
def bulk_cancel() -> Response:
    return _bulk("cancel")


@bp.get("/types")
def job_types() -> Response:
    with connections.autocommit(db_pool()) as conn:
        types = ops_actions.job_types(conn)
    return dumped(OpsJobTypes, {"types": types})


@bp.post("/types/<job_type>/pause")
def pause_type(job_type: str) -> Response:
    actor = _actor()
    body = load_json_body(request, OpsPauseRequest())
    with db_pool().connection() as conn:
        paused = ops_actions.pause(conn, actor, job_type, body["reason"])
    return dumped(OpsPaused, paused)


@bp.post("/types/<job_type>/resume")
def resume_type(job_type: str) -> Response:
    resumed = ops_actions.resume(db_pool(), _actor(), job_type,
                                 fair=web_config().fair_use.fair_dispatch)
    return dumped(OpsResumed, resumed)


@bp.post("/prune")
def prune() -> Response:
    actor = _actor()
    body = load_json_body(request, OpsPruneRequest())
    return dumped(OpsPruned, ops_actions.prune(db_pool(), actor, body["olderThanDays"]))


@bp.get("/audit")
def audit() -> Response:
    query = load(OpsAuditQuery(), request.args.to_dict())
    with connections.autocommit(db_pool()) as conn:
        page = ops_actions.audit_trail(conn, query.get("cursor"), query.get("limit"))
    return dumped(OpsAuditPage, page)
