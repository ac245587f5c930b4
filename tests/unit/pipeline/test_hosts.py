"""The one rule for a URL's host (host name or IP address) that the fetcher and the API's
validation share."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from queue_jobs.pipeline.hosts import is_valid_host


@pytest.mark.parametrize("host", [
    "example.com", "example.com.", "a", "localhost", "xn--bcher-kva.de", "bücher.de",
    "my_site.example.org", "a-b.c-d.e1", "1.example", "1a", "93.184.216.34",
    "0.0.0.0", "::1", "2001:db8::1", "::ffff:127.0.0.1",
    "a" * 63 + ".com", ".".join(["a" * 61] * 4),  # 247 characters
])
def test_valid_hosts(host: str) -> None:
    assert is_valid_host(host)


@pytest.mark.parametrize("host", [
    None, "", "not a url at all", "exa mple.com", "-example.com", "example-.com",
    "a..b", ".example.com", "example.com..", "exa%20mple.com", "exa!mple.com",
    "a" * 64 + ".com", ".".join(["a" * 63] * 4),  # 255 characters
    "127.1", "2130706433", "0x7f.1", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "example.123",
    "fe80::1%eth0", "1::2::3", "\u200b.com", "b\u00fccher\u3002\u3002de",
])
def test_invalid_hosts(host: str | None) -> None:
    assert not is_valid_host(host)


def test_hosts_as_urlsplit_reads_them() -> None:
    assert is_valid_host(urlsplit("http://user:pw@[2001:DB8::1]:8080/").hostname)
    assert is_valid_host(urlsplit("HTTPS://EXAMPLE.COM/").hostname)
    assert not is_valid_host(urlsplit("https://not a url at all").hostname)
