"""A fake of the OpenAI HTTP API that the real `openai` client can talk to.

Endpoints (everything else answers 404 with an OpenAI-style error body):

* ``POST /v1/chat/completions`` -> kind ``"chat:<name>"`` where ``<name>`` is the request's
  ``response_format.json_schema.name``, or plain ``"chat"`` when there is no JSON schema.
  The answer is a real Chat Completions object whose message content is a JSON document
  generated deterministically from ``response_format.json_schema.schema``
  (see `generate_from_schema`); ``"{}"`` without a schema.
* ``POST /v1/images/generations`` -> kind ``"images"``. ``n`` tiny PNG images, as
  ``b64_json`` or, with ``response_format="url"``, as URLs served by this fake.
* ``GET /files/<name>.png`` -> kind ``"files"``: the images handed out as URLs.

Kind matching (`calls`, `fail_next`, `set_delay`, `wait_for_calls`): a kind names either one
request kind exactly (``"chat:business_analysis"``, ``"images"``) or a prefix before a colon
(``"chat"`` matches ``"chat"`` and every ``"chat:<name>"``).

* `calls` / `wait_for_calls` count every request whose kind equals the given kind or starts
  with ``kind + ":"``. A request is counted (and logged) as soon as it is received, before
  any delay or injected failure.
* For each request, a failure queued under its exact kind is used first; only if there is
  none is one queued under its prefix (``"chat"``) used. Failures queue up in order:
  ``fail_next("chat", 500); fail_next("chat", 429)`` fails the next chat request with 500
  and the one after it with 429; `fail_next("images", 500, after=1)` answers the next
  image request and fails the one after it. The same exact-then-prefix rule picks the delay.
* A delay applies before the answer, failing or not. `stop` and `reset` interrupt delays;
  interrupted requests are dropped without an answer. `set_delay(kind, s, after=n)` lets
  the next `n` requests of the kind through undelayed first (a step's n-th call hangs).
* `answer_badly(kind, fault, times)` spoils the next `times` successful chat answers of
  `kind` (same exact-then-prefix rule; an injected HTTP failure is used up first), as a
  misbehaving model would: ``"not_json"`` (prose around the document), ``"truncated"``
  (half the document, ``finish_reason: "length"``), ``"missing_field"`` (the answer's
  first property left out) or ``"wrong_count"`` (the first list one item past its
  ``maxItems``, or one longer when unbounded). `messages(kind)` gives the conversation each
  request of `kind` sent, so a test can read the follow-up a client wrote.
* `answered` counts the requests answered with success (200), the calls a client pays for.
  `delivered` counts those of them that reached a live caller: after the delay, an answer
  whose caller has already hung up (its process was killed mid-call) is dropped, and one
  whose write fails is not counted. `answered` minus `delivered` is what was paid for and
  never received.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import itertools
import json
import math
import select
import socket
import threading
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tests.fakes.loopback import LoopbackService, TrackingHandler, TrackingServer
from tests.fakes.png import tiny_png

T = TypeVar("T")

CHAT_PATH = "/v1/chat/completions"
IMAGES_PATH = "/v1/images/generations"
FILES_PREFIX = "/files/"
DEFAULT_ARRAY_ITEMS = 3
MAX_SCHEMA_DEPTH = 12
IMAGE_OUTPUT_TOKENS = 272  # what a 1024x1024 low-quality gpt-image-1 image costs
BAD_ANSWERS = ("not_json", "truncated", "missing_field", "wrong_count")

_ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout_error", "request_timeout"),
    409: ("conflict_error", "conflict"),
    422: ("invalid_request_error", "unprocessable_entity"),
    429: ("requests", "rate_limit_exceeded"),
}


# --------------------------------------------------------------------------- helpers




def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body for `status`."""
    default = ("server_error", "server_error") if status >= 500 else ("invalid_request_error", None)
    err_type, code = _ERROR_TYPES.get(status, default)
    text = message or f"Fake OpenAI error {status} (injected by the test)."
    return {"error": {"message": text, "type": err_type, "param": None, "code": code}}


def _kind_matches(pattern: str, kind: str) -> bool:
    return kind == pattern or kind.startswith(pattern + ":")


def _lookup_keys(kind: str) -> list[str]:
    """Exact kind first, then its prefix before the first colon."""
    prefix = kind.split(":", 1)[0]
    return [kind] if prefix == kind else [kind, prefix]


def chat_kind(body: dict[str, Any]) -> str:
    """The kind of a chat/completions request body."""
    name = _json_schema(body).get("name")
    return f"chat:{name}" if isinstance(name, str) and name else "chat"


def _json_schema(body: dict[str, Any]) -> dict[str, Any]:
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return {}
    json_schema = response_format.get("json_schema")
    return json_schema if isinstance(json_schema, dict) else {}


# --------------------------------------------------------------------- schema generator


def generate_from_schema(schema: dict[str, Any], name: str = "value") -> Any:
    """A deterministic JSON value valid against `schema` (the JSON Schema subset OpenAI uses).

    Objects get all their properties; arrays get 3 items clipped to [minItems, maxItems];
    strings are "Fake <property name> <n>" where <n> is the 1-based array index path
    ("2.1" = first item of the array inside the second item), or follow ``enum``/``const``.
    Handles $ref to $defs/definitions, anyOf/oneOf (first non-null branch), allOf, nullable
    type lists, integer/number bounds and a few string formats.
    """
    return _generate(schema, _Context(root=schema, name=name, path=(), depth=0))


@dataclass(frozen=True)
class _Context:
    root: dict[str, Any]
    name: str
    path: tuple[int, ...]
    depth: int

    def child(self, name: str | None = None, index: int | None = None) -> _Context:
        path = self.path if index is None else (*self.path, index)
        return _Context(self.root, name or self.name, path, self.depth + 1)

    @property
    def index(self) -> int:
        return self.path[-1] if self.path else 0

    @property
    def label(self) -> str:
        return ".".join(str(i + 1) for i in self.path) or "1"


def _generate(schema: dict[str, Any], ctx: _Context) -> Any:
    schema = _resolve(schema, ctx)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        values = schema["enum"]
        return values[ctx.index % len(values)]
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        return _generate(_first_non_null(branches), ctx)
    generator = _GENERATORS.get(_schema_type(schema)) or _gen_string
    return generator(schema, ctx)


def _resolve(schema: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    if ctx.depth > MAX_SCHEMA_DEPTH:
        raise ValueError("schema nests too deeply (recursive $ref?)")
    while "$ref" in schema:
        schema = _follow_ref(ctx.root, schema["$ref"])
    if "allOf" in schema:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            resolved = _resolve(part, ctx)
            properties = {**merged.get("properties", {}), **resolved.get("properties", {})}
            merged.update({k: v for k, v in resolved.items() if k not in merged})
            merged["properties"] = properties
        schema = merged
    return schema


def _follow_ref(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref is supported, got {ref!r}")
    node: Any = root
    for part in filter(None, ref[1:].split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if not isinstance(node, dict):
        raise TypeError(f"$ref {ref!r} does not point at a schema object")
    return node


def _first_non_null(branches: list[dict[str, Any]]) -> dict[str, Any]:
    for branch in branches:
        if branch.get("type") != "null":
            return branch
    return branches[0]


def _schema_type(schema: dict[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        non_null = [t for t in declared if t != "null"]
        declared = non_null[0] if non_null else "null"
    if isinstance(declared, str):
        return declared
    if "properties" in schema:
        return "object"
    return "array" if "items" in schema else "string"


def _gen_object(schema: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    return {key: _generate(sub, ctx.child(name=key)) for key, sub in properties.items()}


def _gen_array(schema: dict[str, Any], ctx: _Context) -> list[Any]:
    count = max(DEFAULT_ARRAY_ITEMS, int(schema.get("minItems", 0)))
    if "maxItems" in schema:
        count = min(count, int(schema["maxItems"]))
    items = schema.get("items")
    item_schema = items if isinstance(items, dict) else {"type": "string"}
    return [_generate(item_schema, ctx.child(index=i)) for i in range(count)]


def _gen_string(schema: dict[str, Any], ctx: _Context) -> str:
    text = _formatted_string(schema.get("format"), ctx) or f"Fake {ctx.name} {ctx.label}"
    min_length = int(schema.get("minLength", 0))
    if len(text) < min_length:
        text = text + "x" * (min_length - len(text))
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    return text


def _formatted_string(fmt: Any, ctx: _Context) -> str | None:
    formats = {
        "uri": f"https://example.com/{ctx.name}/{ctx.label}",
        "url": f"https://example.com/{ctx.name}/{ctx.label}",
        "email": f"fake{ctx.label}@example.com",
        "date-time": "2024-01-01T00:00:00Z",
        "date": "2024-01-01",
        "uuid": f"00000000-0000-4000-8000-{ctx.index + 1:012d}",
    }
    return formats.get(fmt) if isinstance(fmt, str) else None


def _gen_integer(schema: dict[str, Any], ctx: _Context) -> int:
    low, high = _int_bounds(schema)
    value = ctx.index + 1 if low is None else low + ctx.index
    return value if high is None else min(value, high)


def _int_bounds(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    low: int | None = None
    high: int | None = None
    if "minimum" in schema:
        low = math.ceil(schema["minimum"])
    if "exclusiveMinimum" in schema:
        low = math.floor(schema["exclusiveMinimum"]) + 1
    if "maximum" in schema:
        high = math.floor(schema["maximum"])
    if "exclusiveMaximum" in schema:
        high = math.ceil(schema["exclusiveMaximum"]) - 1
    return low, high


def _gen_number(schema: dict[str, Any], ctx: _Context) -> float:
    low, high = _bounds(schema)
    if low is not None and high is not None:
        return low + (high - low) * (ctx.index + 1) / (ctx.index + 2)
    if low is not None:
        return low + ctx.index + 0.5
    if high is not None:
        return high - ctx.index - 0.5
    return ctx.index + 1.5


def _bounds(schema: dict[str, Any]) -> tuple[float | None, float | None]:
    low = schema.get("exclusiveMinimum", schema.get("minimum"))
    high = schema.get("exclusiveMaximum", schema.get("maximum"))
    return (None if low is None else float(low)), (None if high is None else float(high))


def _gen_boolean(schema: dict[str, Any], ctx: _Context) -> bool:
    return ctx.index % 2 == 0


def _gen_null(schema: dict[str, Any], ctx: _Context) -> None:
    return None


_GENERATORS: dict[str, Callable[[dict[str, Any], _Context], Any]] = {
    "object": _gen_object,
    "array": _gen_array,
    "string": _gen_string,
    "integer": _gen_integer,
    "number": _gen_number,
    "boolean": _gen_boolean,
    "null": _gen_null,
}


# ------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class _Failure:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    kind: str | None = None  # set on a successful answer (counted in `answered`)


def _json_reply(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), headers=headers)


class _Server(TrackingServer):
    def __init__(self, fake: FakeOpenAI, port: int) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(TrackingHandler):
    server: _Server

    def do_POST(self) -> None:
        self._answer(self.server.fake._handle_post(self.path, self._read_body()))

    def do_GET(self) -> None:
        self._answer(self.server.fake._handle_get(self.path))

    def do_PUT(self) -> None:
        self._read_body()
        self._answer(_not_found("PUT", self.path))

    def do_DELETE(self) -> None:
        self._answer(_not_found("DELETE", self.path))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _answer(self, reply: _Reply | None) -> None:
        if reply is None or (reply.kind is not None and self._caller_gone()):
            # Stopped while delaying, or the caller died meanwhile: drop the request.
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("x-request-id", f"req_fake_{time.monotonic_ns()}")
            for key, value in reply.headers:
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True
            return
        if reply.kind is not None:
            self.server.fake._delivered(reply.kind)

    def _caller_gone(self) -> bool:
        """The peer closed its end (a killed process's sockets are closed by the kernel): the
        connection reads as end-of-file, or is reset. A live keep-alive caller sends nothing
        while it waits for the answer, so its socket is not readable."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


def _not_found(method: str, path: str) -> _Reply:
    message = f"Unknown request URL: {method} {urlsplit(path).path}. (fake OpenAI server)"
    body = error_body(404, message)
    body["error"]["code"] = "unknown_url"
    return _json_reply(404, body)


class FakeOpenAI(LoopbackService):
    """An OpenAI-compatible HTTP server on 127.0.0.1 (random port) for tests.

    Use as a context manager or call `start`/`stop`. Point the client at `base_url`.
    See the module docstring for request kinds and how kinds are matched.
    """

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._counts: dict[str, int] = defaultdict(int)
        # None: a request let through before the failures queued after it (fail_next after=).
        self._failures: dict[str, deque[_Failure | None]] = defaultdict(deque)
        self._bad_answers: dict[str, deque[str]] = defaultdict(deque)
        self._delays: dict[str, float] = {}
        self._undelayed: dict[str, int] = {}  # set_delay(after=n): requests still let through
        self._answered: dict[str, int] = defaultdict(int)
        self._delivered_counts: dict[str, int] = defaultdict(int)
        self._delivered_at: list[float] = []  # time.monotonic() of each delivered answer
        self._files: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self.requests_log: list[dict[str, Any]] = []

    # ----------------------------------------------------------------- lifecycle

    def _make_server(self) -> _Server:
        return _Server(self, self._port)

    def _base_url_for(self, port: int) -> str:
        return f"http://127.0.0.1:{port}/v1"

    # ------------------------------------------------------------------- control

    def calls(self, kind: str) -> int:
        """Requests received whose kind is `kind` or starts with `kind + ":"`."""
        with self._lock:
            return self._count(kind)

    def fail_next(
        self, kind: str, status: int, times: int = 1, body: dict[str, Any] | None = None,
        *, after: int = 0
    ) -> None:
        """Answer the next `times` requests of `kind` with `status` (after answering the
        `after` requests before them as usual).

        `body` replaces the whole JSON error body (default: OpenAI-style, see `error_body`).
        429 answers carry ``retry-after: 0`` (and ``retry-after-ms: 1``, which the openai
        client prefers, so its own retries do not back off).
        """
        failure = _Failure(status, body if body is not None else error_body(status))
        with self._lock:
            self._failures[kind].extend([None] * after + [failure] * times)

    def answer_badly(self, kind: str, fault: str, times: int = 1) -> None:
        """Spoil the next `times` chat answers of `kind` with `fault` (one of BAD_ANSWERS)."""
        if fault not in BAD_ANSWERS:
            raise ValueError(f"unknown fault {fault!r} (expected one of {BAD_ANSWERS})")
        with self._lock:
            self._bad_answers[kind].extend([fault] * times)

    def messages(self, kind: str) -> list[list[dict[str, Any]]]:
        """The `messages` of each request of `kind` received so far, in order."""
        with self._lock:
            return [copy.deepcopy(entry.get("messages", [])) for entry in self.requests_log
                    if _kind_matches(kind, entry["kind"])]

    def answered(self, kind: str) -> int:
        """Requests of `kind` (matched as in `calls`) answered with success."""
        with self._lock:
            return sum(count for k, count in self._answered.items() if _kind_matches(kind, k))

    def delivered(self, kind: str) -> int:
        """Successful answers of `kind` that reached a live caller (see the module doc)."""
        with self._lock:
            return sum(count for k, count in self._delivered_counts.items()
                       if _kind_matches(kind, k))

    def delivered_between(self, start: float, end: float) -> int:
        """Answers of any kind delivered between two time.monotonic() instants."""
        with self._lock:
            return sum(1 for at in self._delivered_at if start <= at <= end)

    def set_delay(self, kind: str, seconds: float, *, after: int = 0) -> None:
        """Answer requests of `kind` only after `seconds` (0 removes the delay); the next
        `after` requests of the kind are let through undelayed first."""
        with self._lock:
            self._undelayed.pop(kind, None)
            if seconds > 0:
                self._delays[kind] = seconds
                if after:
                    self._undelayed[kind] = after
            else:
                self._delays.pop(kind, None)

    def reset(self) -> None:
        """Forget counts, the request log, queued failures, delays and served files.

        Requests still being delayed are dropped (no answer), so they cannot consume
        failures queued after the reset.
        """
        with self._lock:
            self._interrupt.set()
            self._interrupt = threading.Event()
            self._counts.clear()
            self._failures.clear()
            self._bad_answers.clear()
            self._delays.clear()
            self._undelayed.clear()
            self._answered.clear()
            self._delivered_counts.clear()
            self._delivered_at.clear()
            self._files.clear()
            self.requests_log.clear()

    def wait_for_calls(self, kind: str, n: int, timeout: float = 10.0) -> None:
        """Block until `calls(kind) >= n`; raise TimeoutError after `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._count(kind) >= n, timeout=timeout):
                got = self._count(kind)
                raise TimeoutError(f"expected {n} {kind!r} call(s) within {timeout}s, got {got}")

    # ------------------------------------------------------------------ internals

    def _count(self, kind: str) -> int:
        return sum(count for k, count in self._counts.items() if _kind_matches(kind, k))

    def _record(self, kind: str, path: str, body: dict[str, Any]
                ) -> tuple[threading.Event, float]:
        """Count and log a request; returns the event that interrupts its delay, and the
        delay (chosen here, under the lock, so `after` counts requests in arrival order)."""
        with self._changed:
            self._counts[kind] += 1
            self.requests_log.append({**body, "kind": kind, "path": path})
            self._changed.notify_all()
            return self._interrupt, self._delay_for(kind)

    def _delivered(self, kind: str) -> None:
        with self._lock:
            self._delivered_counts[kind] += 1
            self._delivered_at.append(time.monotonic())

    def _take_failure(self, kind: str) -> _Failure | None:
        return self._take(self._failures, kind)

    def _take(self, queues: dict[str, deque[T]], kind: str) -> T | None:
        with self._lock:
            for key in _lookup_keys(kind):
                queue = queues.get(key)
                if queue:
                    return queue.popleft()
        return None

    def _delay_for(self, kind: str) -> float:
        """Called with the lock held."""
        for key in _lookup_keys(kind):
            if key in self._delays:
                if self._undelayed.get(key, 0) > 0:
                    self._undelayed[key] -= 1
                    return 0.0
                return self._delays[key]
        return 0.0

    def _handle_post(self, raw_path: str, raw_body: bytes) -> _Reply | None:
        path = urlsplit(raw_path).path
        if path not in (CHAT_PATH, IMAGES_PATH):
            return _not_found("POST", raw_path)
        try:
            body = json.loads(raw_body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _json_reply(400, error_body(400, "We could not parse the JSON body."))
        kind = chat_kind(body) if path == CHAT_PATH else "images"
        answer = self._chat_reply if path == CHAT_PATH else self._images_reply
        return self._serve(kind, path, body, lambda: answer(body))

    def _handle_get(self, raw_path: str) -> _Reply | None:
        path = urlsplit(raw_path).path
        name = path[len(FILES_PREFIX) :]
        if not path.startswith(FILES_PREFIX) or not name.endswith(".png"):
            return _not_found("GET", raw_path)
        return self._serve("files", path, {}, lambda: self._file_reply(raw_path, name))

    def _serve(
        self, kind: str, path: str, body: dict[str, Any], answer: Callable[[], _Reply]
    ) -> _Reply | None:
        interrupt, delay = self._record(kind, path, body)
        if delay and interrupt.wait(delay):
            return None
        failure = self._take_failure(kind)
        if failure is not None:
            return _failure_reply(failure)
        reply = answer()
        if reply.status == 200:
            with self._changed:
                self._answered[kind] += 1
                self._changed.notify_all()
            reply = replace(reply, kind=kind)  # the handler counts its delivery
        return reply

    def _chat_reply(self, body: dict[str, Any]) -> _Reply:
        if body.get("stream"):
            return _json_reply(400, error_body(400, "The fake does not support stream=true."))
        json_schema = _json_schema(body)
        schema = json_schema.get("schema")
        name = str(json_schema.get("name") or "value")
        value = generate_from_schema(schema, name) if schema else {}
        fault = self._take(self._bad_answers, chat_kind(body))
        content, finish_reason = _spoiled(value, schema or {}, fault)
        return _json_reply(200, self._completion(body, content, finish_reason))

    def _completion(self, body: dict[str, Any], content: str,
                    finish_reason: str = "stop") -> dict[str, Any]:
        prompt_tokens = max(1, len(json.dumps(body.get("messages", []))) // 4)
        completion_tokens = max(1, len(content) // 4)
        message = {"role": "assistant", "content": content, "refusal": None}
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": finish_reason}
            for i in range(int(body.get("n") or 1))
        ]
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "gpt-fake",
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_fake",
        }

    def _images_reply(self, body: dict[str, Any]) -> _Reply:
        as_url = body.get("response_format") == "url"
        prompt = str(body.get("prompt", ""))
        data = [self._image_item(prompt, i, as_url) for i in range(int(body.get("n") or 1))]
        # As GPT image models report it: prompt tokens in, a fixed image cost out.
        input_tokens = max(1, len(prompt) // 4)
        usage = {"input_tokens": input_tokens, "output_tokens": IMAGE_OUTPUT_TOKENS * len(data),
                 "total_tokens": input_tokens + IMAGE_OUTPUT_TOKENS * len(data),
                 "input_tokens_details": {"text_tokens": input_tokens, "image_tokens": 0}}
        return _json_reply(200, {"created": int(time.time()), "data": data, "usage": usage})

    def _image_item(self, prompt: str, index: int, as_url: bool) -> dict[str, Any]:
        png = tiny_png(rgb=_colour_for(f"{prompt}#{index}"))
        item: dict[str, Any] = {"revised_prompt": f"Fake revised prompt: {prompt}"}
        if not as_url:
            item["b64_json"] = base64.b64encode(png).decode("ascii")
            return item
        name = f"img-{next(self._ids)}.png"
        with self._lock:
            self._files[name] = png
        item["url"] = f"http://127.0.0.1:{self._port}{FILES_PREFIX}{name}"
        return item

    def _file_reply(self, raw_path: str, name: str) -> _Reply:
        with self._lock:
            png = self._files.get(name)
        if png is None:
            return _not_found("GET", raw_path)
        return _Reply(200, png, content_type="image/png")


def _spoiled(value: Any, schema: dict[str, Any], fault: str | None) -> tuple[str, str]:
    """(content, finish_reason) of an answer carrying `fault` (None: the answer as is)."""
    text = json.dumps(value)
    if fault == "not_json":
        return f"Sure! Here is the JSON you asked for:\n{text}", "stop"
    if fault == "truncated":
        return text[: len(text) // 2], "length"
    if fault == "missing_field":
        if not isinstance(value, dict) or not value:
            raise ValueError("missing_field needs an answer that is a non-empty object")
        return json.dumps({key: v for key, v in list(value.items())[1:]}), "stop"
    if fault == "wrong_count":
        if not _lengthen_first_list(value, schema):
            raise ValueError("wrong_count needs an answer that holds a list")
        return json.dumps(value), "stop"
    return text, "stop"


def _lengthen_first_list(value: Any, schema: dict[str, Any]) -> bool:
    """Grow the first list in `value` (depth first) past what its schema allows; False if
    there is none."""
    if isinstance(value, list):
        target = int(schema["maxItems"]) + 1 if "maxItems" in schema else len(value) + 1
        item_schema = schema.get("items") or {"type": "string"}
        while len(value) < target:
            value.append(copy.deepcopy(value[-1]) if value else generate_from_schema(item_schema))
        return True
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        return any(_lengthen_first_list(sub, properties.get(key) or {})
                   for key, sub in value.items())
    return False


def _colour_for(text: str) -> tuple[int, int, int]:
    digest = zlib.crc32(text.encode())
    return (digest >> 16) & 0xFF, (digest >> 8) & 0xFF, digest & 0xFF


def _failure_reply(failure: _Failure) -> _Reply:
    headers: tuple[tuple[str, str], ...] = ()
    if failure.status == 429:
        headers = (("retry-after", "0"), ("retry-after-ms", "1"))
    return _json_reply(failure.status, failure.body, headers)


def main(argv: list[str] | None = None) -> None:
    """Run the fake in the foreground: ``python -m tests.fakes.openai_server --port 8090``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0,
                        help="seconds before every chat answer (a slow model)")
    parser.add_argument("--image-delay", type=float, default=None,
                        help="seconds before every images answer (default: --delay)")
    args = parser.parse_args(argv)
    with FakeOpenAI(port=args.port) as fake:
        fake.set_delay("chat", args.delay)
        fake.set_delay("images", args.delay if args.image_delay is None else args.image_delay)
        print(f"Fake OpenAI API on {fake.base_url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
