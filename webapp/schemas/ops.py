"""marshmallow schemas of the ops API (webapp/views/ops_api.py): its query strings and
bodies, and the bodies it answers. What a filter value may be is decided by the parsers of
queue_jobs.services.ops_jobs (jobs-admin calls the same): the fields here run them, and
carry a pattern or an enum for the API document where one says it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from queue_jobs.models import ISO_UTC, JobStatus, JobType
from queue_jobs.services import ops_actions, ops_jobs
from webapp.schemas.inputs import _StrictBoolean


def _checked_by(parse: Callable[[str], Any]) -> Callable[[str], None]:
    def check(value: str) -> None:
        try:
            parse(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None
    return check


def _filter_field(name: str, *extra: validate.Validator, **metadata: Any) -> fields.String:
    _attribute, parse = ops_jobs.FILTERS[name]
    return fields.String(validate=[*extra, _checked_by(parse)], metadata=metadata)


FILTER_FIELDS: dict[str, fields.Field] = {
    "status": _filter_field("status", validate.OneOf([s.value for s in JobStatus])),
    "type": _filter_field("type", validate.OneOf([t.value for t in JobType])),
    "errorCode": _filter_field("errorCode", validate.Regexp(r"^[A-Z][A-Z0-9_]{0,63}$")),
    "owner": _filter_field(
        "owner", validate.Length(min=1, max=254),
        description="A user id, a user's email, or a session id ('user:' or 'session:' "
                    "before it to say which)."),
    "createdFrom": _filter_field("createdFrom", description="ISO 8601; without a zone: UTC. "
                                                            "Inclusive."),
    "createdTo": _filter_field("createdTo", description="ISO 8601; without a zone: UTC. "
                                                        "Exclusive."),
    "idPrefix": _filter_field("idPrefix", validate.Regexp(r"^[0-9A-Fa-f-]{1,64}$"),
                              description="The id's first hex digits (hyphens ignored)."),
}
OpsFilter = Schema.from_dict(FILTER_FIELDS, name="OpsFilter")

_PAGE: dict[str, fields.Field] = {
    "cursor": fields.String(validate=validate.Length(min=1, max=200),
                            metadata={"description": "nextCursor of the previous page."}),
    "limit": fields.Integer(validate=validate.Range(1, ops_jobs.MAX_PAGE),
                            metadata={"description": f"Default {ops_jobs.DEFAULT_PAGE}."}),
}
OpsJobQuery = Schema.from_dict({**FILTER_FIELDS, **_PAGE}, name="OpsJobQuery")
OpsAuditQuery = Schema.from_dict(dict(_PAGE), name="OpsAuditQuery")


class OpsBulkRequest(Schema):
    filter = fields.Nested(OpsFilter, required=True)
    dryRun = _StrictBoolean(metadata={"description": "true: only count the matching jobs."})
    expect = fields.Integer(strict=True, validate=validate.Range(min=1),
                            metadata={"description": "The count the dry run gave, confirmed: "
                                                     "refused (409) if more match now."})

    @validates_schema
    def _one_of_them(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("dryRun") is True and "expect" not in data:
            return
        if "expect" in data and not data.get("dryRun"):
            return
        raise ValidationError("Send dryRun: true, or expect: the confirmed count.", "_body")


class OpsPauseRequest(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=1000), metadata={
        "description": "Shown to the users of the type's held jobs (pausedReason): at most "
                       "200 printable characters once runs of white space are one space."})


class OpsPruneRequest(Schema):
    olderThanDays = fields.Integer(required=True, strict=True,
                                   validate=validate.Range(0, ops_actions.MAX_PRUNE_DAYS))


# --- answers ------------------------------------------------------------------------------------

def _time(**kwargs: Any) -> fields.String:
    return fields.String(metadata=ISO_UTC, **kwargs)


class OpsOwner(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("user", "session")))
    id = fields.String(required=True)
    email = fields.String(allow_none=True)


class OpsJobSummary(Schema):
    jobId = fields.UUID(required=True)
    type = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in JobStatus]))
    progress = fields.Integer(required=True)
    currentStep = fields.String(required=True, allow_none=True,
                                metadata={"description": "The step's key."})
    errorCode = fields.String(required=True, allow_none=True)
    attempt = fields.Integer(required=True)
    owner = fields.Nested(OpsOwner, required=True)
    llmCalls = fields.Integer(required=True)
    llmTokens = fields.Integer(required=True)
    createdAt = _time(required=True)
    updatedAt = _time(required=True)
    finishedAt = _time(required=True, allow_none=True)


class OpsJobPage(Schema):
    jobs = fields.List(fields.Nested(OpsJobSummary), required=True,
                       metadata={"description": "Newest first."})
    nextCursor = fields.String(required=True, allow_none=True,
                               metadata={"description": "null on the last page."})
    limit = fields.Integer(required=True)


class OpsCounts(Schema):
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                         metadata={"description": "Jobs matching the filter, by status."})
    total = fields.Integer(required=True)


class OpsAuditEntry(Schema):
    id = fields.Integer(required=True)
    at = fields.String(required=True, metadata={"format": "date-time"})
    actor = fields.String(required=True)
    action = fields.String(required=True)
    jobCount = fields.Integer(required=True)
    detail = fields.Dict(required=True)
    filter = fields.Dict(allow_none=True)
    jobIds = fields.List(fields.UUID())


class OpsJobDetail(Schema):
    job = fields.Dict(required=True, metadata={
        "description": "The job's row: the list's fields and lostRuns, input, error, "
                       "dispatchId, cancelRequestedAt, runStartedAt, stepStartedAt."})
    owner = fields.Nested(OpsOwner, required=True)
    steps = fields.List(fields.Dict(), required=True, metadata={
        "description": "Every step run, in the order they ended: step, attempt, outcome, "
                       "startedAt, durationMs, llmCalls, inputTokens, outputTokens, reasks, "
                       "finishedAt."})
    dispatches = fields.List(fields.Dict(), required=True, metadata={
        "description": "procrastinate's rows of the job (until deleted), with their events."})
    images = fields.List(fields.Dict(), required=True)
    statusDocument = fields.Dict(required=True, allow_none=True, metadata={
        "description": "The status document exactly as its owner sees it."})
    audit = fields.List(fields.Nested(OpsAuditEntry), required=True)


class OpsActed(Schema):
    jobId = fields.UUID(required=True)
    action = fields.String(required=True, validate=validate.OneOf(("retry", "cancel")))
    actor = fields.String(required=True)


class OpsBulkAnswer(Schema):
    action = fields.String(required=True, validate=validate.OneOf(("retry", "cancel")))
    filter = fields.Dict(required=True)
    matching = fields.Integer(required=True)
    dryRun = fields.Boolean(required=True)
    byStatus = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Dry run: the matching jobs by status."})
    acted = fields.Integer(metadata={"description": "Run: jobs retried or cancelled."})
    skipped = fields.Integer(metadata={"description": "Run: jobs that changed state since."})
    batches = fields.Integer()
    bulkId = fields.UUID(metadata={"description": "Run: in each batch's audit row."})


class OpsJobTypeState(Schema):
    type = fields.String(required=True, validate=validate.OneOf([t.value for t in JobType]))
    paused = fields.Boolean(required=True)
    reason = fields.String(required=True, allow_none=True)
    pausedBy = fields.String(required=True, allow_none=True)
    pausedAt = _time(required=True, allow_none=True)
    heldJobs = fields.Integer(required=True, metadata={
        "description": "Queued jobs of the type held back by the pause."})


class OpsJobTypes(Schema):
    types = fields.List(fields.Nested(OpsJobTypeState), required=True)


class OpsPaused(Schema):
    type = fields.String(required=True)
    changed = fields.Boolean(required=True, metadata={
        "description": "false: the type was paused already (its reason stands)."})
    heldBack = fields.Integer(required=True, metadata={
        "description": "Queued jobs whose dispatch the pause took back."})


class OpsResumed(Schema):
    type = fields.String(required=True)
    changed = fields.Boolean(required=True, metadata={
        "description": "false: the type was not paused."})
    released = fields.Integer(required=True, metadata={
        "description": "Held jobs dispatched, oldest first."})


class OpsPruned(Schema):
    deleted = fields.Integer(required=True)
    olderThanDays = fields.Integer(required=True)


class OpsAuditPage(Schema):
    entries = fields.List(fields.Nested(OpsAuditEntry), required=True,
                          metadata={"description": "Newest first."})
    nextCursor = fields.String(required=True, allow_none=True)
    limit = fields.Integer(required=True)
