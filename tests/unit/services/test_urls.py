"""The API's judgement of a URL to fetch: a sentence for people, or None."""

from __future__ import annotations

import pytest

from queue_jobs.services.urls import url_problem


@pytest.mark.parametrize("url", ["https://example.com/", "http://EXAMPLE.com:8080/a?b#c",
                                 "http://user:pw@[2001:db8::1]/", "https://bücher.example/",
                                 "http://93.184.216.34/", "http://example.com:/"])
def test_fetchable_urls(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(("url", "problem"), [
    ("ftp://example.com/", "Must be an http or https URL with a host."),
    ("https://", "Must be an http or https URL with a host."),
    ("http://[::1/", "Must be an http or https URL with a host."),
    ("https://not a url at all", "The host 'not a url at all' is not a valid host name or "
                                 "IP address."),
    ("http://127.1/", "The host '127.1' is not a valid host name or IP address."),
    ("http://example.com:99999/", "The port must be a number from 0 to 65535."),
    ("http://example.com:http/", "The port must be a number from 0 to 65535."),
])
def test_unfetchable_urls(url: str, problem: str) -> None:
    assert url_problem(url) == problem
