"""The OpenAI provider against a tiny local fake of the API (no internet).

The fake answers in the real response formats and can be switched into failure modes, so
the tests cover the request shape, the parsing and the mapping of failures to job errors.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

from queue_jobs.pipeline.failures import (
    LLMError,
    LLMRateLimited,
    LLMTimeout,
    TransientLLMError,
    UnusableAnswer,
)
from queue_jobs.pipeline.llm import schemas
from queue_jobs.pipeline.llm.openai_provider import (
    MAX_REASKS,
    OpenAIProvider,
    _map_error,
    sniff_image_type,
)
from queue_jobs.pipeline.pages import CallToAction, PageFacts

API_KEY = "sk-test-SECRET-0123456789abcdef"
SLOW_SECONDS = 1.0

PAGE = PageFacts(
    url="https://acme.io/",
    title="Acme - Invoicing software",
    description="Invoicing for freelancers.",
    site_name="Acme",
    headings=["Invoicing made simple", "Integrations"],
    text="Send invoices in seconds. " * 500,
    keywords=["invoicing"],
    ctas=[CallToAction(text="Start free trial", href="https://acme.io/signup", type="button")],
)

ANALYSIS: dict[str, Any] = {
    "businessName": "Acme",
    "businessType": "B2B SaaS",
    "industry": "Software",
    "description": "Acme sends invoices for freelancers.",
    "targetAudience": "Freelancers and small agencies.",
    "brandVoice": "Friendly and direct",
    "keywords": ["invoicing", "freelancers"],
}
AUDIENCES: list[dict[str, Any]] = [
    {"name": "Freelancers", "description": "Solo workers.", "painPoints": ["Late payments"]},
    {"name": "Agencies", "description": "Small studios.", "painPoints": ["Manual billing"]},
]
PITCHES = ["Acme gets freelancers paid.", "Acme automates agency billing."]
CANNED: dict[str, dict[str, Any]] = {
    "business_analysis": ANALYSIS,
    "audiences": {"audiences": AUDIENCES},
    "pitches": {"pitches": PITCHES},
}


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()


class FakeOpenAI(ThreadingHTTPServer):
    """Answers /v1/chat/completions and /v1/images/generations like the real API."""

    daemon_threads = True
    block_on_close = False  # do not wait for handlers still sleeping in "slow" mode

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean

    def do_GET(self) -> None:
        if self.path == "/files/image.png":
            self._send(200, PNG, "image/png")
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        mode = self.server.mode
        if mode == "slow":
            time.sleep(SLOW_SECONDS)
        failure = _FAILURES.get(mode)
        if failure is not None:
            self._send_json(*failure)
        elif self.path == "/v1/chat/completions":
            self._send_json(200, _completion(body, mode))
        elif self.path == "/v1/images/generations":
            self._send_json(200, self._image(mode))
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def _image(self, mode: str) -> dict[str, Any]:
        if mode == "image_url":
            url = f"http://127.0.0.1:{self.server.server_address[1]}/files/image.png"
            return {"created": 0, "data": [{"url": url}]}
        return {"created": 0, "data": [{"b64_json": base64.b64encode(PNG).decode()}]}

    def _send_json(self, status: int, payload: object) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (timeout tests)


def _error(status: int, message: str, code: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": code, "param": None, "code": code}}


_FAILURES: dict[str, tuple[int, dict[str, Any]]] = {
    "rate_limited": _error(429, "Rate limit reached for requests", "rate_limit_exceeded"),
    "server_error": _error(500, "The server had an error", "server_error"),
    "bad_gateway": _error(502, "Bad gateway", "bad_gateway"),
    "bad_request": _error(400, "Invalid schema for response_format", "invalid_request_error"),
    "unauthorized": _error(401, f"Incorrect API key provided: {API_KEY}.", "invalid_api_key"),
}


def _completion(request: dict[str, Any], mode: str) -> dict[str, Any]:
    name = request["response_format"]["json_schema"]["name"]
    message: dict[str, Any] = {"role": "assistant", "content": json.dumps(CANNED[name])}
    finish_reason = "stop"
    if mode == "invalid_json":
        message["content"] = '{"businessName": "Acme", '
    elif mode == "wrong_shape":
        message["content"] = json.dumps({**CANNED[name], "surprise": True})
    elif mode == "empty":
        message["content"] = ""
    elif mode == "refusal":
        message.update(content=None, refusal="I can't help with that.")
    elif mode == "truncated":
        finish_reason = "length"
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": request["model"],
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(fake: FakeOpenAI) -> FakeOpenAI:
    fake.mode = "ok"
    fake.requests.clear()
    return fake


def provider_for(fake: FakeOpenAI, *, timeout_s: float = 5.0) -> OpenAIProvider:
    return OpenAIProvider(
        api_key=API_KEY,
        base_url=fake.base_url,
        model="gpt-test",
        image_model="gpt-image-test",
        timeout_s=timeout_s,
        image_timeout_s=timeout_s,
    )


# --- happy paths -----------------------------------------------------------------------


def test_analyze_business_sends_a_strict_json_schema_request(api: FakeOpenAI) -> None:
    assert provider_for(api).analyze_business(PAGE) == ANALYSIS

    [request] = api.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == f"Bearer {API_KEY}"
    body = request["body"]
    assert body["model"] == "gpt-test"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "business_analysis",
            "strict": True,
            "schema": schemas.SCHEMAS["business_analysis"],
        },
    }
    system, user = body["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    assert "marketing analyst" in system["content"]
    for fact in (PAGE.title, PAGE.description, "Invoicing made simple", "Start free trial"):
        assert fact in user["content"]
    # Only the start of a long page text goes into the prompt.
    assert user["content"].count("Send invoices in seconds.") < PAGE.text.count(
        "Send invoices in seconds."
    )
    assert len(user["content"]) < 7000


def test_audiences_and_pitches(api: FakeOpenAI) -> None:
    provider = provider_for(api)

    assert provider.generate_audiences(PAGE, ANALYSIS) == AUDIENCES
    assert provider.generate_pitches(ANALYSIS, AUDIENCES) == PITCHES

    names = [r["body"]["response_format"]["json_schema"]["name"] for r in api.requests]
    assert names == ["audiences", "pitches"]
    assert all(r["body"]["response_format"]["json_schema"]["strict"] is True for r in api.requests)
    pitches_prompt = api.requests[1]["body"]["messages"][1]["content"]
    assert "Freelancers" in pitches_prompt and "exactly 2" in pitches_prompt


def test_pitch_count_must_match_the_audiences(api: FakeOpenAI) -> None:
    with pytest.raises(LLMError, match=r"\$.pitches must have exactly 3 items, got 2") as caught:
        provider_for(api).generate_pitches(ANALYSIS, [*AUDIENCES, AUDIENCES[0]])
    assert not caught.value.transient
    assert len(api.requests) == 1 + MAX_REASKS  # asked again before giving up
    schema = api.requests[0]["body"]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["pitches"]["minItems"] == 3
    assert schema["properties"]["pitches"]["maxItems"] == 3


@pytest.mark.parametrize("mode", ["ok", "image_url"])
def test_generate_image_from_b64_or_url(api: FakeOpenAI, mode: str) -> None:
    api.mode = mode

    image = provider_for(api).generate_image("A hero image for Acme")

    assert image.data == PNG
    assert image.content_type == "image/png"
    [request] = api.requests
    assert request["path"] == "/v1/images/generations"
    assert request["body"]["model"] == "gpt-image-test"
    assert request["body"]["prompt"] == "A hero image for Acme"
    assert request["body"]["n"] == 1
    assert request["body"]["size"] == "1024x1024"
    assert "response_format" not in request["body"]


def test_sniff_image_type() -> None:
    assert sniff_image_type(PNG) == "image/png"
    assert sniff_image_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image_type(b"GIF89a...") == "image/gif"
    assert sniff_image_type(b"unknown") == "image/png"


# --- failures --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "error_class", "transient", "text"),
    [
        ("rate_limited", LLMRateLimited, True, "Rate limit reached"),
        ("server_error", TransientLLMError, True, "HTTP 500"),
        ("bad_gateway", TransientLLMError, True, "HTTP 502"),
        ("bad_request", LLMError, False, "HTTP 400"),
        ("unauthorized", LLMError, False, "HTTP 401"),
        ("refusal", LLMError, False, "refused"),
    ],
)
def test_failures_map_to_job_errors(
    api: FakeOpenAI, mode: str, error_class: type[LLMError], transient: bool, text: str
) -> None:
    api.mode = mode

    with pytest.raises(LLMError) as caught:
        provider_for(api).analyze_business(PAGE)

    assert type(caught.value) is error_class
    assert caught.value.transient is transient
    assert text in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert len(api.requests) == 1  # the client itself never retries, nor asks again


@pytest.mark.parametrize(
    ("mode", "text"),
    [
        ("invalid_json", "invalid JSON for business_analysis"),
        ("wrong_shape", "unexpected keys surprise"),
        ("empty", "empty answer"),
        ("truncated", "cut off"),
    ],
)
def test_unusable_answers_fail_after_being_asked_again(
    api: FakeOpenAI, mode: str, text: str
) -> None:
    api.mode = mode

    with pytest.raises(UnusableAnswer) as caught:
        provider_for(api).analyze_business(PAGE)

    assert caught.value.error_code == "LLM_ERROR" and not caught.value.transient
    assert text in str(caught.value) and "asked 3 times" in str(caught.value)
    assert len(api.requests) == 1 + MAX_REASKS


def test_image_failures_map_too(api: FakeOpenAI) -> None:
    api.mode = "rate_limited"
    with pytest.raises(LLMRateLimited):
        provider_for(api).generate_image("x")


def test_slow_answers_time_out(api: FakeOpenAI) -> None:
    api.mode = "slow"
    provider = provider_for(api, timeout_s=0.3)

    started = time.monotonic()
    with pytest.raises(LLMTimeout) as caught:
        provider.analyze_business(PAGE)
    assert time.monotonic() - started < SLOW_SECONDS
    assert caught.value.transient

    with pytest.raises(LLMTimeout):
        provider.generate_image("x")


def test_unreachable_server_is_transient() -> None:
    with socket.socket() as sock:  # a port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = OpenAIProvider(
        api_key=API_KEY,
        base_url=f"http://127.0.0.1:{port}/v1",
        model="gpt-test",
        image_model="gpt-image-test",
        timeout_s=2,
    )

    with pytest.raises(TransientLLMError) as caught:
        provider.analyze_business(PAGE)
    assert type(caught.value) is TransientLLMError


def test_map_error_passes_job_errors_through_and_wraps_the_rest() -> None:
    original = LLMRateLimited("slow down")
    assert _map_error(original) is original
    wrapped = _map_error(json.JSONDecodeError("Expecting value", "", 0))
    assert type(wrapped) is LLMError and "invalid JSON" in str(wrapped)
    other = _map_error(RuntimeError(f"boom with Bearer {API_KEY}"))
    assert type(other) is LLMError and API_KEY not in str(other)
