"""The URLs the API takes for fetching: http or https, with a port that parses and a host
the fetcher accepts (its own rule, queue_jobs.pipeline.hosts)."""

from __future__ import annotations

from urllib.parse import urlsplit

from queue_jobs.pipeline.hosts import is_valid_host


def url_problem(url: str) -> str | None:
    """Why `url` cannot be fetched, in a sentence for people; None if it can be tried."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # e.g. "http://[::1/": urlsplit raises on a broken host
        return "Must be an http or https URL with a host."
    if scheme not in ("http", "https") or not host:
        return "Must be an http or https URL with a host."
    if not is_valid_host(host):
        return f"The host {host!r} is not a valid host name or IP address."
    try:
        parts.port  # noqa: B018 (reading the port is what raises)
    except ValueError:
        return "The port must be a number from 0 to 65535."
    return None
