"""webapp/one_write.py: gunicorn's real Response, parsing a real request, writing to a
socket that records each write."""

from __future__ import annotations

from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from webapp import one_write


class RecordingSocket:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    assert one_write.install()


def _response(method: str = "GET") -> tuple[wsgi.Response, RecordingSocket]:
    raw = f"{method} /api/v1/jobs/x/status HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    request = next(iter(RequestParser(Config(), [raw], ("127.0.0.1", 1))))
    sock = RecordingSocket()
    return wsgi.Response(request, sock, Config()), sock


def _answer(response: wsgi.Response, status: str, headers: list[tuple[str, str]],
            body: list[bytes]) -> None:
    response.start_response(status, headers)
    for chunk in body:
        response.write(chunk)
    response.close()


def test_a_body_of_known_length_goes_out_with_its_headers_in_one_write() -> None:
    response, sock = _response()
    _answer(response, "200 OK", [("Content-Type", "application/json"),
                                 ("Content-Length", "11")], [b'{"a": true}'])
    assert len(sock.writes) == 1
    head, body = sock.writes[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 11" in head
    assert body == b'{"a": true}'


def test_an_answer_without_a_body_sends_its_headers_at_close() -> None:
    response, sock = _response()
    _answer(response, "304 Not Modified", [("ETag", '"v1"')], [])
    assert len(sock.writes) == 1
    assert sock.writes[0].startswith(b"HTTP/1.1 304 Not Modified\r\n")
    assert sock.writes[0].endswith(b"\r\n\r\n")


def test_a_head_request_gets_its_headers_and_no_body() -> None:
    response, sock = _response("HEAD")
    _answer(response, "200 OK", [("Content-Length", "11")], [b'{"a": true}'])
    assert b"".join(sock.writes).endswith(b"Content-Length: 11\r\n\r\n")


def test_a_chunked_stream_sends_headers_before_its_first_chunk_as_gunicorn_does() -> None:
    response, sock = _response()
    response.start_response("200 OK", [("Content-Type", "text/event-stream")])
    assert response.chunked
    response.write(b"event: status\n\n")
    assert len(sock.writes) == 2  # nothing is held back from a stream's reader
    assert sock.writes[0].endswith(b"\r\n\r\n")
    assert sock.writes[1] == b"F\r\nevent: status\n\n\r\n"
    response.close()
    assert sock.writes[-1] == b"0\r\n\r\n"


def test_the_methods_replaced_are_gunicorn_responses_own() -> None:
    # an upgrade that renames them fails here, not quietly in production
    for name in one_write.PATCHED:
        method: Any = getattr(wsgi.Response, name)
        assert callable(method), name
