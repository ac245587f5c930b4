"""Small word helpers shared by the offline provider's analysis and its blog-post writer."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

MAX_FREQUENT_WORDS = 10

_APOSTROPHES = "'\u2019"  # ASCII and typographic
_WORD_RE = re.compile(rf"[^\W\d_][\w{_APOSTROPHES}-]*", re.UNICODE)

# Words too common to say anything about a business (for keywords and audience names).
_STOPWORD_TEXT = """a about above after all also an and any are as at be because been before being
    best but by can could did do does each every few for from get had has have here how
    i if in into is it its just like more most my new no not now of on one only or our
    out over own same see should so some such than that the their them then there these
    they this those through to too under up us very was we were what when where which
    while who why will with would you your yours home welcome page learn read click
    contact menu login sign log back next help find start today free
    made make makes simple simply easy easily fast faster better great way ways built
    designed powerful modern everything anything need needs want work works first world
    leading trusted quick smart join discover explore less"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def words_of(text: str) -> list[str]:
    stripped = (w.strip(f"{_APOSTROPHES}-") for w in _WORD_RE.findall(text))
    return [w.lower() for w in stripped if w]


def frequent_words(text: str) -> list[str]:
    counts = Counter(w for w in words_of(text) if len(w) > 3 and w not in STOPWORDS)
    # most_common keeps first-seen order among equal counts, which keeps this deterministic.
    return [word for word, _ in counts.most_common(MAX_FREQUENT_WORDS)]


def dedupe(items: Iterable[str]) -> list[str]:
    """Non-blank items, first spelling wins among case-insensitive duplicates."""
    seen: set[str] = set()
    result: list[str] = []
    for item in items:
        text = item.strip()
        if text and text.lower() not in seen:
            seen.add(text.lower())
            result.append(text)
    return result


def join_words(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-") + "…"


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def lower_first(text: str) -> str:
    # Keep acronyms such as "SEO" intact: only lower the first letter of a normal word.
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


def name_from_host(host: str) -> str:
    labels = [label for label in host.lower().split(".") if label and label != "www"]
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in {"co", "com", "org", "net"}:
        labels = labels[:-2]  # example.co.uk -> example
    elif len(labels) >= 2:
        labels = labels[:-1]
    name = labels[-1] if labels else host
    return " ".join(part.capitalize() for part in re.split(r"[-_]+", name) if part) or host
