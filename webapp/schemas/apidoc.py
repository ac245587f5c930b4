"""How the table of operations in webapp/views/openapi.py becomes an OpenAPI 3.1 document.

An Operation names its replies and the error statuses it can answer with their
errorCodes; each error is the `Error` envelope (contract §4) narrowed to those codes.
apispec turns the marshmallow schemas into components and the names of parameters and
headers into $refs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from apispec import APISpec
from marshmallow import Schema

JSON = "application/json"
SchemaRef = type[Schema] | Mapping[str, Any]  # a marshmallow schema or a raw JSON schema
Security = tuple[dict[str, list[str]], ...]

ERROR_DESCRIPTIONS = {
    400: "Invalid JSON, fields, query or headers; `fields` names each bad one.",
    401: "No usable identity: missing, bad or expired token, a token whose account no "
         "longer exists, or a malformed x-session-id.",
    404: "Unknown, malformed or not visible (existence is never revealed).",
    409: "The request conflicts with the current state.",
    413: "The body is larger than 1 MiB (sent with a Content-Length or chunked).",
    422: "Well-formed but not processable, e.g. an Idempotency-Key used with another "
         "request.",
    429: "Too many active jobs or requests; `Retry-After` says when to try again.",
    503: "PostgreSQL is unreachable (answered within 3 s, not a hang); `Retry-After` is a "
         "random 1 to 5 s, to spread the retries out.",
}
ERROR_HEADERS = {429: ("Retry-After",), 503: ("Retry-After",)}
IDENTITY_CODES = ("AUTH_REQUIRED", "SESSION_INVALID", "TOKEN_INVALID", "TOKEN_EXPIRED")
COMMON_CODES: dict[int, tuple[str, ...]] = {
    400: ("VALIDATION_ERROR",),
    401: IDENTITY_CODES,
    413: ("PAYLOAD_TOO_LARGE",),
    422: ("IDEMPOTENCY_KEY_REUSED",),
    429: ("RATE_LIMITED",),
    503: ("QUEUE_UNAVAILABLE",),
}


def errors(*statuses: int, **specific: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
    """The error statuses of an operation with their errorCodes: common ones by number,
    others by their HTTPStatus name: `errors(401, 503, not_found=("JOB_NOT_FOUND",))`."""
    codes = {status: COMMON_CODES[status] for status in statuses}
    codes.update({HTTPStatus[name.upper()].value: value for name, value in specific.items()})
    return codes


@dataclass(frozen=True)
class Reply:
    """A non-error response: its body schema (None: no body) and the headers it carries."""

    description: str
    schema: SchemaRef | None = None
    headers: tuple[str, ...] = ()
    media_type: str = JSON


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # OpenAPI style: /api/v1/jobs/{jobId}/status
    operation_id: str
    summary: str
    tag: str
    security: Security
    replies: dict[int, Reply]
    errors: dict[int, tuple[str, ...]] = field(default_factory=dict)
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    headers: tuple[str, ...] = ()  # request header parameters, names in PARAMETERS
    description: str = ""
    deprecated: bool = False  # adds the Deprecation header to every 2xx reply


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _error_schema(codes: tuple[str, ...]) -> dict[str, Any]:
    # The envelope, narrowed to the errorCodes this operation answers with this status.
    return {"allOf": [_ref("schemas", "Error"),
                      {"properties": {"errorCode": {"enum": list(codes)}}}]}


def _content(schema: SchemaRef | None, media_type: str) -> dict[str, Any] | None:
    if schema is None:
        return None
    return {media_type: {"schema": schema}}


def _response(description: str, schema: SchemaRef | None, headers: tuple[str, ...],
              media_type: str = JSON) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    content = _content(schema, media_type)
    if content is not None:
        response["content"] = content
    if headers:
        response["headers"] = {name: name for name in headers}  # apispec makes the $refs
    return response


def _reply_headers(op: Operation, status: int, reply: Reply) -> tuple[str, ...]:
    if op.deprecated and 200 <= status < 300:
        return (*reply.headers, "Deprecation", "Link")
    return reply.headers


def _responses(op: Operation) -> dict[int, dict[str, Any]]:
    responses = {status: _response(reply.description, reply.schema,
                                   _reply_headers(op, status, reply), reply.media_type)
                 for status, reply in op.replies.items()}
    for status, codes in op.errors.items():
        description = ERROR_DESCRIPTIONS.get(status, f"{HTTPStatus(status).phrase}.")
        error = _response(description, _error_schema(codes),
                          ERROR_HEADERS.get(status, ()))
        if status in responses:  # a reply of its own and the envelope: either body
            responses[status] = _merged(responses[status], error)
        else:
            responses[status] = error
    return dict(sorted(responses.items()))


def _merged(reply: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    """One status that answers either a reply body or the error envelope (e.g. readyz 503):
    either schema, and only the headers both always send are required."""
    schemas_ = [reply["content"][JSON]["schema"], error["content"][JSON]["schema"]]
    merged = {"description": reply["description"],
              "content": {JSON: {"schema": {"anyOf": schemas_}}}}
    shared = set(reply.get("headers", {})) & set(error.get("headers", {}))
    if shared:
        merged["headers"] = {name: name for name in sorted(shared)}
    return merged


def _parameters(op: Operation) -> list[str | dict[str, Any]]:
    # Component ids as strings: apispec turns them into $refs.
    parameters: list[str | dict[str, Any]] = [*re.findall(r"{(\w+)}", op.path), *op.headers]
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    return parameters


def _operation(op: Operation) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": op.operation_id, "summary": op.summary, "tags": [op.tag],
        "security": list(op.security), "responses": _responses(op),
    }
    if op.description:
        document["description"] = op.description
    parameters = _parameters(op)
    if parameters:
        document["parameters"] = parameters
    if op.body is not None:
        document["requestBody"] = {"required": True, "content": {JSON: {"schema": op.body}}}
    if op.deprecated:
        document["deprecated"] = True
    return document


def add_operation(spec: APISpec, op: Operation) -> None:
    spec.path(path=op.path, operations={op.method: _operation(op)})


def add_shapes(spec: APISpec, shapes: Mapping[str, dict[str, Any]]) -> None:
    """JSON Schemas as components by name; where one holds another (the very object, not
    a look-alike), a $ref to it."""
    names = {id(shape): name for name, shape in shapes.items()}

    def referring(schema: Any, top: bool = False) -> Any:
        if isinstance(schema, dict):
            if not top and id(schema) in names:
                return _ref("schemas", names[id(schema)])
            return {key: referring(value) for key, value in schema.items()}
        if isinstance(schema, list):
            return [referring(item) for item in schema]
        return schema

    for name, shape in shapes.items():
        spec.components.schema(name, component=referring(shape, top=True))
