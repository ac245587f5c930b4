"""The offline blog-post writer: a complete, readable post from the brief alone, by templates.

The offline provider uses it when no language model is configured. The post is assembled from
the brief's topic and the organization's stored website analysis (the request's businessInfo
wins where both say something), so it names the business, speaks to its audience and uses its
keywords. It needs no network and is deterministic: the same brief always gives the same post.
Templates cannot know the subject, so the advice is deliberately general; the post is a
sensible placeholder for development and demos, not a substitute for a real writer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from queue_jobs.pipeline.llm.base import BlogPost, PostBrief
from queue_jobs.pipeline.llm.wording import (
    capitalize,
    dedupe,
    frequent_words,
    join_words,
    lower_first,
    name_from_host,
    truncate,
)

EXCERPT_CHARS = 200
META_TITLE_CHARS = 60
META_DESCRIPTION_CHARS = 155
IMAGE_ALT_CHARS = 125
MAX_TAGS = 6
MAX_SEO_KEYWORDS = 8
FOCUS_MAX_WORDS = 4  # longer keywords read badly in headings
TAG_MAX_WORDS = 3

_SHORT_RE = re.compile(r"\b(short|shorter|brief|concise|compact)\b", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")
# The offline analysis says "General" when it could not tell; that adds nothing to a sentence.
_NO_INDUSTRY = frozenset({"", "general", "unknown", "other"})
_SECTOR_WORDS = ("industry", "sector", "market", "services")
_NO_FOCUS = "the details"  # stands in for a keyword when neither brief nor analysis has one
_NO_NAME = "our company"  # only when the brief names no business and has no website either


@dataclass(frozen=True)
class _Facts:
    """What the templates need, resolved once from the brief."""

    title: str
    business: str
    audience: str  # a noun phrase that fits mid-sentence, without a final stop
    topic_description: str  # whole sentences, "" when the brief has none
    about: str  # what the business does, whole sentences, "" when unknown
    industry: str  # "the software industry", "" when unknown
    business_type: str  # as given ("Software / SaaS"), so only the image prompt uses it
    keywords: list[str]
    focus: str  # the keyword the post centres on
    others: list[str]  # up to three further short keywords
    url: str
    short: bool


def write_offline_post(brief: PostBrief) -> BlogPost:
    """A schema-valid BlogPost for the brief.

    `additional_instructions` is free text that templates cannot follow, so it is ignored,
    with one exception: when it contains the word "short", "shorter", "brief", "concise" or
    "compact", the post gets the shorter variant (two sections and three takeaways, about
    200 words, instead of three sections and up to five takeaways, about 450 words).
    """
    facts = _facts(brief)
    excerpt = _excerpt(facts)
    tags = _tags(facts)
    return {
        "title": facts.title,
        "content": _content(facts),
        "excerpt": excerpt,
        "tags": tags,
        "seo": {
            "metaTitle": _meta_title(facts),
            "metaDescription": truncate(excerpt, META_DESCRIPTION_CHARS),
            "keywords": dedupe([*facts.keywords, *tags])[:MAX_SEO_KEYWORDS],
        },
        "imagePrompt": _image_prompt(facts),
        "imageAlt": _image_alt(facts),
    }


def _facts(brief: PostBrief) -> _Facts:
    info, analysis = brief.business_info or {}, brief.analysis or {}
    business = (
        _text(info.get("businessName"))
        or _text(brief.organization_name)
        or _text(analysis.get("businessName"))
        or _name_from_url(brief.website_url)
    )
    topic_keywords = _texts(brief.topic_keywords)
    keywords = dedupe(
        [*_texts(info.get("keywords")), *topic_keywords, *_texts(analysis.get("keywords"))]
    )
    # The post is about the topic, so its own keywords come first when choosing the focus.
    short = [k for k in dedupe([*topic_keywords, *keywords]) if len(k.split()) <= FOCUS_MAX_WORDS]
    audience = _text(info.get("targetAudience")) or _text(analysis.get("targetAudience"))
    return _Facts(
        title=_text(brief.topic_title) or f"News from {business}",
        business=business,
        audience=lower_first(audience.rstrip(" .!")) or "people like you",
        topic_description=_sentences(_text(brief.topic_description)),
        about=_sentences(_text(info.get("description")) or _text(analysis.get("description"))),
        industry=_industry(_text(info.get("industry")) or _text(analysis.get("industry"))),
        business_type=_text(info.get("businessType")) or _text(analysis.get("businessType")),
        keywords=keywords,
        focus=short[0] if short else _NO_FOCUS,
        others=short[1:4],
        url=_text(brief.website_url),
        short=bool(_SHORT_RE.search(brief.additional_instructions or "")),
    )


def _text(value: Any) -> str:
    # Request JSON may hold nulls or numbers where strings belong; they say nothing useful.
    return " ".join(value.split()) if isinstance(value, str) else ""


def _texts(values: Any) -> list[str]:
    return [_text(v) for v in values] if isinstance(values, (list, tuple)) else []


def _sentences(text: str) -> str:
    return text if not text or text[-1] in ".!?…" else f"{text}."


def _name_from_url(url: str) -> str:
    host = urlsplit(_text(url)).hostname or ""
    return name_from_host(host) if host else _NO_NAME


def _industry(industry: str) -> str:
    if industry.lower() in _NO_INDUSTRY:
        return ""
    # Lower ordinary words only, so "SaaS" and "B2B" keep their spelling.
    words = " ".join(w.lower() if w[1:].islower() else w for w in industry.split())
    return f"the {words}" if words.lower().endswith(_SECTOR_WORDS) else f"the {words} industry"


# --- content ---------------------------------------------------------------------------


def _content(f: _Facts) -> str:
    sections = [_intro(f), _why(f), *([] if f.short else [_pitfalls(f)])]
    sections += [_practice(f), _takeaways(f), _closing(f)]
    return "\n\n".join(sections) + "\n"


def _intro(f: _Facts) -> str:
    parts = [f"{capitalize(f.business)} put together this guide, *{f.title}*, for {f.audience}."]
    if f.topic_description:
        parts.append(f.topic_description)
    if f.industry and not f.short:
        parts.append(f"In {f.industry}, expectations keep rising, and the way businesses "
                     f"handle {f.focus} is one of the first places where that shows.")
    if f.short:
        parts.append("Below we look at what is at stake and how to get started.")
    else:
        parts.append("Below we look at what is at stake, which pitfalls to avoid and how to "
                     "get started, one step at a time.")
    return " ".join(parts)


def _why(f: _Facts) -> str:
    # Keywords may be plural ("late payments"), so no sentence makes one its subject.
    text = (f"## The case for taking {f.focus} seriously\n\nFew people put {f.focus} at the top "
            f"of their to-do list, yet the way you handle {f.focus} quietly shapes the results "
            "you see week after week. When that goes well, nobody notices. When it does not, it "
            "costs time, money and the trust of the people who depend on you.")
    if f.short:
        return text
    text += " That is reason enough to look at it deliberately instead of leaving it to chance."
    if f.others:
        return (f"{text}\n\nIt also ties in with {join_words(f.others)}. Improving one of them "
                "usually makes the others easier, so it pays to treat them as parts of one "
                "picture rather than as separate chores.")
    return (f"{text}\n\nThe good news is that small, steady improvements add up quickly, and "
            "you do not need a big budget to begin. What you need is a clear idea of where "
            "you stand today.")


def _pitfalls(f: _Facts) -> str:
    fit = ""
    if f.industry:
        fit = f": what works for one business in {f.industry} may not suit the next"
    return ("## Common pitfalls to avoid\n\n"
            f"The most common mistake is to treat {f.focus} as a one-off project. Needs change, "
            "tools change, and what worked last year may hold you back today. Another is "
            f"copying what others do without checking whether it fits your own situation{fit}. "
            "A third is measuring nothing at all, which makes it impossible to tell whether a "
            "change helped.\n\nEach of these is easy to fix. Most of the time, all it takes is "
            "a clear goal, a simple routine and someone who keeps an eye on the results.")


def _practice(f: _Facts) -> str:
    subject = "it" if f.focus == _NO_FOCUS else f.focus
    text = (f"## Putting {subject} into practice\n\nStart small. Pick one part of how you "
            f"handle {f.focus} that does not work well today and write down what better would "
            "look like a month from now. Then change one thing at a time, so you can see which "
            "step made the difference.")
    if f.short:
        return text
    widen = f" to {join_words(f.others[:2])}" if f.others else ""
    return (f"{text}\n\nOnce the basics are in place, widen the view{widen}. A short checklist, "
            "reviewed every few weeks, keeps everything on track without turning it into a "
            "full-time job. If an idea does not work, drop it and try the next one; progress "
            "matters more than perfection.\n\nFinally, involve the people it affects. Ask what "
            "they need, listen to the answers and let their feedback decide what you improve "
            "next.")


def _takeaways(f: _Facts) -> str:
    points = [f"Give {f.focus} steady attention, not a one-off fix."]
    if not f.short:
        points.append("Adapt good ideas to your own situation instead of copying them blindly.")
    points.append("Start small, change one thing at a time and measure the result.")
    if f.others and not f.short:
        points.append(f"Look at {join_words(f.others[:2])} together with {f.focus}.")
    points.append(f"You do not have to do it alone: {f.business} is happy to help.")
    return "## Key takeaways\n\n" + "\n".join(f"- {point}" for point in points)


def _closing(f: _Facts) -> str:
    parts = [f.about] if f.about and not f.short else []
    parts.append(f"At {f.business}, we help {f.audience} with {f.focus} every day, and we know "
                 "the questions that come up along the way.")
    if f.url:
        name = re.sub(r"[\[\]]", "", f.business)  # a bracket would end the link text early
        link = f.url.replace(" ", "%20").replace(")", "%29")
        parts.append(f"Ready to take the next step? [Visit {name}]({link}) to learn more and "
                     "get in touch.")
    else:
        parts.append(f"Ready to take the next step? Get in touch with {f.business} today.")
    return " ".join(parts)


# --- metadata --------------------------------------------------------------------------


def _excerpt(f: _Facts) -> str:
    if f.topic_description:
        text = " ".join(_SENTENCE_END_RE.split(f.topic_description)[:2])
    else:
        text = (f"A practical look at {f.focus} for {f.audience}: why it matters, what to "
                f"avoid and how to start. From the team at {f.business}.")
    return truncate(text, EXCERPT_CHARS)


def _tags(f: _Facts) -> list[str]:
    candidates = [k for k in f.keywords if len(k.split()) <= TAG_MAX_WORDS and len(k) <= 30]
    if f.industry:
        candidates.append(f.industry.removeprefix("the ").removesuffix(" industry"))
    candidates += frequent_words(f.title)
    tags = dedupe(c.lower() for c in candidates)[:MAX_TAGS]
    if len(tags) < 3 and f.business != _NO_NAME and len(f.business) <= 30:
        tags = dedupe([*tags, f.business.lower()])
    return tags or ["blog"]


def _meta_title(f: _Facts) -> str:
    with_name = f"{f.title} | {f.business}"
    if f.business != _NO_NAME and len(with_name) <= META_TITLE_CHARS:
        return with_name
    return _cut(f.title, META_TITLE_CHARS)


def _cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters on a word boundary, without an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]  # one more, so a space right after the limit counts as a boundary
    cut = head.rsplit(" ", 1)[0] if " " in head else text[:limit]
    return cut.rstrip(" ,;:-|\u2013\u2014") or text[:limit]


def _image_prompt(f: _Facts) -> str:
    kind = f" ({f.business_type})" if f.business_type else ""
    context = f"{kind} in {f.industry}" if f.industry else kind
    theme = f.title if f.focus == _NO_FOCUS else join_words([f.focus, *f.others[:2]])
    return (f'A clean, modern editorial header illustration for the blog post "{f.title}" by '
            f"{f.business}{context}. Theme: {theme}. Friendly, professional style with soft "
            "colours and simple shapes. No text.")


def _image_alt(f: _Facts) -> str:
    about = "" if f.focus == _NO_FOCUS else f" about {f.focus}"
    alt = f"Editorial illustration{about} for the article \u201c{f.title}\u201d"
    return alt if len(alt) <= IMAGE_ALT_CHARS else f"Editorial illustration{about}"
