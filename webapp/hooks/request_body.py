"""Request bodies: at most MAX_CONTENT_LENGTH (1 MiB) however they are sent; one byte more
is 413 PAYLOAD_TOO_LARGE, with or without a Content-Length.

Werkzeug refuses a Content-Length over the limit, but a chunked body (no Content-Length;
gunicorn de-chunks it and sets wsgi.input_terminated) is read through a stream that
simply stops at the limit: the view would parse the first MiB, or 400 on JSON cut in two,
or even accept it. Here such a body is read through a stream one byte longer, and reading
that byte is the 413.
"""

from __future__ import annotations

from typing import IO

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_input_stream


class _StreamedBodyCap(LimitedStream):
    """A body without a Content-Length that may hold `cap` bytes: byte cap+1 is 413."""

    def __init__(self, stream: IO[bytes], cap: int) -> None:
        super().__init__(stream, cap + 1, is_max=True)
        self._cap = cap

    def readinto(self, b: bytearray) -> int | None:  # type: ignore[override]
        size = super().readinto(b)
        if self.tell() > self._cap:
            raise RequestEntityTooLarge()
        return size


class CappedRequest(Request):
    """Flask's Request whose stream enforces max_content_length on chunked bodies too."""

    @cached_property
    def stream(self) -> IO[bytes]:
        if self.shallow:  # as Werkzeug's own stream
            raise RuntimeError("This request was created with 'shallow=True', reading"
                               " from the input stream is disabled.")
        cap = self.max_content_length
        if (cap is not None and self.content_length is None
                and "wsgi.input_terminated" in self.environ):
            return _StreamedBodyCap(self.environ["wsgi.input"], cap)  # type: ignore[return-value]
        return get_input_stream(self.environ, max_content_length=cap)
