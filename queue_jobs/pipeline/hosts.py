"""What counts as a valid host of a URL to fetch: a DNS host name or an IP address. The one
rule shared by the fetcher (queue_jobs.pipeline.fetch) and the API's validation (through
queue_jobs.services.urls), so that a URL the API takes is one the fetcher will try.

A host name is labels of letters, digits, hyphens and underscores (no hyphen at either
end), at most 63 characters each and 253 in all, with an optional final dot; a
non-ASCII name counts by its IDNA form, as requests sends it. Underscores break RFC 1123
but occur in real sites' names, which browsers reach. An IP address is a dotted-quad IPv4
address or an IPv6 address (without a zone id).
"""

from __future__ import annotations

import ipaddress
import re

import idna

MAX_NAME_LENGTH = 253
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)
# A last label of digits (or 0x and hex digits) makes the name an IPv4 address in a form
# inet_aton takes ("127.1", "0x7f.1", "2130706433"): neither a name nor a dotted quad.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)


def is_valid_host(host: str | None) -> bool:
    """`host` as urlsplit(url).hostname gives it (IPv6 without its brackets)."""
    if not host:
        return False
    if ":" in host:  # only an IPv6 address has colons
        try:
            return ipaddress.IPv6Address(host).scope_id is None
        except ValueError:
            return False
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        pass
    try:
        name = host if host.isascii() else idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return False
    name = name.removesuffix(".")
    labels = name.split(".")
    return (0 < len(name) <= MAX_NAME_LENGTH
            and all(_LABEL.fullmatch(label) for label in labels)
            and not _NUMERIC_LABEL.fullmatch(labels[-1]))
