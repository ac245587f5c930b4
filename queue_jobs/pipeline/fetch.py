"""Fetch one web page for the pipeline, refusing to reach internal addresses (SSRF guard).

Redirects are followed by hand so that every hop is checked, and each request is sent to
the very address that passed the check (see `_PinnedAdapter`), so a hostile DNS server
cannot answer "public" to the check and "127.0.0.1" to the connection (DNS rebinding).

A whole fetch (connections, redirects, headers and body) has a deadline (`_Deadline`): a
read timeout bounds one wait for data, so a site sending a byte every few seconds would
otherwise hold the step, and its worker slot, for as long as it liked.
"""

from __future__ import annotations

import codecs
import ipaddress
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from queue_jobs.pipeline.failures import (
    Cancelled,
    FetchBlocked,
    FetchFailed,
    InvalidContent,
    JobFailure,
    TransientFetchFailed,
)
from queue_jobs.pipeline.hosts import is_valid_host

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})
CHUNK_BYTES = 64 * 1024
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ALLOWED_SCHEMES = ("http", "https")

# DNS64 maps every IPv4 address into this prefix; on an IPv6-only host public sites resolve
# here, so the embedded IPv4 address is what decides.
_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")

_CHARSET_PARAM = re.compile(r"charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
# The HTML spec's prescan only looks at the first 1024 bytes; a little more is harmless.
_META_CHARSET = re.compile(rb"<meta[^>]{0,512}?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)
_META_PRESCAN_BYTES = 4096
_DETECT_BYTES = 64 * 1024
_DEADLINE_SLACK_S = 0.05


@dataclass(frozen=True)
class FetchedPage:
    url: str  # final URL after redirects
    status: int
    content_type: str  # media type without parameters, e.g. "text/html"
    html: str = field(repr=False)  # decoded text, at most max_bytes of the body


# --- address policy ----------------------------------------------------------------------


def is_public_address(ip: IPAddress) -> bool:
    """True if `ip` is a globally routable unicast address this service may connect to."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return is_public_address(embedded)
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or ip.is_reserved
    ):
        return False
    # Deprecated site-local fec0::/10 still counts as "global" in Python 3.11.
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return False
    # is_global also excludes shared (100.64/10) and other special-purpose ranges.
    return ip.is_global


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_host_allowed(host: str, allow_private: bool) -> list[str]:
    """Resolve `host` and return its addresses, or raise if any of them may not be fetched.

    Every address must be public, not just one: the HTTP client might pick any of them.
    """
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchFailed(f"Could not resolve host {host}") from exc
    addresses: list[str] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
            if address not in addresses:
                addresses.append(address)
    if not addresses:
        raise FetchFailed(f"Could not resolve host {host}")
    if not allow_private:
        for address in addresses:
            if not is_public_address(ipaddress.ip_address(address)):
                # The address is not named: it would tell callers about internal DNS.
                raise FetchBlocked(f"Refusing to fetch {host}: it resolves to a non-public address")
    return addresses


# --- the deadline -------------------------------------------------------------------------


class _Deadline:
    """The end of one whole fetch. At that moment a timer shuts down every connection the
    fetch opened (`watch`), which ends a read in progress at once: the calling thread then
    finds `expired` and fails the fetch. Without a deadline (None) nothing is timed."""

    def __init__(self, seconds: float | None) -> None:
        if seconds is not None and not math.isfinite(seconds):
            seconds = None  # inf: none (a setting may say so)
        self.seconds = seconds
        self._ends = None if seconds is None else time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False
        self._timer: threading.Timer | None = None
        if seconds is not None:
            self._timer = threading.Timer(max(0.0, seconds), self._expire)
            self._timer.daemon = True
            self._timer.name = "fetch-deadline"

    def __enter__(self) -> _Deadline:
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def timeout(self, limit: float) -> float:
        """`limit`, or less if the deadline comes first."""
        if self._ends is None:
            return limit
        return max(0.001, min(limit, self._ends - time.monotonic()))

    def watch(self, sock: socket.socket) -> None:
        """Keeps a duplicate of `sock`'s descriptor until the fetch ends: shutting it down
        cuts the connection whatever became of `sock` (TLS takes over its descriptor), and
        it cannot be closed and reused by anything else meanwhile."""
        if self._timer is None:
            return
        with self._lock:
            duplicate = sock.dup()
            self._sockets.append(duplicate)
            if self.expired:
                _shut(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def passed(self) -> bool:
        # With a little slack: a socket timeout capped by timeout() may end a hair before
        # the timer fires.
        return self.expired or (self._ends is not None
                                and time.monotonic() >= self._ends - _DEADLINE_SLACK_S)

    def check(self, url: str) -> None:
        if self.passed():
            raise self.failure(url)

    def failure(self, url: str) -> FetchFailed:
        return FetchFailed(f"The website took longer than {self.seconds:g} s to send {url}")


def _shut(sock: socket.socket) -> None:
    # shutdown, not close: it acts on the connection itself, so a read blocked in another
    # thread on another descriptor of it returns at once.
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


# The deadline of the fetch running in this thread (or task): its connections register
# their sockets with it as they open (urllib3 offers no other way to reach them in time).
_CURRENT_DEADLINE: ContextVar[_Deadline | None] = ContextVar("fetch_deadline", default=None)


def _watched(sock: socket.socket) -> socket.socket:
    deadline = _CURRENT_DEADLINE.get()
    if deadline is not None:
        deadline.watch(sock)
    return sock


# Watched as soon as it connects, before TLS starts: a handshake sent byte by byte is cut
# too.
class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _watched(super()._new_conn())


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _watched(super()._new_conn())


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


# --- connection pinning ------------------------------------------------------------------


class _PinnedAdapter(HTTPAdapter):
    """Sends to a URL whose host was replaced by a checked IP, verifying TLS for `hostname`.

    The request keeps its Host header (set by the caller) and urllib3 uses `server_hostname`
    for both SNI and certificate matching, so the server sees an ordinary request for the
    hostname. urllib3 drops `server_hostname` for plain-http pools.
    """

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname  # before super(): its __init__ calls init_poolmanager
        super().__init__(max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["server_hostname"] = self._hostname
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


@dataclass(frozen=True)
class _Limits:
    allow_private: bool
    connect_timeout: float
    read_timeout: float
    deadline: _Deadline
    max_bytes: int
    user_agent: str
    should_stop: Callable[[], bool] | None


def _check_scheme_and_host(url: str) -> None:
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname
    except ValueError as exc:  # a host urlsplit cannot parse, e.g. "http://[::1/"
        raise FetchFailed(f"Invalid URL {url}: {exc}") from exc
    if scheme not in _ALLOWED_SCHEMES:
        shown = scheme or "none"
        raise FetchFailed(f"Only http and https URLs can be fetched (scheme: {shown})")
    if not is_valid_host(host):
        # Checked before requests and urllib3 see it, whose own messages say little.
        raise FetchFailed(f"Invalid URL {url}: its host is not a valid host name or IP "
                          f"address")


def _prepare(url: str, limits: _Limits) -> requests.PreparedRequest:
    headers = {
        "User-Agent": limits.user_agent,
        "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
        "Accept-Encoding": "gzip, deflate",
    }
    try:
        # Preparing normalises the URL (IDNA host, percent-encoding) before we pin it.
        return requests.Request("GET", url, headers=headers).prepare()
    except (requests.RequestException, ValueError) as exc:
        raise FetchFailed(f"Invalid URL {url}: {exc}") from exc


def _pin(prepared: requests.PreparedRequest, limits: _Limits) -> str:
    """Point `prepared` at a checked address of its host; return the hostname."""
    parts = urlsplit(prepared.url or "")
    hostname = parts.hostname
    try:
        port = parts.port
    except ValueError as exc:
        raise FetchFailed(f"Invalid port in URL {prepared.url}") from exc
    if not hostname:
        raise FetchFailed(f"URL has no host: {prepared.url}")
    address = check_host_allowed(hostname, limits.allow_private)[0]
    netloc = f"[{address}]" if ":" in address else address
    if port is not None:
        netloc = f"{netloc}:{port}"
    prepared.headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
    prepared.url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return hostname


@contextmanager
def _open(url: str, limits: _Limits) -> Iterator[requests.Response]:
    """One GET to `url` (no redirects followed), streamed; always closed afterwards."""
    _check_scheme_and_host(url)
    prepared = _prepare(url, limits)
    hostname = _pin(prepared, limits)
    adapter = _PinnedAdapter(hostname)
    try:
        try:
            timeout = (limits.deadline.timeout(limits.connect_timeout),
                       limits.deadline.timeout(limits.read_timeout))
            response = adapter.send(prepared, stream=True, timeout=timeout, verify=True)
        except requests.RequestException as exc:
            raise _failure_for(exc, hostname) from exc
        try:
            yield response
        finally:
            response.close()
    finally:
        adapter.close()


# --- errors ------------------------------------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything it wraps: requests and urllib3 nest the socket error deeply."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args)
        pending.extend(item for item in linked if isinstance(item, BaseException))


def _is_timeout(exc: BaseException) -> bool:
    # urllib3 derives NewConnectionError (refused, unreachable) from its timeout class.
    if isinstance(exc, NewConnectionError):
        return False
    return isinstance(exc, (requests.Timeout, Urllib3Timeout, TimeoutError))


def _failure_for(exc: BaseException, host: str) -> JobFailure:
    causes = list(_causes(exc))
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return FetchFailed(f"Connection refused by {host}")
    if any(_is_timeout(c) for c in causes):
        return TransientFetchFailed(f"Timed out fetching {host}")
    if isinstance(exc, requests.exceptions.SSLError):
        return FetchFailed(f"TLS error talking to {host}")
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader)):
        return FetchFailed(f"Invalid request to {host}: {exc}")
    # Resets, aborted connections, broken chunked bodies, unreachable networks: may pass.
    return TransientFetchFailed(f"Connection to {host} failed: {type(exc).__name__}")


def _check_status(response: requests.Response, url: str) -> None:
    status = response.status_code
    if 500 <= status <= 599:
        raise TransientFetchFailed(f"The website answered HTTP {status} for {url}")
    if not 200 <= status <= 299:
        raise FetchFailed(f"The website answered HTTP {status} for {url}")


def _check_stop(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled()


# --- body --------------------------------------------------------------------------------


def _media_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def _read_body(response: requests.Response, limits: _Limits, url: str, host: str) -> bytes:
    """At most `max_bytes` of the body; reads no more than one chunk past the cap."""
    body = bytearray()
    try:
        for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
            _check_stop(limits.should_stop)
            body += chunk
            if len(body) >= limits.max_bytes:
                break  # an oversized page is analysed from its beginning, not rejected
    except requests.RequestException as exc:
        raise _failure_for(exc, host) from exc
    limits.deadline.check(url)  # a body cut short by the deadline looks complete
    return bytes(body[: limits.max_bytes])


def _known_codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _declared_encoding(response: requests.Response, body: bytes) -> str | None:
    header = _CHARSET_PARAM.search(response.headers.get("Content-Type", ""))
    if header and _known_codec(header.group(1)):
        return header.group(1)
    if body.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    meta = _META_CHARSET.search(body[:_META_PRESCAN_BYTES])
    if meta:
        name = _known_codec(meta.group(1).decode("ascii", "replace"))
        # A <meta> can only be read if the page is ASCII-compatible, so it cannot be UTF-16.
        if name is not None:
            return "utf-8" if name.startswith("utf-16") else name
    return None


def _is_utf8(body: bytes) -> bool:
    # Incremental so a multi-byte character cut off by the size cap does not count against it.
    try:
        codecs.getincrementaldecoder("utf-8")().decode(body, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _detected_encoding(body: bytes) -> str | None:
    detector = requests.compat.chardet
    if detector is None:
        return None
    result = detector.detect(body[:_DETECT_BYTES])
    return _known_codec(result.get("encoding"))


def _decode(response: requests.Response, body: bytes) -> str:
    encoding = _declared_encoding(response, body)
    if encoding is None:
        encoding = "utf-8" if _is_utf8(body) else _detected_encoding(body) or "utf-8"
    return body.decode(encoding, errors="replace")


# --- entry point -------------------------------------------------------------------------


def fetch_page(
    url: str,
    *,
    allow_private: bool = False,
    connect_timeout: float = 5.0,
    read_timeout: float = 15.0,
    deadline_s: float | None = 20.0,
    max_bytes: int = 2 * 1024 * 1024,
    max_redirects: int = 3,
    user_agent: str = "JobServiceBot/1.0",
    should_stop: Callable[[], bool] | None = None,
) -> FetchedPage:
    """Fetch an HTML page, following at most `max_redirects` redirects, all of it within
    `deadline_s` (None: no deadline; each wait for data still has its own timeout).

    Raises FetchFailed/TransientFetchFailed, FetchBlocked, InvalidContent or Cancelled.
    """
    with _Deadline(deadline_s) as deadline:
        limits = _Limits(
            allow_private=allow_private,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            deadline=deadline,
            max_bytes=max_bytes,
            user_agent=user_agent,
            should_stop=should_stop,
        )
        token = _CURRENT_DEADLINE.set(deadline)
        try:
            return _follow(url, limits, max_redirects)
        except FetchFailed as exc:
            # Whatever the cut connection looked like (reset, truncated, TLS error), the
            # deadline is the cause.
            if deadline.passed():
                raise deadline.failure(url) from exc
            raise
        finally:
            _CURRENT_DEADLINE.reset(token)


def _follow(url: str, limits: _Limits, max_redirects: int) -> FetchedPage:
    current = url
    for _hop in range(max_redirects + 1):
        _check_stop(limits.should_stop)
        limits.deadline.check(url)
        with _open(current, limits) as response:
            if response.status_code in _REDIRECT_STATUSES:
                current = _redirect_target(response, current)
                continue
            return _read_page(response, current, limits)
    raise FetchFailed(f"Too many redirects (more than {max_redirects}) starting at {url}")


def _redirect_target(response: requests.Response, current: str) -> str:
    location = response.headers.get("Location", "").strip()
    if not location:
        raise FetchFailed(f"HTTP {response.status_code} redirect without a Location at {current}")
    try:
        return urljoin(current, location)
    except ValueError as exc:
        raise FetchFailed(f"Invalid redirect Location at {current}") from exc


def _read_page(response: requests.Response, url: str, limits: _Limits) -> FetchedPage:
    _check_status(response, url)
    media_type = _media_type(response)
    if media_type not in HTML_CONTENT_TYPES:
        raise InvalidContent(f"Expected an HTML page, got {media_type or 'no content type'}")
    host = urlsplit(url).hostname or url
    body = _read_body(response, limits, url, host)
    return FetchedPage(
        url=url,
        status=response.status_code,
        content_type=media_type,
        html=_decode(response, body),
    )
