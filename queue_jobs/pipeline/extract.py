"""Turn a page's HTML into `PageFacts`: the first pipeline step, pure and deterministic.

Same HTML and URL in, same facts out (document order everywhere, ties broken
alphabetically), because the result is checkpointed and compared across retries.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from urllib.parse import urldefrag, urljoin, urlsplit

from bs4 import BeautifulSoup, Tag

from queue_jobs.pipeline.pages import CallToAction, PageFacts

MAX_TEXT_CHARS = 20_000
MAX_HEADINGS = 30
MAX_LINKS = 100
MAX_CTAS = 10
MAX_CTA_TEXT = 80
MAX_KEYWORDS = 10
MAX_META_KEYWORDS = 20
# Longer link texts are prose that happens to mention "subscribe", not a call to action.
MAX_CTA_PHRASE_WORDS = 8

_INVISIBLE_TAGS = ("script", "style", "noscript", "template", "svg", "head")
_WHITESPACE = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]{4,}")
_CAMEL_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")
# The marker must start a word, so "btn-primary", "hero__cta" and "ctaLink" count while
# "spectacular" or "dictation" do not.
_BUTTON_STYLE = re.compile(r"(?<![a-z])(?:btn|button|cta)")
_CTA_PHRASE = re.compile(
    r"\b(?:"
    r"(?:book|schedule|request|get) (?:a |your |a free )?(?:demo|call|consultation)"
    r"|get started|start now|sign ?up|register now|join (?:now|free|today)"
    r"|start (?:a |your )?(?:free )?trial"
    r"|try\b.*\bfree"
    r"|contact (?:us|sales)|get in touch|talk to sales"
    r"|(?:request|get) (?:a )?(?:free )?quote"
    r"|(?:buy|shop|order) now|add to cart|subscribe"
    r")\b"
)
_LINK_SCHEMES = ("http", "https")
_CTA_SCHEMES = ("http", "https", "mailto", "tel")

# Words of four letters or more only, so short ones ("the", "and") need no listing.
_STOP_WORDS = frozenset(
    {
        "about", "above", "after", "again", "against", "also", "among", "another", "because",
        "been", "before", "being", "below", "between", "both", "came", "come", "could", "does",
        "doing", "done", "down", "during", "each", "even", "every", "from", "further", "have",
        "having", "here", "hers", "herself", "himself", "into", "itself", "just", "like", "made",
        "make", "many", "more", "most", "much", "must", "myself", "never", "only", "other", "ours",
        "ourselves", "over", "same", "shall", "should", "since", "some", "such", "than", "that",
        "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those",
        "through", "under", "until", "upon", "very", "want", "were", "what", "when", "where",
        "which", "while", "will", "with", "within", "without", "would", "your", "yours", "yourself",
        "yourselves",
    }
)


def extract_page(html: str, url: str) -> PageFacts:
    """Extract the facts the LLM steps need from a page fetched from `url`."""
    soup = BeautifulSoup(html, "lxml")
    host = (urlsplit(url).hostname or "").lower()
    meta = _MetaTags(soup)
    base = _base_url(soup, url)
    root_lang = soup.html.get("lang") if soup.html is not None else None
    # Head data is read above; the rest only looks at what a visitor could see.
    for tag in soup.find_all(_INVISIBLE_TAGS):
        tag.decompose()
    text = _collapse(soup.get_text(" "))[:MAX_TEXT_CHARS].rstrip()
    return PageFacts(
        url=url,
        title=meta.title or _first_h1(soup) or host,
        description=meta.first("description", "og:description"),
        site_name=meta.first("og:site_name") or host.removeprefix("www."),
        headings=_headings(soup),
        text=text,
        keywords=meta.keywords() or _frequent_words(text),
        language=_collapse(root_lang) if isinstance(root_lang, str) else "",
        links=_links(soup, base),
        ctas=_ctas(soup, base),
    )


def _collapse(value: str) -> str:
    return _WHITESPACE.sub(" ", value).strip()


def _text_of(tag: Tag) -> str:
    return _collapse(tag.get_text(" "))


def _attr(tag: Tag, name: str) -> str:
    """An attribute as one string; bs4 gives multi-valued ones (class, rel) as lists."""
    value = tag.get(name)
    if value is None:
        return ""
    return value if isinstance(value, str) else " ".join(value)


def _dedup(items: Iterable[str], limit: int) -> list[str]:
    result: list[str] = []
    for item in items:
        if item and item not in result:
            result.append(item)
            if len(result) == limit:
                break
    return result


class _MetaTags:
    """The page's <title> and <meta> values; the first occurrence of each name wins."""

    def __init__(self, soup: BeautifulSoup) -> None:
        self._values: dict[str, str] = {}
        for tag in soup.find_all("meta"):
            content = _collapse(_attr(tag, "content"))
            # Open Graph tags belong in property= but are often written as name=.
            for key in (_attr(tag, "name"), _attr(tag, "property")):
                if key and content:
                    self._values.setdefault(key.strip().lower(), content)
        # An inline <svg> may carry its own <title>, which names the icon, not the page.
        titles = (t for t in soup.find_all("title") if t.find_parent("svg") is None)
        self.title = next((text for t in titles if (text := _text_of(t))), "")
        self.title = self.title or self.first("og:title")

    def first(self, *names: str) -> str:
        return next((self._values[n] for n in names if n in self._values), "")

    def keywords(self) -> list[str]:
        words = (_collapse(word) for word in self.first("keywords").split(","))
        return _dedup(words, MAX_META_KEYWORDS)


def _base_url(soup: BeautifulSoup, url: str) -> str:
    """The URL relative links resolve against: <base href> if it is a usable one."""
    base = soup.find("base", href=True)
    if base is None:
        return url
    resolved = _absolute(url, _attr(base, "href"), _LINK_SCHEMES)
    return resolved or url


def _absolute(base: str, href: str, schemes: tuple[str, ...]) -> str | None:
    """`href` resolved against `base`, or None if empty, malformed or of another scheme."""
    href = href.strip()
    if not href:
        return None
    try:
        resolved = urljoin(base, href)
        scheme = urlsplit(resolved).scheme.lower()
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    # urlsplit strips tabs/newlines like browsers do, so "java\tscript:" is caught here too.
    return resolved if scheme in schemes else None


def _first_h1(soup: BeautifulSoup) -> str:
    return next((text for h1 in soup.find_all("h1") if (text := _text_of(h1))), "")


def _headings(soup: BeautifulSoup) -> list[str]:
    return _dedup((_text_of(tag) for tag in soup.find_all(["h1", "h2", "h3"])), MAX_HEADINGS)


def _links(soup: BeautifulSoup, base: str) -> list[str]:
    def hrefs() -> Iterator[str]:
        for anchor in soup.find_all("a", href=True):
            resolved = _absolute(base, _attr(anchor, "href"), _LINK_SCHEMES)
            if resolved is not None:
                # "#section" links are the page itself, not another link.
                yield urldefrag(resolved).url

    return _dedup(hrefs(), MAX_LINKS)


def _frequent_words(text: str) -> list[str]:
    counts = Counter(
        word for word in (w.lower() for w in _WORD.findall(text)) if word not in _STOP_WORDS
    )
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [word for word, _count in ranked[:MAX_KEYWORDS]]


# --- calls to action ---------------------------------------------------------------------


def _ctas(soup: BeautifulSoup, base: str) -> list[CallToAction]:
    found: list[CallToAction] = []
    seen: set[tuple[str, str]] = set()
    for tag in soup.find_all(["a", "button", "input"]):
        cta = _cta_for(tag, soup, base)
        if cta is None or (cta.text, cta.href) in seen:
            continue
        seen.add((cta.text, cta.href))
        found.append(cta)
        if len(found) == MAX_CTAS:
            break
    return found


def _cta_for(tag: Tag, soup: BeautifulSoup, base: str) -> CallToAction | None:
    if tag.name == "a":
        return _anchor_cta(tag, base)
    if tag.name == "button":
        if tag.find_parent("a") is not None:
            return None  # the enclosing link stands for it (see _is_button_styled)
        if _attr(tag, "type").lower() == "reset":
            return None
        return _button_cta(_text_of(tag) or _attr(tag, "aria-label"), tag, soup, base)
    if _attr(tag, "type").strip().lower() in ("submit", "button"):
        return _button_cta(_attr(tag, "value") or _attr(tag, "aria-label"), tag, soup, base)
    return None


def _cta_text(text: str) -> str:
    return _collapse(text)[:MAX_CTA_TEXT].rstrip()


def _button_cta(text: str, tag: Tag, soup: BeautifulSoup, base: str) -> CallToAction | None:
    text = _cta_text(text)
    if not text:
        return None
    return CallToAction(text=text, href=_form_action(tag, soup, base), type="button")


def _form_action(tag: Tag, soup: BeautifulSoup, base: str) -> str:
    """Where submitting this button goes: its formaction, else its form's action, else ""."""
    own = _absolute(base, _attr(tag, "formaction"), _LINK_SCHEMES)
    if own is not None:
        return own
    form_id = _attr(tag, "form").strip()
    form = soup.find("form", id=form_id) if form_id else tag.find_parent("form")
    if not isinstance(form, Tag):
        return ""
    return _absolute(base, _attr(form, "action"), _LINK_SCHEMES) or ""


def _anchor_cta(anchor: Tag, base: str) -> CallToAction | None:
    text = _cta_text(_text_of(anchor) or _attr(anchor, "aria-label"))
    if not text:
        return None
    raw_href = _attr(anchor, "href")
    href = _absolute(base, raw_href, _CTA_SCHEMES)
    if raw_href.strip() and href is None:
        return None  # javascript:, data: and the like
    if _is_button_styled(anchor):
        return CallToAction(text=text, href=href or "", type="button")
    if href is not None and _is_cta_phrase(text):
        return CallToAction(text=text, href=href, type="link")
    return None


def _is_button_styled(anchor: Tag) -> bool:
    markers = f"{_attr(anchor, 'class')} {_attr(anchor, 'role')}"
    split = _CAMEL_BOUNDARY.sub(r"\1 \2", markers).lower()
    return bool(_BUTTON_STYLE.search(split)) or anchor.find("button") is not None


def _is_cta_phrase(text: str) -> bool:
    lowered = text.lower()
    return len(lowered.split()) <= MAX_CTA_PHRASE_WORDS and bool(_CTA_PHRASE.search(lowered))
