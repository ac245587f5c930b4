"""Self-tests of the local fakes (OpenAI API and web site)."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import requests
import urllib3
from openai.types.chat import ChatCompletion
from PIL import Image

from tests.fakes.openai_server import FakeOpenAI, generate_from_schema
from tests.fakes.website import HUGE_SIZE, FakeWebsite

AUDIENCES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "audiences": {
            "type": "array",
            "minItems": 2,
            "maxItems": 5,
            "items": {"$ref": "#/$defs/Audience"},
        },
        "tone": {"type": "string", "enum": ["formal", "friendly"]},
        "score": {"type": "integer", "minimum": 10, "maximum": 20},
        "meta": {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}, "ratio": {"type": "number"}},
            "required": ["ok", "ratio"],
            "additionalProperties": False,
        },
    },
    "required": ["audiences", "tone", "score", "meta"],
    "additionalProperties": False,
    "$defs": {
        "Audience": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "painPoints": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            },
            "required": ["name", "painPoints"],
            "additionalProperties": False,
        }
    },
}


@pytest.fixture
def client(fake: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0, timeout=5)


@pytest.fixture(scope="module")
def site() -> Iterator[FakeWebsite]:
    with FakeWebsite() as website:
        yield website


def _ask(client: openai.OpenAI, name: str = "audiences") -> ChatCompletion:
    return client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Who buys this?"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": name, "schema": AUDIENCES_SCHEMA, "strict": True},
        },
    )


# ----------------------------------------------------------------------------- OpenAI


def test_chat_answer_follows_the_schema(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    completion = _ask(client)

    assert completion.object == "chat.completion"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens > 0
    data = json.loads(completion.choices[0].message.content or "")
    assert set(data) == {"audiences", "tone", "score", "meta"}
    assert len(data["audiences"]) == 3
    names = [audience["name"] for audience in data["audiences"]]
    assert len(set(names)) == 3
    assert all(isinstance(n, str) and n for n in names)
    assert all(audience["painPoints"] for audience in data["audiences"])
    assert data["tone"] in ("formal", "friendly")
    assert 10 <= data["score"] <= 20
    assert isinstance(data["meta"]["ok"], bool)
    assert isinstance(data["meta"]["ratio"], float)
    assert fake.requests_log[0]["kind"] == "chat:audiences"
    assert fake.requests_log[0]["path"] == "/v1/chat/completions"
    assert fake.requests_log[0]["model"] == "gpt-4o-mini"


def test_generator_respects_item_bounds() -> None:
    few = {"type": "array", "items": {"type": "string"}, "maxItems": 2}
    many = {"type": "array", "items": {"type": "string"}, "minItems": 5}
    assert generate_from_schema(few, "keywords") == ["Fake keywords 1", "Fake keywords 2"]
    assert len(generate_from_schema(many)) == 5


def test_bad_answers_are_spoiled_once_each(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    for fault in ("not_json", "truncated", "missing_field", "wrong_count"):
        fake.answer_badly("chat:audiences", fault)
    fake.answer_badly("chat:other", "not_json")  # another kind: untouched here

    contents, finishes = [], []
    for _ in range(5):
        choice = _ask(client).choices[0]
        contents.append(choice.message.content or "")
        finishes.append(choice.finish_reason)

    with pytest.raises(json.JSONDecodeError):
        json.loads(contents[0])
    assert json.dumps(json.loads(contents[4])) in contents[0]  # the document, with prose
    with pytest.raises(json.JSONDecodeError):
        json.loads(contents[1])
    assert finishes == ["stop", "length", "stop", "stop", "stop"]
    assert set(json.loads(contents[2])) == {"tone", "score", "meta"}  # "audiences" left out
    assert len(json.loads(contents[3])["audiences"]) == 6  # maxItems 5, one past it
    assert len(json.loads(contents[4])["audiences"]) == 3  # well again
    assert [m[0]["content"] for m in fake.messages("chat:audiences")] == ["Who buys this?"] * 5
    assert fake.messages("chat:other") == []
    with pytest.raises(ValueError):
        fake.answer_badly("chat", "rude")


def test_images_b64_is_a_png(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    result = client.images.generate(prompt="a cat", n=2, response_format="b64_json")

    assert result.data is not None
    assert len(result.data) == 2
    png = base64.b64decode(result.data[0].b64_json or "")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(png)).size == (4, 4)
    assert fake.calls("images") == 1


def test_images_url_is_served_by_the_fake(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    result = client.images.generate(prompt="a dog", response_format="url")

    assert result.data is not None
    response = requests.get(result.data[0].url or "", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


def test_fail_next_500_is_consumed(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.fail_next("chat", 500)

    with pytest.raises(openai.InternalServerError) as excinfo:
        _ask(client)
    assert excinfo.value.status_code == 500
    _ask(client)
    assert fake.calls("chat") == 2
    assert fake.calls("chat:audiences") == 2


def test_fail_next_429_is_rate_limit(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.fail_next("chat:audiences", 429, times=2)

    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as excinfo:
            _ask(client)
    assert excinfo.value.response.headers["retry-after"] == "0"
    assert excinfo.value.code == "rate_limit_exceeded"
    _ask(client)


def test_exact_kind_failure_wins_over_prefix(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.fail_next("chat", 500)
    fake.fail_next("chat:other", 400)

    with pytest.raises(openai.BadRequestError):
        _ask(client, name="other")
    with pytest.raises(openai.InternalServerError):
        _ask(client, name="pitches")
    _ask(client, name="other")
    assert fake.calls("chat") == 3
    assert fake.calls("chat:other") == 2
    assert fake.calls("images") == 0


def test_client_retries_pass_through_injected_429(fake: FakeOpenAI) -> None:
    retrying = openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=1, timeout=5)
    fake.fail_next("chat", 429)

    _ask(retrying)
    assert fake.calls("chat") == 2


def test_delay_longer_than_timeout(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.set_delay("chat", 1.0)

    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.2).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert fake.calls("chat") == 1


def test_wait_for_calls(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    worker = threading.Thread(target=_ask, args=(client,))
    worker.start()
    fake.wait_for_calls("chat", 1, timeout=5)
    worker.join(timeout=5)
    with pytest.raises(TimeoutError):
        fake.wait_for_calls("images", 1, timeout=0.05)


def test_delivered_counts_answers_that_reached_the_caller(
        client: openai.OpenAI, fake: FakeOpenAI) -> None:
    before = time.monotonic()
    _ask(client)
    client.images.generate(model="gpt-image-1", prompt="a fox")

    assert (fake.delivered("chat"), fake.delivered("images"), fake.delivered("chat:x")) \
        == (1, 1, 0)
    assert fake.delivered_between(before, time.monotonic()) == 2
    assert fake.delivered_between(before - 10, before) == 0
    fake.reset()
    assert fake.delivered("chat") == 0
    assert fake.delivered_between(before, time.monotonic()) == 0


def test_an_answer_to_a_caller_gone_meanwhile_is_paid_but_not_delivered(
        client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.set_delay("chat", 0.3)
    host, port = fake.base_url.removeprefix("http://").split("/")[0].split(":")
    body = b'{"model": "m", "messages": []}'
    with socket.create_connection((host, int(port)), timeout=5) as caller:  # a killed worker
        caller.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        fake.wait_for_calls("chat", 1, timeout=5)

    # Asked after the first one, so answered after its delay ran out too.
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert (fake.calls("chat"), fake.answered("chat"), fake.delivered("chat")) == (2, 2, 1)


def test_unknown_path_is_404(fake: FakeOpenAI) -> None:
    response = requests.post(fake.base_url + "/nope", json={}, timeout=5)

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


# ---------------------------------------------------------------------------- website


@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/", 200, "text/html; charset=utf-8"),
        ("/demo", 200, "text/html; charset=utf-8"),
        ("/signup", 200, "text/html; charset=utf-8"),
        ("/slow", 200, "text/html; charset=utf-8"),
        ("/plain.txt", 200, "text/plain; charset=utf-8"),
        ("/image.png", 200, "image/png"),
        ("/missing", 404, "text/html; charset=utf-8"),
        ("/error", 500, "text/html; charset=utf-8"),
    ],
)
def test_site_paths(site: FakeWebsite, path: str, status: int, content_type: str) -> None:
    response = requests.get(site.url(path), timeout=5)

    assert response.status_code == status
    assert response.headers["Content-Type"] == content_type


def test_home_page_content(site: FakeWebsite) -> None:
    html = requests.get(site.url("/"), timeout=5).text

    assert '<html lang="en">' in html
    assert '<a class="btn btn-primary" href="/demo">Book a demo</a>' in html
    assert '<a href="/signup">Start free trial</a>' in html
    assert '<button type="submit">Contact us</button>' in html
    assert 'property="og:site_name" content="Acme Analytics"' in html


def test_huge_page_is_streamed(site: FakeWebsite) -> None:
    with requests.get(site.url("/huge"), stream=True, timeout=5) as response:
        assert int(response.headers["Content-Length"]) == HUGE_SIZE
        size = sum(len(chunk) for chunk in response.iter_content(256 * 1024))
    assert size == HUGE_SIZE


def test_redirect_chain(site: FakeWebsite) -> None:
    before = site.hits("/")
    response = requests.get(site.url("/redirect/3"), timeout=5)

    assert response.status_code == 200
    assert response.url == site.url("/")
    assert [r.headers["Location"] for r in response.history] == [
        "/redirect/2",
        "/redirect/1",
        "/",
    ]
    assert site.hits("/redirect/3") >= 1
    assert site.hits("/") == before + 1


def test_redirect_to(site: FakeWebsite) -> None:
    target = site.url("/demo")
    response = requests.get(site.url("/redirect-to"), params={"url": target}, timeout=5)

    assert response.url == target
    assert response.history[0].status_code == 302
    assert site.hits("/redirect-to?url=x") >= 1


def test_set_slow(site: FakeWebsite) -> None:
    site.set_slow("/slow", 1.0)
    try:
        with pytest.raises(requests.Timeout):
            requests.get(site.url("/slow"), timeout=0.2)
    finally:
        site.set_slow("/slow", 0)


def test_the_drip_page_sends_one_byte_at_a_time(site: FakeWebsite) -> None:
    started = time.monotonic()
    with requests.get(site.url("/drip?every=0.002"), stream=True, timeout=5) as response:
        first = response.raw.read(1)
        body = first + response.raw.read()
    elapsed = time.monotonic() - started
    assert response.headers["Content-Length"] == str(len(body))
    assert body.startswith(b"<!DOCTYPE html>") and b"A dripping page" in body
    assert elapsed >= len(body) * 0.002


def test_a_reset_cuts_the_drip(site: FakeWebsite) -> None:
    started = time.monotonic()
    with requests.get(site.url("/drip?every=10"), stream=True, timeout=5) as response:
        site.reset()
        with pytest.raises(urllib3.exceptions.ProtocolError):  # short of its length
            response.raw.read()
    assert time.monotonic() - started < 5  # not 10 s per byte
