"""marshmallow schemas of the bodies the views build: the views answer `dumped(Schema, data)`
and the API document (webapp/views/openapi.py) shows the same schemas.

marshmallow's default `unknown = RAISE` makes apispec write `additionalProperties: false`,
and dumping keeps only the declared fields, so a body cannot carry an undocumented one.
The bodies the pipelines build (results, an analysis, a saved post) are JSON Schemas of
theirs (queue_jobs.services.catalog.RESULT_SCHEMAS), referenced here by name.
"""

from __future__ import annotations

import functools
from typing import Any

from flask import Response, jsonify
from marshmallow import Schema, fields, validate

from queue_jobs import models
from queue_jobs.services.catalog import FAILURE_CODES, JOB_TYPES, RESULT_SCHEMAS, STEP_LABELS
from webapp.schemas.inputs import JOB_STATUSES

RESULTS = ("WebsiteAnalysisResult", "ContentGenerationResult", "AudiencesResult",
           "PitchesResult", "ImagesResult")


def component(name: str) -> dict[str, str]:
    assert name in RESULT_SCHEMAS, name
    return {"$ref": f"#/components/schemas/{name}"}


def _text(**kwargs: Any) -> fields.String:
    return fields.String(required=True, **kwargs)


def _timestamp() -> fields.String:
    # Written by models.iso_utc already: dumped as is.
    return fields.String(required=True, metadata=models.ISO_UTC)


def _one_of(*values: str) -> fields.String:
    return fields.String(required=True, validate=validate.OneOf(values))


def _count(**kwargs: Any) -> fields.Integer:
    return fields.Integer(required=True, validate=validate.Range(min=0), **kwargs)


class Error(Schema):
    """The one error envelope (contract §4)."""

    error = _text(metadata={"description": "A message for people."})
    errorCode = _text(metadata={"pattern": "^[A-Z][A-Z0-9_]*$"})
    # `fields` is the name of a Schema's own attribute, hence another name here.
    field_errors = fields.Dict(
        keys=fields.String(), data_key="fields", attribute="fields",
        metadata={"description": "400 only: each bad field with its messages (nested "
                                 "fields as nested objects)."})
    retryAfter = fields.Integer(validate=validate.Range(min=0),
                                metadata={"description": "429 only: the Retry-After seconds."})
    jobId = fields.UUID(metadata={"description": "Deprecated synchronous endpoints only: "
                                                 "the job that failed."})


class JobCreated(Schema):
    jobId = fields.UUID(required=True)


class JobCancelled(Schema):
    cancelled = fields.Boolean(required=True, metadata={"enum": [True]})


class JobSummary(Schema):
    """A status document without `result` (the job list)."""

    jobId = fields.UUID(required=True)
    type = _one_of(*JOB_TYPES)
    status = _one_of(*JOB_STATUSES)
    progress = fields.Integer(required=True, validate=validate.Range(0, 100),
                              metadata={"description": "100 only when succeeded."})
    currentStep = fields.String(
        required=True, allow_none=True, validate=validate.OneOf(STEP_LABELS),
        metadata={"description": "null while queued; the failing step's label when failed."})
    estimatedTimeRemaining = fields.Integer(
        required=True, allow_none=True, validate=validate.Range(min=0),
        metadata={"description": "Seconds; null unless queued or running. While queued it "
                                 "includes the expected wait for a worker."})
    queuePosition = fields.Integer(
        required=True, allow_none=True, validate=validate.Range(min=1),
        metadata={"description": "While queued: 1 + the queued jobs (of every owner) that "
                                 "will start before this one; null otherwise."})
    pausedReason = fields.String(
        required=True, allow_none=True, validate=validate.Length(max=300),
        metadata={"description": "Set only while the job is queued and an operator has "
                                 "paused its type: why it waits (the operator's reason is "
                                 "at most 200 characters). queuePosition and "
                                 "estimatedTimeRemaining are null meanwhile; running jobs "
                                 "of the type finish."})
    error = fields.String(required=True, allow_none=True,
                          metadata={"description": "null unless failed."})
    errorCode = fields.String(required=True, allow_none=True,
                              validate=validate.OneOf(FAILURE_CODES))
    createdAt = _timestamp()
    updatedAt = _timestamp()


class JobStatus(JobSummary):
    """The status document (contract §5); `result` is the body of §6 when succeeded (the
    job of a deprecated per-step call: that call's body). Built by the services, not
    dumped: the status route is the hot path and keeps its hand-built body."""

    result = fields.Raw(required=True, allow_none=True, metadata={
        "anyOf": [*map(component, RESULTS), {"type": "null"}]})


class JobList(Schema):
    jobs = fields.List(fields.Nested(JobSummary), required=True,
                       metadata={"description": "Newest first."})
    count = _count()
    limit = fields.Integer(required=True, validate=validate.Range(1, 100))


class User(Schema):
    id = fields.UUID(required=True)
    email = _text(metadata={"description": "Trimmed and lower-cased."})
    name = fields.String(required=True, allow_none=True)


class SignedIn(Schema):
    accessToken = _text(metadata={"description": "JWT, 15 minutes."})
    refreshToken = _text(metadata={"description": "JWT, 30 days; for /auth/refresh only."})
    user = fields.Nested(User, required=True)


class AccessToken(Schema):
    accessToken = _text()


class Organization(Schema):
    id = fields.UUID(required=True)
    name = _text()
    websiteUrl = _text()
    analysis = fields.Raw(required=True, metadata={"allOf": [component("BusinessAnalysis")]})
    createdAt = _timestamp()


class Me(Schema):
    user = fields.Nested(User, required=True)
    organizations = fields.List(fields.Nested(Organization), required=True,
                                metadata={"description": "Newest first."})


class Healthy(Schema):
    status = _one_of("ok")


class Ready(Schema):
    status = _one_of("ready")
    schemaVersion = _count()


class NotReady(Schema):
    status = _one_of("schema-outdated")
    error = _text()
    errorCode = _one_of("SCHEMA_OUTDATED")
    schemaVersion = _count()
    expectedVersion = _count()


class OpsDashboard(Schema):
    name = _text()
    title = _text()
    chart = _one_of("table", "time-series", "bars", "summary")
    series = fields.List(fields.String(), required=True)
    scale = _one_of("linear", "log")
    description = _text()
    columns = fields.List(fields.String(), required=True)
    labels = fields.List(fields.String(), required=True, metadata={
        "description": "Each column's name for people, in the order of `columns`."})
    units = fields.List(fields.String(allow_none=True), required=True, metadata={
        "description": "Each column's unit (percent: a fraction, seconds, ms, ago: seconds "
                       "since, time), or null."})
    rows = fields.List(fields.List(fields.Raw()), required=True)
    truncated = fields.Boolean(metadata={"description": "More than 500 rows; 500 shown."})
    error = fields.String(metadata={"description": "Why this query gave no rows."})
    errorCode = fields.String(allow_none=True, metadata={"description": "Its SQLSTATE."})


class OpsData(Schema):
    generatedAt = fields.String(required=True, metadata={"format": "date-time"})
    dashboards = fields.List(fields.Nested(OpsDashboard), required=True)


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    return schema()


def dumped(schema: type[Schema], data: Any, status: int = 200) -> Response:
    """`data` through `schema` as a JSON response: only the fields the document shows."""
    response = jsonify(_instance(schema).dump(data))
    response.status_code = status
    return response
