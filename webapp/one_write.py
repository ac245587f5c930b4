"""gunicorn answers with one write: the status line and headers go out with the body.

gunicorn 27 writes a response's headers with one `sendall` and its body with another. Every
answer with a body (a create's 201, a status document's 200) then costs two system calls,
two TCP segments and, on the client's side, two wake-ups; the second write of a small body
is pure overhead. Here the headers are held until the body's first write and sent with it
when the body is not chunked; a chunked body (an event stream) sends them, as before, with
its first chunk's write, and a response without a body (a 304) sends them at close. Measured
with bench/reference_app.py's /hello on one gunicorn process: about a quarter more
requests a second.

It replaces methods of gunicorn.http.wsgi.Response (PATCHED names them; a unit test checks
they still exist, so an upgrade that renames them fails the tests rather than a deploy).
If they are missing at start the worker keeps gunicorn's own writes and says so.
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn import util
from gunicorn.http import wsgi

log = logging.getLogger(__name__)
PATCHED = ("send_headers", "_emit_body", "close", "sendfile", "default_headers")
_HELD = "_held_headers"


def install() -> bool:
    """Once, before gunicorn forks its workers (webapp/gunicorn_conf.py)."""
    response = wsgi.Response
    if getattr(response, "_one_write", False):
        return True
    if not all(callable(getattr(response, name, None)) for name in PATCHED):
        log.warning("gunicorn's Response changed: headers and body go out in two writes")
        return False
    emit_body, close, sendfile = response._emit_body, response.close, response.sendfile

    def send_headers(self: Any) -> None:
        if self.headers_sent:
            return
        lines = self.default_headers()
        lines.extend([f"{name}: {value}\r\n" for name, value in self.headers])
        setattr(self, _HELD, util.to_bytestring("".join(lines) + "\r\n", "latin-1"))
        self.headers_sent = True

    def send_held(self: Any) -> None:
        held = self.__dict__.pop(_HELD, None)
        if held:
            util.write(self.sock, held)

    def one_write_emit_body(self: Any, data: bytes) -> None:
        held = self.__dict__.pop(_HELD, None)
        if held is not None and not self.chunked:
            util.write(self.sock, held + data)
            return
        if held is not None:
            util.write(self.sock, held)
        emit_body(self, data)

    def one_write_close(self: Any) -> None:
        send_headers(self)
        send_held(self)
        close(self)

    def one_write_sendfile(self: Any, respiter: Any) -> Any:
        if self.cfg.is_ssl or not self.can_sendfile():
            return sendfile(self, respiter)  # declines: the body goes through write
        send_headers(self)
        send_held(self)
        return sendfile(self, respiter)

    response.send_headers = send_headers
    response._emit_body = one_write_emit_body
    response.close = one_write_close
    response.sendfile = one_write_sendfile
    response._one_write = True
    return True
