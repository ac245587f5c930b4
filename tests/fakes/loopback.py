"""What both fake servers share: a threaded HTTP server on loopback that can cut every open
connection at once (so stop() and reset() interrupt delayed answers), and a quiet handler
that tolerates clients going away."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class TrackingServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many concurrent clients connect at once

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def drop_connections(self) -> None:
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class TrackingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TrackingServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.track(self.connection, add=False)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # client went away or the server is stopping
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackService:
    """start/stop/context-manager lifecycle of a fake served by a TrackingServer thread.

    Subclasses build their server in `_make_server()` and derive `base_url` from the port in
    `_base_url_for(port)`; `_interrupt` is set on stop to cut short delayed answers.
    """

    _port: int
    base_url: str

    def __init__(self, port: int) -> None:
        self._port = port
        self._interrupt = threading.Event()
        self._server: TrackingServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def _make_server(self) -> TrackingServer:
        raise NotImplementedError

    def _base_url_for(self, port: int) -> str:
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        self._interrupt = threading.Event()
        self._server = self._make_server()
        self._port = self._server.server_address[1]
        self.base_url = self._base_url_for(self._port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=type(self).__name__,
            daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._interrupt.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
