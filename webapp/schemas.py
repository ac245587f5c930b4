"""marshmallow schemas of request bodies and query strings."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from flask import Request
from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

from queue_jobs.models import JobStatus
from queue_jobs.services.errors import ValidationFailed

MAX_URL_LENGTH = 2048
JOB_STATUSES = tuple(status.value for status in JobStatus)


def _http_url(value: str) -> None:
    try:
        parts = urlsplit(value)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. "http://[::1/": urlsplit raises on a broken host
        usable = False
    if not usable:
        raise ValidationError("Must be an http or https URL with a host.")


class WebsiteAnalysisRequest(Schema):
    class Meta:
        unknown = RAISE  # a misspelt field is an error, not silently ignored

    url = fields.String(required=True,
                        validate=[validate.Length(min=1, max=MAX_URL_LENGTH), _http_url])


class _Strict(Schema):
    class Meta:
        unknown = RAISE


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _text(max_length: int, *, required: bool = False,
          allow_none: bool = False) -> fields.String:
    """A string that is not blank (when given) and not longer than max_length."""
    return fields.String(required=required, allow_none=allow_none,
                         validate=[validate.Length(max=max_length), _not_blank])


class _StrictBoolean(fields.Boolean):
    """JSON true/false only: "yes", 1 or "on" are more likely a client bug than a choice."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _flag() -> fields.Boolean:
    return _StrictBoolean(load_default=False)


def _word_list(max_items: int) -> fields.List:
    return fields.List(_text(100), load_default=list,
                       validate=validate.Length(max=max_items))


class RegisterRequest(_Strict):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    # Long passphrases are welcome; the cap only bounds the hashing work per request.
    password = fields.String(required=True, validate=validate.Length(min=8, max=1024))
    name = _text(100, allow_none=True)

    @pre_load
    def _tidy_email(self, data: Any, **_: Any) -> Any:
        # Login forgives stray blanks and decomposed accents, so registering must too.
        if isinstance(data, dict) and isinstance(data.get("email"), str):
            return {**data, "email": unicodedata.normalize("NFC", data["email"].strip())}
        return data


class LoginRequest(_Strict):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class Topic(_Strict):
    title = _text(200, required=True)
    description = _text(2000)
    keywords = _word_list(20)


class BusinessInfo(_Strict):
    businessName = _text(200)
    businessType = _text(200)
    industry = _text(200)
    targetAudience = _text(1000)
    brandVoice = _text(200)
    description = _text(2000)
    keywords = _word_list(20)


class GenerationOptions(_Strict):
    includeVisuals = _flag()
    autoSave = _flag()
    status = fields.String(load_default="draft", validate=validate.OneOf(("draft", "published")))


class ContentGenerationRequest(_Strict):
    topic = fields.Nested(Topic, required=True)
    businessInfo = fields.Nested(BusinessInfo, required=True)
    organizationId = fields.String(required=True)  # malformed: 404, like any unknown id
    additionalInstructions = fields.String(load_default="",
                                           validate=validate.Length(max=4000))
    options = fields.Nested(GenerationOptions, load_default=lambda: GenerationOptions().load({}))


# --- the deprecated synchronous endpoints' bodies (what the earlier steps produced) ----------

class Analysis(_Strict):
    businessName = _text(200, required=True)
    businessType = _text(200, required=True)
    industry = _text(200, required=True)
    description = _text(2000, required=True)
    targetAudience = _text(1000, required=True)
    brandVoice = _text(200, required=True)
    keywords = fields.List(_text(100), required=True, validate=validate.Length(min=1, max=20))


class Audience(_Strict):
    name = _text(200, required=True)
    description = _text(2000, required=True)
    painPoints = fields.List(_text(500), required=True, validate=validate.Length(min=1, max=10))


class Scenario(_Strict):
    id = fields.String(load_default=None, validate=validate.Length(max=64))
    audience = fields.Nested(Audience, required=True)
    pitch = _text(4000, required=True)
    imageUrl = fields.String(load_default=None)  # ignored: a new image is drawn


def _optional_url() -> fields.String:
    return fields.String(load_default=None,
                         validate=[validate.Length(min=1, max=MAX_URL_LENGTH), _http_url])


class AudiencesRequest(_Strict):
    analysis = fields.Nested(Analysis, required=True)
    url = _optional_url()


class PitchesRequest(_Strict):
    analysis = fields.Nested(Analysis, required=True)
    audiences = fields.List(fields.Nested(Audience), required=True,
                            validate=validate.Length(min=1, max=5))
    url = _optional_url()


class AudienceImagesRequest(_Strict):
    analysis = fields.Nested(Analysis, required=True)
    scenarios = fields.List(fields.Nested(Scenario), required=True,
                            validate=validate.Length(min=1, max=5))
    url = _optional_url()


IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def idempotency_key(request: Request) -> str | None:
    """The Idempotency-Key header: 1 to 255 visible ASCII characters, or absent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationFailed("The Idempotency-Key header is invalid.", fields={
            "Idempotency-Key": ["Use 1 to 255 visible ASCII characters, e.g. a UUID."]})
    return key


class JobListQuery(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(load_default=None, validate=validate.OneOf(JOB_STATUSES))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


def load_json_body(request: Request, schema: Schema) -> dict[str, Any]:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # absurdly deep nesting; silent=True does not cover it
        body = None
    if body is None:
        raise ValidationFailed("The body must be a JSON object.",
                               fields={"_body": ["Send a JSON object with Content-Type: "
                                                 "application/json."]})
    return load(schema, body)


def load(schema: Schema, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.",
                               fields={"_body": ["Expected a JSON object."]})
    unstorable = _unstorable_text(data)
    if unstorable is not None:
        raise ValidationFailed("Some fields are invalid.", fields={unstorable: [
            "Must not contain NUL characters or unpaired UTF-16 surrogates."]})
    try:
        return schema.load(data)
    except ValidationError as error:
        raise ValidationFailed("Some fields are invalid.", fields=error.messages) from None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable_text(data: dict[str, Any]) -> str | None:
    """The dotted path of the first string (key or value) that PostgreSQL, JSON or UTF-8
    cannot hold: NUL, or a lone surrogate that JSON's \\ud800 escapes can smuggle in."""
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:  # a loop, not recursion: the depth is the client's choice
        path, value = pending.pop()
        if isinstance(value, str) and _UNSTORABLE.search(value):
            return path or "_body"
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                if _UNSTORABLE.search(str(key)):
                    return child
                pending.append((child, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return None
