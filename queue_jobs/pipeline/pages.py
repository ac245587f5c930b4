"""What the pipeline knows about a fetched web page: plain data, JSON-friendly.

It is produced by `pipeline.extract.extract_page`, checkpointed as JSON after the first
step, and read by both LLM providers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CallToAction:
    text: str
    href: str  # absolute URL, or "" for a button without a link
    type: str  # "button" (a <button>/<input type=submit> or a button-styled link) or "link"


@dataclass(frozen=True)
class PageFacts:
    url: str  # final URL after redirects
    title: str
    description: str  # meta description / og:description, "" if none
    site_name: str  # og:site_name or derived from the host
    headings: list[str] = field(default_factory=list)  # h1..h3 texts in document order
    text: str = ""  # visible text, whitespace-collapsed, capped (see extract.MAX_TEXT_CHARS)
    keywords: list[str] = field(default_factory=list)  # meta keywords, else most frequent words
    language: str = ""  # <html lang>
    links: list[str] = field(default_factory=list)  # absolute http(s) hrefs, deduplicated, capped
    ctas: list[CallToAction] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageFacts:
        fields = dict(data)
        fields["ctas"] = [CallToAction(**cta) for cta in data.get("ctas", [])]
        return cls(**fields)
