"""A small local web site ("Acme Analytics") to fetch and analyse in tests.

Paths (GET and HEAD):

* ``/``                      the Acme Analytics home page (text/html; charset=utf-8)
* ``/demo``, ``/signup``     simple HTML pages
* ``/plain.txt``             text/plain
* ``/image.png``             a tiny PNG (image/png)
* ``/missing``               404 HTML page (so is any unknown path)
* ``/error``                 500 HTML page
* ``/huge``                  5 MiB text/html, Content-Length set, streamed in 64 KiB chunks
* ``/redirect/<n>``          302 to ``/redirect/<n-1>``; ``/redirect/1`` goes to ``/``
* ``/redirect-to?url=<u>``   302 to ``<u>`` (400 without ``url``)
* ``/slow``                  an HTML page, answered after the `set_slow` delay (default 0)
* ``/drip?every=<s>``        an HTML page (Content-Length set) sent one byte every `s`
                             seconds (default 1), until sent, reset or stopped

`hits` counts requests per path (query string ignored), counted on arrival. `set_slow`
delays any path; `stop` and `reset` interrupt delays (the delayed request is then dropped).

Run it in the foreground with ``python -m tests.fakes.website --port 8081``.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from tests.fakes.loopback import LoopbackService, TrackingHandler, TrackingServer
from tests.fakes.png import tiny_png

HTML = "text/html; charset=utf-8"
HUGE_SIZE = 5 * 1024 * 1024
HUGE_CHUNK = 64 * 1024

HOME_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Acme Analytics | Dashboards for Growing Teams</title>
  <meta name="description" content="Acme Analytics turns your sales and marketing data into \
clear dashboards and weekly insights for small and mid-sized businesses.">
  <meta name="keywords" content="analytics, dashboards, business intelligence, reporting, \
small business">
  <meta property="og:site_name" content="Acme Analytics">
  <meta property="og:title" content="Acme Analytics">
  <meta property="og:description" content="Dashboards and insights for growing teams.">
  <link rel="stylesheet" href="/static/site.css">
  <style>
    .hero { padding: 4rem 0; } /* STYLE_TEXT_MUST_NOT_BE_VISIBLE */
  </style>
  <script>
    window.dataLayer = []; var marker = "SCRIPT_TEXT_MUST_NOT_BE_VISIBLE";
  </script>
</head>
<body>
  <header>
    <nav class="main-nav">
      <a href="/">Home</a>
      <a href="/features">Features</a>
      <a href="/pricing">Pricing</a>
      <a href="/about">About us</a>
      <a href="/demo">Demo</a>
      <a href="#faq">FAQ</a>
    </nav>
  </header>
  <main>
    <section class="hero">
      <h1>Analytics that small businesses actually use</h1>
      <p>Acme Analytics connects to the tools you already use — your shop, your CRM and
         your ad accounts — and turns their data into dashboards anyone on your team can
         read.</p>
      <a class="btn btn-primary" href="/demo">Book a demo</a>
      <a href="/signup">Start free trial</a>
    </section>
    <section id="features">
      <h2>Everything you need to understand your numbers</h2>
      <h3>Live dashboards</h3>
      <p>See revenue, conversion rates and customer lifetime value update in real time,
         without writing a single spreadsheet formula.</p>
      <h3>Weekly insight reports</h3>
      <p>Every Monday morning you get a plain-English summary of what changed last week
         and which campaigns drove the most revenue.</p>
      <h3>Forecasting</h3>
      <p>Plan inventory and hiring with forecasts built from your own sales history.</p>
    </section>
    <section id="customers">
      <h2>Trusted by 2,000 growing teams</h2>
      <p>Retailers, agencies and SaaS start-ups use Acme Analytics to replace hours of
         manual reporting. Our customers save an average of six hours per week.</p>
    </section>
    <section id="faq">
      <h2>Questions? Talk to us</h2>
      <p>Our team answers within one business day.</p>
      <form action="/contact" method="post">
        <input type="email" name="email" placeholder="you@company.com">
        <button type="submit">Contact us</button>
      </form>
    </section>
  </main>
  <footer>
    <p>&copy; 2024 Acme Analytics Inc. All rights reserved.</p>
    <a href="https://www.linkedin.com/company/acme-analytics">LinkedIn</a>
    <a href="mailto:hello@acme-analytics.example">hello@acme-analytics.example</a>
    <a href="/pricing">Pricing</a>
  </footer>
  <script src="/static/app.js"></script>
</body>
</html>
"""

SIMPLE_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title} | Acme Analytics</title></head>
<body><h1>{title}</h1><p>{text}</p><a href="/">Back to home</a></body>
</html>
"""

PAGES: dict[str, tuple[str, str]] = {
    "/demo": ("Book a demo", "Pick a time and we will walk you through Acme Analytics."),
    "/signup": ("Start your free trial", "Create your account in under a minute."),
    "/slow": ("A slow page", "This page took its time to arrive."),
    "/drip": ("A dripping page", "This page arrived one byte at a time."),
}

PLAIN_TEXT = "Acme Analytics\nThis is a plain text file, not an HTML page.\n"


# --------------------------------------------------------------------------- helpers




def simple_page(title: str, text: str) -> str:
    return SIMPLE_PAGE.format(title=title, text=text)


def huge_chunks(size: int = HUGE_SIZE, chunk: int = HUGE_CHUNK) -> Iterator[bytes]:
    """`size` bytes of HTML, in pieces of `chunk` bytes."""
    head = b"<!DOCTYPE html><html lang='en'><head><title>Huge page</title></head><body>\n"
    tail = b"</body></html>\n"
    line = b"<p>Acme Analytics makes a very long page to test download size limits.</p>\n"
    filler_size = size - len(head) - len(tail)
    filler = line * (filler_size // len(line)) + b" " * (filler_size % len(line))
    data = memoryview(head + filler + tail)
    for start in range(0, size, chunk):
        yield bytes(data[start : start + chunk])


# ------------------------------------------------------------------------- responses


@dataclass
class _Response:
    status: int
    content_type: str = HTML
    body: bytes | Callable[[], Iterator[bytes]] = b""
    length: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def content_length(self) -> int:
        if isinstance(self.body, bytes):
            return len(self.body)
        return self.length or 0

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.body, bytes):
            yield self.body
        else:
            yield from self.body()


def _html(status: int, text: str) -> _Response:
    return _Response(status, HTML, text.encode("utf-8"))


def _redirect(location: str) -> _Response:
    page = simple_page("Moved", f"This page moved to {location}.")
    return _Response(302, HTML, page.encode(), headers={"Location": location})


def _drip(query: str, interrupt: threading.Event) -> _Response:
    try:
        every = float(parse_qs(query).get("every", ["1"])[0])
    except ValueError:
        return _html(400, simple_page("Bad request", "every must be a number of seconds."))
    page = simple_page(*PAGES["/drip"]).encode()

    def one_byte_at_a_time() -> Iterator[bytes]:
        for index in range(len(page)):
            if interrupt.wait(every):  # the handler hangs up (an OSError closes it)
                raise ConnectionAbortedError("the site was reset or stopped")
            yield page[index:index + 1]

    return _Response(200, HTML, one_byte_at_a_time, length=len(page))


def _not_found() -> _Response:
    return _html(404, simple_page("Page not found", "Sorry, there is nothing here."))


def _route(path: str, query: str) -> _Response:
    fixed = _FIXED_ROUTES.get(path)
    if fixed is not None:
        return fixed()
    if path in PAGES:
        return _html(200, simple_page(*PAGES[path]))
    if path.startswith("/redirect/"):
        return _redirect_chain(path.removeprefix("/redirect/"))
    if path == "/redirect-to":
        return _redirect_to(query)
    return _not_found()


def _redirect_chain(count: str) -> _Response:
    if not count.isdigit() or int(count) < 1:
        return _not_found()
    n = int(count)
    return _redirect("/" if n == 1 else f"/redirect/{n - 1}")


def _redirect_to(query: str) -> _Response:
    targets = parse_qs(query).get("url")
    if not targets:
        return _html(400, simple_page("Bad request", "The url parameter is missing."))
    return _redirect(targets[0])


_FIXED_ROUTES: dict[str, Callable[[], _Response]] = {
    "/": lambda: _html(200, HOME_PAGE),
    "/plain.txt": lambda: _Response(200, "text/plain; charset=utf-8", PLAIN_TEXT.encode()),
    "/image.png": lambda: _Response(200, "image/png", tiny_png(rgb=(0, 128, 255))),
    "/missing": _not_found,
    "/error": lambda: _html(500, simple_page("Server error", "Something went wrong.")),
    "/huge": lambda: _Response(200, HTML, huge_chunks, length=HUGE_SIZE),
}


# ------------------------------------------------------------------------- the server


class _Server(TrackingServer):
    def __init__(self, site: FakeWebsite, host: str, port: int) -> None:
        self.site = site
        super().__init__((host, port), _Handler)


class _Handler(TrackingHandler):
    server_version = "AcmeFake/1.0"
    server: _Server

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, with_body: bool) -> None:
        parts = urlsplit(self.path)
        response = self.server.site._respond(parts.path, parts.query)
        if response is None:  # stopped while delaying: drop the request
            self.close_connection = True
            return
        try:
            self._send(response, with_body)
        except OSError:
            self.close_connection = True

    def _send(self, response: _Response, with_body: bool) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(response.content_length()))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not with_body:
            return
        for chunk in response.chunks():
            self.wfile.write(chunk)


class FakeWebsite(LoopbackService):
    """The Acme Analytics site on 127.0.0.1 (random port unless `port` is given)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__(port)
        self._host = host
        self._lock = threading.Lock()
        self._hits: dict[str, int] = defaultdict(int)
        self._slow: dict[str, float] = {}

    def _make_server(self) -> _Server:
        return _Server(self, self._host, self._port)

    def _base_url_for(self, port: int) -> str:
        return f"http://{self._host}:{port}"

    def url(self, path: str) -> str:
        """Absolute URL of `path` on this site."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def hits(self, path: str) -> int:
        """Requests received for `path` (its query string, if any, is ignored)."""
        with self._lock:
            return self._hits.get(urlsplit(path).path, 0)

    def set_slow(self, path: str, seconds: float) -> None:
        """Answer `path` only after `seconds` (0 removes the delay)."""
        with self._lock:
            if seconds > 0:
                self._slow[path] = seconds
            else:
                self._slow.pop(path, None)

    def reset(self) -> None:
        """Forget hit counts and delays; requests still being delayed are dropped."""
        with self._lock:
            self._interrupt.set()
            self._interrupt = threading.Event()
            self._hits.clear()
            self._slow.clear()

    def _respond(self, path: str, query: str) -> _Response | None:
        with self._lock:
            self._hits[path] += 1
            delay = self._slow.get(path, 0.0)
            interrupt = self._interrupt
        if delay and interrupt.wait(delay):
            return None
        if path == "/drip":  # interrupted like a delay
            return _drip(query, interrupt)
        return _route(path, query)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the fake Acme Analytics web site.")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    with FakeWebsite(port=args.port, host=args.host) as site:
        print(f"Fake website on {site.base_url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
