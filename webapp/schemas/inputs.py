"""marshmallow schemas of request bodies and query strings.

The API document (webapp/views/openapi.py) shows them as they are, so a rule apispec cannot read
from a plain function is written as a validator with a `regex`, which apispec shows as the
field's pattern. marshmallow's default `unknown = RAISE` makes a misspelt field an error,
not silently ignored.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from flask import Request
from marshmallow import Schema, ValidationError, fields, pre_load, validate

from queue_jobs.models import JobStatus
from queue_jobs.services import urls
from queue_jobs.services.errors import ValidationFailed

MAX_URL_LENGTH = 2048
JOB_STATUSES = tuple(status.value for status in JobStatus)


class HttpUrl(validate.Validator):
    """An http or https URL whose host is a valid host name or IP address: the fetcher's
    own rule (queue_jobs.services.urls)."""

    # Nearly the same rule as a pattern, for the document: http(s), then a host name whose
    # last label is not all digits, a dotted quad or an IPv6 address, then anything. A
    # little stricter than the code (which also takes non-ASCII names, and leading blanks
    # or control characters as urlsplit forgives them), and a little looser: hyphens at a
    # label's ends, lengths and a 0x-prefixed last label are left to the code (each
    # written out would make the pattern backtrack: slow in a client's validator).
    regex = re.compile(r"^[Hh][Tt][Tt][Pp][Ss]?://([^/?#]*@)?"
                       r"(([A-Za-z0-9_-]+\.)*[0-9-]*[A-Za-z_][A-Za-z0-9_-]*\.?|"
                       r"[0-9]{1,3}(\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]+\])"
                       r"(:[0-9]*)?([/?#][\s\S]*)?$")

    def __call__(self, value: str) -> str:
        problem = urls.url_problem(value)
        if problem is not None:
            raise ValidationError(problem)
        return value


def _url(**kwargs: Any) -> fields.String:
    return fields.String(validate=[validate.Length(min=1, max=MAX_URL_LENGTH), HttpUrl()],
                         **kwargs)


class WebsiteAnalysisRequest(Schema):
    url = _url(required=True)


# What Python's str.strip() removes (str.isspace()), spelt out: the `\s` of a JSON Schema
# pattern is ECMAScript's, which differs (it lacks U+001C-U+001F and U+0085, has U+FEFF).
PYTHON_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Not blank: some character that strip() keeps (match: after any leading blanks).
NOT_BLANK = validate.Regexp(f"[{PYTHON_SPACE}]*[^{PYTHON_SPACE}]", error="Must not be blank.")


def _text(max_length: int, *, required: bool = False,
          allow_none: bool = False) -> fields.String:
    """A string that is not blank (when given) and not longer than max_length."""
    return fields.String(required=required, allow_none=allow_none,
                         validate=[validate.Length(max=max_length), NOT_BLANK])


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


class RegisterRequest(Schema):
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


class LoginRequest(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class Topic(Schema):
    title = _text(200, required=True)
    description = _text(2000)
    keywords = _word_list(20)


# An analysis's text fields and their longest lengths: a content generation's businessInfo
# may give any of them, a deprecated step's analysis gives them all. The names are the
# pipeline's shape (tests/unit/webapp/test_inputs_follow_shapes.py keeps them equal).
ANALYSIS_LENGTHS = {"businessName": 200, "businessType": 200, "industry": 200,
                    "description": 2000, "targetAudience": 1000, "brandVoice": 200}
BusinessInfo = Schema.from_dict(
    {**{name: _text(length) for name, length in ANALYSIS_LENGTHS.items()},
     "keywords": _word_list(20)}, name="BusinessInfo")


class GenerationOptions(Schema):
    includeVisuals = _flag()
    autoSave = _flag()
    status = fields.String(load_default="draft", validate=validate.OneOf(("draft", "published")))


class ContentGenerationRequest(Schema):
    topic = fields.Nested(Topic, required=True)
    businessInfo = fields.Nested(BusinessInfo, required=True)
    organizationId = fields.String(required=True)  # malformed: 404, like any unknown id
    additionalInstructions = fields.String(load_default="",
                                           validate=validate.Length(max=4000))
    options = fields.Nested(GenerationOptions, load_default=lambda: GenerationOptions().load({}))


# --- the deprecated synchronous endpoints' bodies (what the earlier steps produced) ----------

Analysis = Schema.from_dict(
    {**{name: _text(length, required=True) for name, length in ANALYSIS_LENGTHS.items()},
     "keywords": fields.List(_text(100), required=True, validate=validate.Length(min=1, max=20))},
    name="Analysis")


class Audience(Schema):
    name = _text(200, required=True)
    description = _text(2000, required=True)
    painPoints = fields.List(_text(500), required=True, validate=validate.Length(min=1, max=10))


class Scenario(Schema):
    id = fields.String(load_default=None, validate=validate.Length(max=64))
    audience = fields.Nested(Audience, required=True)
    pitch = _text(4000, required=True)
    imageUrl = fields.String(load_default=None)  # ignored: a new image is drawn


class AudiencesRequest(Schema):
    analysis = fields.Nested(Analysis, required=True)
    url = _url(load_default=None)


class PitchesRequest(Schema):
    analysis = fields.Nested(Analysis, required=True)
    audiences = fields.List(fields.Nested(Audience), required=True,
                            validate=validate.Length(min=1, max=5))
    url = _url(load_default=None)


class AudienceImagesRequest(Schema):
    analysis = fields.Nested(Analysis, required=True)
    scenarios = fields.List(fields.Nested(Scenario), required=True,
                            validate=validate.Length(min=1, max=5))
    url = _url(load_default=None)


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
    status = fields.String(validate=validate.OneOf(JOB_STATUSES))  # absent: any status
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
