"""marshmallow schemas of request bodies and query strings."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Request
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from queue_jobs.domain_errors import ValidationFailed

MAX_URL_LENGTH = 2048
JOB_STATUSES = ("queued", "running", "succeeded", "failed")


class WebsiteAnalysisRequest(Schema):
    class Meta:
        unknown = RAISE  # a misspelt field is an error, not silently ignored

    url = fields.String(required=True, validate=validate.Length(min=1, max=MAX_URL_LENGTH))

    @validates("url")
    def _http_url(self, value: str, **_: Any) -> None:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError("Must be an http or https URL with a host.")


class JobListQuery(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(load_default=None, validate=validate.OneOf(JOB_STATUSES))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


def load_json_body(request: Request, schema: Schema) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None:
        raise ValidationFailed("The body must be a JSON object.",
                               fields={"_body": ["Send a JSON object with Content-Type: "
                                                 "application/json."]})
    return load(schema, body)


def load(schema: Schema, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.",
                               fields={"_body": ["Expected a JSON object."]})
    try:
        return schema.load(data)
    except ValidationError as error:
        raise ValidationFailed("Some fields are invalid.", fields=error.messages) from None
