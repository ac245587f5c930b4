"""Tests of the website fetcher against a loopback server started by this module."""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from queue_jobs.pipeline import fetch
from queue_jobs.pipeline.failures import (
    Cancelled,
    FetchBlocked,
    FetchFailed,
    InvalidContent,
    TransientFetchFailed,
)
from queue_jobs.pipeline.fetch import check_host_allowed, fetch_page, is_public_address

HUGE_SIZE = 5 * 1024 * 1024
PAGE_HTML = "<html><head><title>Café</title></head><body><p>Hello</p></body></html>"
DRIP_S = 0.05  # the drip pages' pace: one byte every DRIP_S
SLOW_LIMIT = 5.0  # a slow handler gives up after this long even if the test never releases it


@dataclass
class SiteState:
    release: threading.Event = field(default_factory=threading.Event)
    hosts: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    sni: list[str | None] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    server: Site

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def handle(self) -> None:
        # Clients hang up on purpose (size cap, timeouts): not an error for this server.
        with contextlib.suppress(ConnectionError, TimeoutError):
            super().handle()

    def do_GET(self) -> None:
        self.server.state.hosts.append((self.path, self.headers.get("Host", "")))
        if self.path.startswith("/redirect/"):
            return self._redirect_chain(int(self.path.rsplit("/", 1)[1]))
        route: Callable[[], None] | None = getattr(self, "route_" + self.path[1:], None)
        if route is None:
            return self._send(404, "text/html", b"<h1>Not found</h1>")
        route()

    def _send(self, status: int, content_type: str, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect_chain(self, remaining: int) -> None:
        if remaining == 0:
            return self.route_page()
        # Relative on purpose: the fetcher must resolve it against the current URL.
        self._send(302, "text/html", b"", Location=str(remaining - 1))

    def route_page(self) -> None:
        self._send(200, "text/html; charset=utf-8", PAGE_HTML.encode())

    def route_xhtml(self) -> None:
        self._send(200, "application/xhtml+xml", PAGE_HTML.encode())

    def route_latin1(self) -> None:
        self._send(200, "text/html; charset=ISO-8859-1", b"<p>caf\xe9</p>")

    def route_meta_charset(self) -> None:
        self._send(200, "text/html", b'<meta charset="windows-1252"><p>\x93caf\xe9\x94</p>')

    def route_undeclared_utf8(self) -> None:
        self._send(200, "text/html", "<p>naïve café</p>".encode())

    def route_plain(self) -> None:
        self._send(200, "text/plain", b"just text")

    def route_no_type(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"hi")

    def route_unavailable(self) -> None:
        self._send(503, "text/html", b"<h1>Try later</h1>")

    def route_no_location(self) -> None:
        self._send(302, "text/html", b"")

    def route_to_loopback(self) -> None:
        self._send(302, "text/html", b"", Location=f"http://127.0.0.1:{self.server.port}/page")

    def route_to_bad_host(self) -> None:
        self._send(302, "text/html", b"", Location="http://not a host at all/page")

    def route_to_ftp(self) -> None:
        self._send(302, "text/html", b"", Location="ftp://example.com/file")

    def route_echo_host(self) -> None:
        self._send(200, "text/html", self.headers.get("Host", "").encode())

    def route_huge(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(HUGE_SIZE))
        self.end_headers()
        chunk = b"<p>" + b"x" * 65_529 + b"</p>"
        for _ in range(HUGE_SIZE // len(chunk)):
            self.wfile.write(chunk)

    def route_slow_headers(self) -> None:
        self.server.state.release.wait(SLOW_LIMIT)
        self.route_page()

    def route_slow_body(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"<p>first bytes")
        self.wfile.flush()
        self.server.state.release.wait(SLOW_LIMIT)

    def _drip(self, data: bytes) -> None:
        """`data`, one byte every DRIP_S (each well within the read timeout the tests use)."""
        for byte in data:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(DRIP_S)
        self.close_connection = True

    def route_drip_body(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE_HTML)))
        self.end_headers()
        self._drip(PAGE_HTML.encode())

    def route_drip_headers(self) -> None:
        self._drip(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi")

    def route_slow_hop(self) -> None:
        time.sleep(DRIP_S * 3)
        self._send(302, "text/html", b"", Location="/slow_hop")

    def route_reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class Site(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = SiteState()
        self.port = int(self.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    scheme = "http"


def _serve(server: Site) -> Iterator[Site]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(SLOW_LIMIT)


@pytest.fixture(scope="module")
def _site_server() -> Iterator[Site]:
    yield from _serve(Site())


@pytest.fixture
def site(_site_server: Site) -> Site:
    _site_server.state.hosts.clear()
    return _site_server


@pytest.fixture(scope="module")
def _certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=site.test",
         "-addext", "subjectAltName=DNS:site.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_site(_certificate: tuple[Path, Path]) -> Iterator[Site]:
    cert, key = _certificate
    server = Site()
    server.scheme = "https"
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def remember_sni(_sock: Any, server_name: str | None, _context: Any) -> None:
        server.state.sni.append(server_name)

    context.sni_callback = remember_sni
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _serve(server)


@pytest.fixture
def trust_test_certificate(
    monkeypatch: pytest.MonkeyPatch, _certificate: tuple[Path, Path]
) -> None:
    """Make the fetcher trust the test certificate instead of the public CAs."""
    original = fetch._PinnedAdapter.send

    def send(self: fetch._PinnedAdapter, request: Any, **kwargs: Any) -> Any:
        kwargs["verify"] = str(_certificate[0])
        return original(self, request, **kwargs)

    monkeypatch.setattr(fetch._PinnedAdapter, "send", send)


@pytest.fixture
def public_site_test(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Pretend "site.test" and "wrong.test" are public hosts at 127.0.0.1.

    Returns the hosts anything resolved through socket.getaddrinfo meanwhile: the names
    are unresolvable, so a fetch only works if the connection uses the checked address.
    """
    real_check = fetch.check_host_allowed
    real_getaddrinfo = socket.getaddrinfo
    resolved: list[str] = []

    def check(host: str, allow_private: bool) -> list[str]:
        if host in ("site.test", "wrong.test"):
            return ["127.0.0.1"]
        return real_check(host, allow_private)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        resolved.append(str(host))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(fetch, "check_host_allowed", check)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return resolved


@pytest.fixture
def bytes_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the body chunks the fetcher pulled from the connection."""
    sizes: list[int] = []
    original = requests.Response.iter_content

    def iter_content(self: requests.Response, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for chunk in original(self, *args, **kwargs):
            sizes.append(len(chunk))
            yield chunk

    monkeypatch.setattr(requests.Response, "iter_content", iter_content)
    return sizes


def get(site: Site, path: str, **kwargs: Any) -> fetch.FetchedPage:
    kwargs.setdefault("allow_private", True)
    return fetch_page(site.url(path), **kwargs)


# --- successful fetches -------------------------------------------------------------------


def test_fetches_an_html_page(site: Site) -> None:
    page = get(site, "/page")
    assert page.url == site.url("/page")
    assert page.status == 200
    assert page.content_type == "text/html"
    assert page.html == PAGE_HTML


def test_sends_the_user_agent(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    original = fetch._PinnedAdapter.send

    def send(self: fetch._PinnedAdapter, request: Any, **kwargs: Any) -> Any:
        seen.append(request.headers["User-Agent"])
        return original(self, request, **kwargs)

    monkeypatch.setattr(fetch._PinnedAdapter, "send", send)
    get(site, "/page", user_agent="TestBot/2")
    assert seen == ["TestBot/2"]


def test_accepts_xhtml(site: Site) -> None:
    page = get(site, "/xhtml")
    assert page.content_type == "application/xhtml+xml"
    assert "Café" in page.html


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/latin1", "<p>café</p>"),  # charset in the Content-Type header
        ("/meta_charset", "<p>\u201ccafé\u201d</p>"),  # charset in a <meta> tag
        ("/undeclared_utf8", "<p>naïve café</p>"),  # nothing declared: UTF-8, not Latin-1
    ],
)
def test_decodes_the_body(site: Site, path: str, text: str) -> None:
    assert text in get(site, path).html


# --- content checks -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/plain", "/no_type"])
def test_rejects_non_html_without_reading_the_body(
    site: Site, bytes_read: list[int], path: str
) -> None:
    with pytest.raises(InvalidContent):
        get(site, path)
    assert bytes_read == []


def test_huge_page_is_truncated_to_the_cap(site: Site, bytes_read: list[int]) -> None:
    cap = 2 * 1024 * 1024
    page = get(site, "/huge")
    assert len(page.html) == cap  # the page is ASCII, so characters are bytes
    assert page.html.startswith("<p>xxx")
    assert cap <= sum(bytes_read) <= cap + fetch.CHUNK_BYTES


def test_small_cap(site: Site, bytes_read: list[int]) -> None:
    page = get(site, "/huge", max_bytes=1000)
    assert len(page.html) == 1000
    assert sum(bytes_read) <= 1000 + fetch.CHUNK_BYTES


# --- HTTP failures ------------------------------------------------------------------------


def test_not_found_is_permanent(site: Site) -> None:
    with pytest.raises(FetchFailed, match="404") as raised:
        get(site, "/nowhere")
    assert not raised.value.transient


def test_server_error_is_transient(site: Site) -> None:
    with pytest.raises(TransientFetchFailed, match="503") as raised:
        get(site, "/unavailable")
    assert raised.value.transient


def test_follows_relative_redirects_up_to_the_limit(site: Site) -> None:
    page = get(site, "/redirect/3", max_redirects=3)
    assert page.url == site.url("/redirect/0")
    assert page.html == PAGE_HTML
    assert [path for path, _host in site.state.hosts] == [
        "/redirect/3", "/redirect/2", "/redirect/1", "/redirect/0"
    ]  # fmt: skip


def test_too_many_redirects(site: Site) -> None:
    with pytest.raises(FetchFailed, match="Too many redirects") as raised:
        get(site, "/redirect/4", max_redirects=3)
    assert not raised.value.transient
    assert len(site.state.hosts) == 4  # the original request and three redirects


def test_redirect_without_location(site: Site) -> None:
    with pytest.raises(FetchFailed, match="without a Location"):
        get(site, "/no_location")


def test_redirect_to_another_scheme(site: Site) -> None:
    with pytest.raises(FetchFailed, match="http and https") as raised:
        get(site, "/to_ftp")
    assert not isinstance(raised.value, FetchBlocked)


@pytest.mark.parametrize("url", ["https://not a url at all", "http://exa_mple-.com/",
                                 "http:///page", "http://[::1/"])
def test_an_invalid_host_fails_with_a_clear_message(url: str) -> None:
    with pytest.raises(FetchFailed, match=r"^Invalid URL .*") as raised:
        fetch_page(url, allow_private=True)
    assert not isinstance(raised.value, TransientFetchFailed)


def test_a_redirect_to_an_invalid_host_fails_with_a_clear_message(site: Site) -> None:
    with pytest.raises(FetchFailed, match="its host is not a valid host name or IP address"):
        get(site, "/to_bad_host")


# --- network failures ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/slow_headers", "/slow_body"])
def test_read_timeout_is_transient(site: Site, path: str) -> None:
    started = time.monotonic()
    with pytest.raises(TransientFetchFailed, match="Timed out"):
        get(site, path, read_timeout=0.2)
    assert time.monotonic() - started < 2


def test_connection_reset_is_transient(site: Site) -> None:
    with pytest.raises(TransientFetchFailed):
        get(site, "/reset")


def test_connection_refused_is_permanent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more.
    with pytest.raises(FetchFailed, match="refused") as raised:
        fetch_page(f"http://127.0.0.1:{port}/", allow_private=True)
    assert not raised.value.transient


def test_unresolvable_host() -> None:
    with pytest.raises(FetchFailed, match=r"Could not resolve host nonexistent\.invalid") as raised:
        fetch_page("http://nonexistent.invalid/")
    assert not raised.value.transient


@pytest.mark.parametrize(
    "url", ["ftp://example.com/file", "file:///etc/passwd", "example.com/page", "gopher://x"]
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(FetchFailed, match="http and https") as raised:
        fetch_page(url)
    assert not isinstance(raised.value, FetchBlocked)


# --- cancellation -------------------------------------------------------------------------


def test_should_stop_is_checked_between_chunks(site: Site, bytes_read: list[int]) -> None:
    calls: list[int] = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= 3  # before the request, after chunk 1, after chunk 2

    with pytest.raises(Cancelled):
        get(site, "/huge", should_stop=should_stop)
    assert len(bytes_read) == 2


def test_should_stop_before_any_request(site: Site) -> None:
    with pytest.raises(Cancelled):
        get(site, "/page", should_stop=lambda: True)
    assert site.state.hosts == []


# --- the overall deadline -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/drip_body", "/drip_headers", "/slow_hop"])
def test_a_fetch_past_its_deadline_fails(site: Site, path: str) -> None:
    # Every wait for data is far shorter than the read timeout: only the deadline can end it
    # (the body alone takes len(PAGE_HTML) * DRIP_S = 3.6 s; the hops never end).
    started = time.monotonic()
    with pytest.raises(FetchFailed, match=r"^The website took longer than 0\.5 s to send ") \
            as raised:
        get(site, path, read_timeout=2.0, deadline_s=0.5, max_redirects=100)
    assert 0.4 <= time.monotonic() - started < 1.5
    assert not isinstance(raised.value, TransientFetchFailed)  # not retried: it would drip again


def test_a_tls_fetch_past_its_deadline_fails(
    tls_site: Site, public_site_test: list[str], trust_test_certificate: None
) -> None:
    started = time.monotonic()
    with pytest.raises(FetchFailed, match=r"took longer than 0\.5 s"):
        fetch_page(tls_site.url("/drip_body", host="site.test"), read_timeout=2.0,
                   deadline_s=0.5)
    assert time.monotonic() - started < 1.5


def test_a_page_within_its_deadline_is_read_whole(site: Site) -> None:
    assert get(site, "/drip_headers", deadline_s=10.0).html == "hi"


# --- SSRF guard ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_loopback_is_blocked_by_default(site: Site, host: str) -> None:
    with pytest.raises(FetchBlocked):
        fetch_page(site.url("/page", host=host))
    assert site.state.hosts == []  # refused before connecting


# inet_aton's other spellings of 127.0.0.1 are no host name nor dotted quad: refused as
# invalid hosts (FETCH_FAILED) before any lookup, even where private addresses are allowed.
@pytest.mark.parametrize("host", ["2130706433", "127.1", "0x7f.1", "017700000001"])
def test_numeric_hosts_that_are_not_dotted_quads_are_refused(site: Site, host: str) -> None:
    with pytest.raises(FetchFailed, match="not a valid host name or IP address"):
        fetch_page(site.url("/page", host=host), allow_private=True)
    assert site.state.hosts == []  # refused before connecting


def test_loopback_is_allowed_with_allow_private(site: Site) -> None:
    assert fetch_page(site.url("/page"), allow_private=True).html == PAGE_HTML


def test_redirect_to_loopback_is_checked_again(site: Site, public_site_test: list[str]) -> None:
    with pytest.raises(FetchBlocked):
        fetch_page(site.url("/to_loopback", host="site.test"))
    assert [path for path, _host in site.state.hosts] == ["/to_loopback"]

    page = fetch_page(site.url("/to_loopback", host="site.test"), allow_private=True)
    assert page.url == site.url("/page")
    assert page.html == PAGE_HTML


def test_connects_to_the_checked_address_with_the_original_host_header(
    site: Site, public_site_test: list[str]
) -> None:
    page = fetch_page(site.url("/echo_host", host="site.test"))
    assert page.html == f"site.test:{site.port}"
    assert page.url == site.url("/echo_host", host="site.test")
    assert "site.test" not in public_site_test  # nothing looked the name up again


def test_https_connects_to_the_checked_address_but_verifies_the_hostname(
    tls_site: Site, public_site_test: list[str], trust_test_certificate: None
) -> None:
    tls_site.state.sni.clear()
    page = fetch_page(tls_site.url("/echo_host", host="site.test"))
    assert page.html == f"site.test:{tls_site.port}"
    assert tls_site.state.sni == ["site.test"]


def test_https_rejects_a_certificate_for_another_host(
    tls_site: Site, public_site_test: list[str], trust_test_certificate: None
) -> None:
    with pytest.raises(FetchFailed, match="TLS") as raised:
        fetch_page(tls_site.url("/page", host="wrong.test"))
    assert not raised.value.transient


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("172.31.255.255", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata service
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("fec0::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("2002:7f00:1::", False),  # 6to4 wrapping of 127.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 wrapping of 10.0.0.1
        ("::127.0.0.1", False),  # deprecated IPv4-compatible form
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("172.32.0.1", True),
        ("2001:4860:4860::8888", True),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8, as DNS64 answers on IPv6-only hosts
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


def _fake_getaddrinfo(
    monkeypatch: pytest.MonkeyPatch, addresses: list[str]
) -> None:
    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_check_host_allowed_returns_public_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_getaddrinfo(monkeypatch, ["93.184.216.34", "2606:2800:220:1::", "93.184.216.34"])
    assert check_host_allowed("example.com", False) == ["93.184.216.34", "2606:2800:220:1::"]


def test_check_host_allowed_blocks_if_any_address_is_private(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_getaddrinfo(monkeypatch, ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(FetchBlocked) as raised:
        check_host_allowed("example.com", False)
    assert "10.0.0.5" not in str(raised.value)  # internal addresses are not disclosed
    assert check_host_allowed("example.com", True) == ["93.184.216.34", "10.0.0.5"]


def test_check_host_allowed_reports_unresolvable_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(FetchFailed, match=r"Could not resolve host example\.com") as raised:
        check_host_allowed("example.com", True)
    assert not isinstance(raised.value, FetchBlocked)
