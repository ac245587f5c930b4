"""A provider that needs no network: every answer is derived from the page by simple rules.

It keeps the whole pipeline usable without an API key (development, CI, demos) and is
deterministic, so the same page always yields the same result. The output is plausible
rather than clever: industry from a keyword table, texts from templates filled with the
page's own words, and a generated abstract PNG instead of a real illustration.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

from PIL import Image, ImageDraw, ImageFont

from queue_jobs.pipeline.llm import usage
from queue_jobs.pipeline.llm.base import Analysis, Audience, BlogPost, GeneratedImage, PostBrief
from queue_jobs.pipeline.llm.offline_post import write_offline_post
from queue_jobs.pipeline.llm.wording import (
    STOPWORDS,
    capitalize,
    dedupe,
    frequent_words,
    join_words,
    lower_first,
    name_from_host,
    truncate,
    words_of,
)
from queue_jobs.pipeline.pages import PageFacts

DESCRIPTION_CHARS = 300
MAX_KEYWORDS = 10
MAX_AUDIENCES = 5
IMAGE_SIDE = 512
TEXT_CAP_PER_KEYWORD = 5  # so one word repeated all over the body cannot decide the industry
MIN_INDUSTRY_SCORE = 3

_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")
# "Acme | Home", "Acme - Invoicing", with en/em dashes, colons, middle dots, bullets, guillemets.
_TITLE_SEPARATORS_RE = re.compile(r"\s+[|\-\u2013\u2014:\u00b7\u2022\u00bb]+\s+")
_FOR_AUDIENCE_RE = re.compile(
    r"\bfor\s+((?:the\s+|your\s+|our\s+)?[^\W\d_][\w&' -]{2,40})", re.IGNORECASE
)

_GENERIC_TITLE_PARTS = frozenset({"home", "homepage", "home page", "welcome", "index", "start"})
_NON_AUDIENCE_WORDS = frozenset(
    {"everyone", "everybody", "life", "sale", "less", "details", "information", "info",
     "example", "instance", "years", "good", "ever", "yourself", "me", "sure", "real"}
)


@dataclass(frozen=True)
class _AudienceTemplate:
    name: str
    description: str  # may use {business} and {topic}
    pain_points: tuple[str, ...]  # each uses {topic} or {topic2}, so it names page words


@dataclass(frozen=True)
class _IndustryRule:
    business_type: str
    industry: str
    keywords: tuple[str, ...]
    target: str  # a noun phrase, completed with "interested in <topics>."
    audiences: tuple[_AudienceTemplate, ...]


def _aud(name: str, description: str, *pain_points: str) -> _AudienceTemplate:
    return _AudienceTemplate(name, description, pain_points)


_RULES: tuple[_IndustryRule, ...] = (
    _IndustryRule(
        "Software / SaaS", "Software",
        ("software", "saas", "platform", "app", "api", "cloud", "dashboard", "integrations",
         "integration", "automation", "automate", "workflow", "workflows", "developers",
         "analytics", "free trial", "sign up", "open source"),
        "Companies and teams",
        (
            _aud("Operations managers",
                 "Operations managers at growing companies who want {topic} to run "
                 "without manual busywork.",
                 "Repetitive manual work around {topic}",
                 "Data about {topic2} scattered across too many tools",
                 "Little visibility into what actually works in {topic}"),
            _aud("Technical decision makers",
                 "CTOs and engineering leads who evaluate {topic} tools for reliability, "
                 "security and ease of integration.",
                 "Integrations for {topic} that break or need custom code",
                 "Security and compliance reviews that slow down adopting {topic2} tools"),
            _aud("Startup founders",
                 "Founders and small teams who need {topic} without hiring specialists.",
                 "No time to build {topic} in-house",
                 "Expensive {topic2} tools sized for large enterprises"),
        ),
    ),
    _IndustryRule(
        "E-commerce / Retail", "Retail",
        ("shop", "store", "cart", "checkout", "shipping", "free shipping", "products",
         "collection", "sale", "buy", "order", "returns", "add to cart", "shop now"),
        "Online shoppers",
        (
            _aud("Value-conscious shoppers",
                 "Shoppers who compare prices and wait for the right deal on {topic}.",
                 "Unclear whether {topic} is worth the price",
                 "Shipping costs that appear only at checkout for {topic2}"),
            _aud("Gift buyers",
                 "People looking for a thoughtful gift who are drawn to {topic}.",
                 "Not knowing which {topic} the recipient will like",
                 "Worry that {topic2} will not arrive in time"),
            _aud("Loyal repeat customers",
                 "Existing customers of {business} who regularly buy {topic}.",
                 "Missing out on new {topic} releases",
                 "Reordering {topic2} takes too many steps"),
        ),
    ),
    _IndustryRule(
        "Restaurant / Food service", "Food & Beverage",
        ("restaurant", "menu", "dining", "reservations", "reservation", "book a table",
         "chef", "cuisine", "brunch", "dinner", "lunch", "cafe", "café", "bakery",
         "catering", "takeaway", "food"),
        "Local diners and food lovers",
        (
            _aud("Local diners",
                 "People living or working nearby who want a reliable place for {topic}.",
                 "Hard to find good {topic} close by",
                 "Long waits or no free table for {topic2}"),
            _aud("Event and party planners",
                 "People organising birthdays, team events or celebrations around {topic}.",
                 "Finding a venue that handles groups and {topic}",
                 "Uncertain costs for {topic2} per guest"),
            _aud("Food enthusiasts",
                 "Curious eaters who look for authentic {topic} and new flavours.",
                 "Menus full of the same predictable {topic}",
                 "Little information about where the {topic2} comes from"),
        ),
    ),
    _IndustryRule(
        "Healthcare provider", "Healthcare",
        ("clinic", "medical", "doctor", "doctors", "patients", "patient", "health",
         "healthcare", "dental", "dentist", "therapy", "appointment", "treatment",
         "physician", "hospital", "care"),
        "Patients and families",
        (
            _aud("New patients",
                 "People looking for a trustworthy provider for {topic}.",
                 "Long waiting times for {topic}",
                 "Not knowing what {topic2} will cost"),
            _aud("Families with children",
                 "Parents who need dependable {topic} for the whole family.",
                 "Finding appointments for {topic} that fit school and work",
                 "Explaining {topic2} to children without stress"),
            _aud("Employers and HR teams",
                 "Companies that want {topic} for their employees' wellbeing.",
                 "Sick days caused by untreated {topic} issues",
                 "Complicated billing for {topic2} services"),
        ),
    ),
    _IndustryRule(
        "Law firm", "Legal services",
        ("law", "lawyer", "lawyers", "attorney", "attorneys", "legal", "litigation",
         "counsel", "injury", "estate planning", "contracts", "court", "solicitor"),
        "Individuals and businesses",
        (
            _aud("Small business owners",
                 "Owners who need practical legal help with {topic} without a big legal "
                 "department.",
                 "Contracts about {topic} they do not fully understand",
                 "Fear of expensive disputes over {topic2}"),
            _aud("Private clients",
                 "Individuals dealing with a personal legal matter involving {topic}.",
                 "Not knowing their rights regarding {topic}",
                 "Unpredictable legal fees for {topic2}"),
            _aud("In-house legal teams",
                 "Corporate counsel who need outside expertise in {topic}.",
                 "Too little capacity for specialised {topic} work",
                 "Slow turnaround from outside firms on {topic2}"),
        ),
    ),
    _IndustryRule(
        "Financial services", "Finance",
        ("finance", "financial", "bank", "banking", "loan", "loans", "mortgage", "invest",
         "investment", "investing", "insurance", "accounting", "tax", "taxes", "wealth",
         "payments", "credit"),
        "Individuals and companies",
        (
            _aud("Small business owners",
                 "Owners who want clear numbers and dependable {topic}.",
                 "Cash flow surprises caused by {topic}",
                 "Hours lost on paperwork for {topic2}"),
            _aud("Young professionals",
                 "People early in their careers who want to get {topic} right.",
                 "Confusing jargon around {topic}",
                 "Not knowing where to start with {topic2}"),
            _aud("Finance managers",
                 "CFOs and finance teams responsible for {topic} at growing companies.",
                 "Manual reconciliation of {topic} data",
                 "Compliance risk around {topic2}"),
        ),
    ),
    _IndustryRule(
        "Education / Training", "Education",
        ("course", "courses", "learn", "learning", "students", "student", "training",
         "school", "university", "academy", "curriculum", "tutoring", "classes", "teachers",
         "certification", "lessons"),
        "Learners and organisations",
        (
            _aud("Career changers",
                 "Adults who want to move into a new role by learning {topic}.",
                 "Not knowing which {topic} skills employers want",
                 "Little time to study {topic2} next to a job"),
            _aud("Students",
                 "Students who want structured, practical help with {topic}.",
                 "Dry theory about {topic} without practice",
                 "Falling behind in {topic2}"),
            _aud("Learning and development managers",
                 "Managers who organise training in {topic} for their teams.",
                 "Hard to measure what {topic} training achieves",
                 "Generic {topic2} courses that do not fit the team"),
        ),
    ),
    _IndustryRule(
        "Marketing agency", "Marketing & Advertising",
        ("agency", "marketing", "seo", "branding", "brand", "advertising", "campaigns",
         "campaign", "social media", "creative", "digital marketing", "content", "design",
         "clients", "web design"),
        "Growing companies",
        (
            _aud("Marketing managers",
                 "In-house marketers who need extra hands and expertise for {topic}.",
                 "Too few people to execute {topic} well",
                 "Difficulty proving the return on {topic2}"),
            _aud("Small business owners",
                 "Owners who know they need {topic} but lack the time to do it themselves.",
                 "Not knowing which {topic} channels are worth it",
                 "Bad experiences with {topic2} agencies that over-promise"),
            _aud("Funded startups",
                 "Startups that must grow fast and want {topic} that scales.",
                 "Burning budget on {topic} without traction",
                 "No clear positioning for {topic2}"),
        ),
    ),
    _IndustryRule(
        "Real estate agency", "Real Estate",
        ("real estate", "property", "properties", "homes for sale", "realtor", "listings",
         "listing", "rent", "rental", "apartments", "apartment", "buy a home", "sell your home",
         "estate agent"),
        "Property buyers, sellers and renters",
        (
            _aud("First-time home buyers",
                 "People buying their first home who want guidance on {topic}.",
                 "Not knowing what {topic} really costs",
                 "Competition for good {topic2}"),
            _aud("Property sellers",
                 "Owners who want to sell quickly and at a fair price, with help on {topic}.",
                 "Uncertainty about the right price for {topic}",
                 "Slow sales and too many viewings for {topic2}"),
            _aud("Property investors",
                 "Investors looking for reliable returns from {topic}.",
                 "Finding {topic} with good yields",
                 "Managing tenants and upkeep of {topic2}"),
        ),
    ),
    _IndustryRule(
        "Travel / Hospitality", "Travel & Tourism",
        ("travel", "hotel", "hotels", "booking", "book now", "tours", "tour", "vacation",
         "holiday", "holidays", "flights", "resort", "destinations", "destination", "trip",
         "trips", "rooms"),
        "Travellers",
        (
            _aud("Leisure travellers",
                 "Couples and friends planning a trip that includes {topic}.",
                 "Too many options for {topic} to compare",
                 "Hidden fees when booking {topic2}"),
            _aud("Families on holiday",
                 "Families who want {topic} that works for children and adults.",
                 "Finding {topic} that suits the whole family",
                 "Stressful logistics around {topic2}"),
            _aud("Business travellers",
                 "Professionals who need efficient, dependable {topic}.",
                 "Inflexible bookings for {topic}",
                 "Wasted time during {topic2}"),
        ),
    ),
    _IndustryRule(
        "Home services", "Construction & Home Services",
        ("plumbing", "plumber", "roofing", "renovation", "renovations", "contractor",
         "contractors", "hvac", "electrician", "repairs", "repair", "construction",
         "remodeling", "landscaping", "cleaning"),
        "Homeowners and property managers",
        (
            _aud("Homeowners",
                 "Homeowners who need {topic} done properly the first time.",
                 "Unreliable tradespeople for {topic}",
                 "Quotes for {topic2} that keep growing"),
            _aud("Property managers",
                 "Managers of rental buildings who need fast, dependable {topic}.",
                 "Tenant complaints while {topic} waits",
                 "Coordinating several contractors for {topic2}"),
            _aud("Small commercial owners",
                 "Shop and office owners who need {topic} with minimal disruption.",
                 "Downtime during {topic}",
                 "Unclear timelines for {topic2}"),
        ),
    ),
    _IndustryRule(
        "Fitness / Wellness", "Health & Fitness",
        ("gym", "fitness", "workout", "workouts", "yoga", "personal training", "pilates",
         "wellness", "nutrition", "coaching", "membership", "spa"),
        "Health-conscious people",
        (
            _aud("Busy professionals",
                 "People with full calendars who want efficient {topic}.",
                 "No time for {topic} during the week",
                 "Losing motivation for {topic2}"),
            _aud("Beginners",
                 "People new to {topic} who want a friendly start.",
                 "Feeling intimidated by {topic}",
                 "Not knowing which {topic2} program fits"),
            _aud("Committed athletes",
                 "Experienced people who want to take their {topic} further.",
                 "Plateaus in {topic}",
                 "Generic {topic2} plans that ignore their level"),
        ),
    ),
)

_FALLBACK_RULE = _IndustryRule(
    "Business", "General", (),
    "Customers",
    (
        _aud("Small and mid-sized businesses",
             "Companies that need dependable help with {topic}.",
             "Too little time to handle {topic} themselves",
             "Hard to compare providers of {topic2}"),
        _aud("Individual customers",
             "Private customers looking for {topic} they can trust.",
             "Unclear what {topic} includes",
             "Worry about the quality of {topic2}"),
        _aud("Procurement managers",
             "Purchasing managers who source {topic} for their organisation.",
             "Inconsistent pricing for {topic}",
             "Slow responses from {topic2} suppliers"),
    ),
)

_HEADING_AUDIENCE_PAINS = (
    "Finding {topic} that fits the way {audience} work",
    "Limited time to compare {topic2} options",
)


class OfflineProvider:
    name: str = "offline"
    model: str = "offline-heuristics-v1"

    def __init__(self) -> None:
        # generate_pitches only receives the analysis, but the pitches should name the page's
        # call to action; remember it per analysis (bounded) so the common in-process run can.
        self._ctas: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def analyze_business(self, page: PageFacts) -> Analysis:
        usage.record(self.model)  # a stand-in call: counted, costs no tokens
        rule = _classify(page)
        topics = _topics(page)
        analysis: Analysis = {
            "businessName": _business_name(page),
            "businessType": rule.business_type,
            "industry": rule.industry,
            "description": _description(page, rule),
            "targetAudience": f"{rule.target} interested in {join_words(topics[:2])}.",
            "brandVoice": _brand_voice(page),
            "keywords": _keywords(page, rule),
        }
        self._remember_cta(analysis, page)
        return analysis

    def generate_audiences(self, page: PageFacts, analysis: Analysis) -> list[Audience]:
        usage.record(self.model)
        rule = _rule_for(analysis.get("industry")) or _classify(page)
        business = str(analysis.get("businessName") or _business_name(page))
        topics = _topics(page)
        audiences = [
            _from_template(template, index, business, topics)
            for index, template in enumerate(rule.audiences)
        ]
        for index, name in enumerate(_heading_audiences(page), start=len(audiences)):
            if len(audiences) >= MAX_AUDIENCES:
                break
            if name.lower() not in {a["name"].lower() for a in audiences}:
                audiences.append(_heading_audience(name, index, topics))
        self._remember_cta(analysis, page)
        return audiences

    def generate_pitches(self, analysis: Analysis, audiences: list[Audience]) -> list[str]:
        usage.record(self.model)
        business = str(analysis.get("businessName") or "We")
        cta = self._recall_cta(analysis)
        keywords = [str(k) for k in analysis.get("keywords") or [] if str(k).strip()]
        return [
            _pitch(business, audience, keywords[i % len(keywords)] if keywords else "", cta)
            for i, audience in enumerate(audiences)
        ]

    def write_blog_post(self, brief: PostBrief) -> BlogPost:
        usage.record(self.model)
        return write_offline_post(brief)

    def generate_image(self, prompt: str) -> GeneratedImage:
        usage.record(self.model)
        return GeneratedImage(_draw_image(prompt), "image/png")

    def _remember_cta(self, analysis: Analysis, page: PageFacts) -> None:
        cta = _first_cta(page)
        if not cta:
            return
        with self._lock:
            self._ctas[_analysis_key(analysis)] = cta
            while len(self._ctas) > 256:
                self._ctas.popitem(last=False)

    def _recall_cta(self, analysis: Analysis) -> str:
        with self._lock:
            return self._ctas.get(_analysis_key(analysis), "")


# --- analysis --------------------------------------------------------------------------


def _normalized(text: str) -> str:
    # Padded with spaces so " keyword " matches whole words and multi-word phrases alike.
    return f" {' '.join(words_of(text))} "


def _classify(page: PageFacts) -> _IndustryRule:
    fields = (
        (_normalized(page.title), 3),
        (_normalized(page.description), 2),
        (_normalized(" . ".join(page.headings)), 2),
        (_normalized(page.text), 1),
    )
    best, best_score = _FALLBACK_RULE, MIN_INDUSTRY_SCORE - 1
    for rule in _RULES:
        score = 0
        for keyword in rule.keywords:
            needle = f" {keyword} "
            for text, weight in fields:
                score += weight * min(text.count(needle), TEXT_CAP_PER_KEYWORD)
        if score > best_score:  # strictly greater: ties go to the earlier, more common rule
            best, best_score = rule, score
    return best


def _rule_for(industry: object) -> _IndustryRule | None:
    for rule in _RULES:
        if rule.industry == industry:
            return rule
    return _FALLBACK_RULE if industry == _FALLBACK_RULE.industry else None


def _business_name(page: PageFacts) -> str:
    site = page.site_name.strip()
    if site and not _looks_like_host(site):
        return _strip_title_suffix(site)
    for part in _TITLE_SEPARATORS_RE.split(page.title.strip()):
        if part.strip() and part.strip().lower() not in _GENERIC_TITLE_PARTS:
            return part.strip()
    host = site or urlsplit(page.url).hostname or ""
    return name_from_host(host) if host else "Unknown business"


def _strip_title_suffix(text: str) -> str:
    return _TITLE_SEPARATORS_RE.split(text, maxsplit=1)[0].strip() or text


def _looks_like_host(text: str) -> bool:
    return " " not in text and "." in text


def _description(page: PageFacts, rule: _IndustryRule) -> str:
    source = " ".join(page.description.split())
    if not source:
        source = " ".join(_SENTENCE_END_RE.split(" ".join(page.text.split()))[:3])
    if not source:
        kind = "" if rule is _FALLBACK_RULE else f", a {rule.industry} business"
        source = f"The website of {_business_name(page)}{kind}."
    return truncate(source, DESCRIPTION_CHARS)


def _brand_voice(page: PageFacts) -> str:
    text = " ".join(page.text.split()) or " ".join([page.description, *page.headings])
    sentences = [s for s in _SENTENCE_END_RE.split(text) if words_of(s)]
    words = words_of(text)
    if not sentences or not words:
        return "Neutral and informative"
    exclaim_ratio = text.count("!") / len(sentences)
    you_ratio = sum(w in {"you", "your", "you're", "yours"} for w in words) / len(words)
    average_length = len(words) / len(sentences)
    if exclaim_ratio > 0.15:
        tone = "Energetic"
    elif you_ratio > 0.02:
        tone = "Friendly"
    else:
        tone = "Professional"
    if average_length < 12:
        style = "direct"
    elif average_length < 20:
        style = "clear"
    else:
        style = "detailed"
    return f"{tone} and {style}"


def _keywords(page: PageFacts, rule: _IndustryRule) -> list[str]:
    found = dedupe(" ".join(k.split()) for k in page.keywords)
    if not found:
        found = frequent_words(" . ".join(page.headings)) or frequent_words(page.title)
    if not found:
        found = frequent_words(page.text[:2000])
    if not found:
        found = [_business_name(page) if rule is _FALLBACK_RULE else rule.industry.lower()]
    return found[:MAX_KEYWORDS]


def _topics(page: PageFacts) -> list[str]:
    """Page words to fill the templates with: the page's keywords, else its frequent words."""
    topics = dedupe(" ".join(k.split()) for k in page.keywords if len(k.split()) <= 3)
    if len(topics) < 2:
        # Heading and title words are less reliable than keywords, so only used to top up.
        topics = dedupe(
            [
                *topics,
                *frequent_words(" . ".join(page.headings)),
                *frequent_words(page.title),
                *frequent_words(page.text[:2000]),
            ]
        )
    return topics or ["your needs", "everyday work"]


# --- audiences and pitches -------------------------------------------------------------


def _from_template(
    template: _AudienceTemplate, index: int, business: str, topics: list[str]
) -> Audience:
    topic, topic2 = _topic_pair(topics, index)
    values = {"business": business, "topic": topic, "topic2": topic2}
    return {
        "name": template.name,
        "description": template.description.format(**values),
        "painPoints": [capitalize(p.format(**values)) for p in template.pain_points],
    }


def _heading_audience(name: str, index: int, topics: list[str]) -> Audience:
    topic, topic2 = _topic_pair(topics, index)
    values = {"topic": topic, "topic2": topic2, "audience": name.lower()}
    return {
        "name": name,
        "description": f"{name} looking for {topic}, a group the website addresses directly.",
        "painPoints": [capitalize(p.format(**values)) for p in _HEADING_AUDIENCE_PAINS],
    }


def _topic_pair(topics: list[str], index: int) -> tuple[str, str]:
    # Rotate through the page's topics so the audiences do not all repeat the same word.
    return topics[index % len(topics)], topics[(index + 1) % len(topics)]


def _heading_audiences(page: PageFacts) -> list[str]:
    """Audiences the page names itself, from headings such as "Built for agencies"."""
    names: list[str] = []
    for heading in page.headings:
        match = _FOR_AUDIENCE_RE.search(heading)
        if not match:
            continue
        words = _audience_words(match.group(1).split())
        if words:
            names.append(capitalize(" ".join(words)))
    return dedupe(names)


def _audience_words(words: list[str]) -> list[str]:
    # "for marketing teams that ship fast" -> "marketing teams": stop at the first filler word.
    if words and words[0].lower() in {"the", "your", "our"}:
        words = words[1:]
    kept: list[str] = []
    for word in words[:4]:
        word = word.strip(" -&'")
        if not word or word.lower() in STOPWORDS or word.lower() in _NON_AUDIENCE_WORDS:
            break
        kept.append(word)
    return kept


def _pitch(business: str, audience: Audience, keyword: str, cta: str) -> str:
    name = str(audience.get("name") or "Your team")
    pains = [str(p) for p in audience.get("painPoints") or [] if str(p).strip()]
    pain = lower_first(pains[0]) if pains else "the daily hassle"
    focus = f" with {keyword}" if keyword else ""
    closing = f"Next step: “{cta}”." if cta else f"Get in touch with {business} to learn more."
    return (
        f"{name}: {pain} should not hold you back. "
        f"{business} helps {name.lower()}{focus}, so you can focus on what matters. {closing}"
    )


def _first_cta(page: PageFacts) -> str:
    for cta in page.ctas:
        text = " ".join(cta.text.split())
        if text:
            return text
    return ""


def _analysis_key(analysis: Analysis) -> str:
    return json.dumps(analysis, sort_keys=True, ensure_ascii=False, default=str)


# --- image -----------------------------------------------------------------------------


def _draw_image(prompt: str) -> bytes:
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()  # stable, unlike hash()
    background = _colour(digest[0:3], lightness=0.55)
    image = Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), background)
    draw = ImageDraw.Draw(image)
    _draw_shapes(draw, digest)
    _draw_caption(draw, prompt)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _colour(seed: bytes, *, lightness: float) -> tuple[int, int, int]:
    # Blend towards grey so colours are never garish and the caption stays readable.
    grey = 255 * lightness
    r, g, b = (int(0.6 * channel + 0.4 * grey) for channel in seed)
    return r, g, b


def _draw_shapes(draw: ImageDraw.ImageDraw, digest: bytes) -> None:
    for index in range(5):
        seed = digest[3 + index * 5 : 8 + index * 5]
        # Keep shapes inside the canvas and mostly above the caption box at the bottom.
        x = 80 + seed[0] * (IMAGE_SIDE - 160) // 255
        y = 70 + seed[1] * (IMAGE_SIDE - 260) // 255
        size = 50 + seed[2] % 110
        fill = _colour(digest[(index * 3) % 29 : (index * 3) % 29 + 3], lightness=0.8)
        box = (x - size // 2, y - size // 2, x + size // 2, y + size // 2)
        shape = seed[3] % 3
        if shape == 0:
            draw.ellipse(box, fill=fill)
        elif shape == 1:
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(x, box[1]), (box[2], box[3]), (box[0], box[3])], fill=fill)


def _draw_caption(draw: ImageDraw.ImageDraw, prompt: str) -> None:
    # The default font may be a bitmap one without non-Latin glyphs, so fold to ASCII.
    text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode("ascii")
    words = text.split()[:12]
    lines = _wrap(words, width=30)[:4]
    if not lines:
        return
    font = _font()
    top = IMAGE_SIDE - 40 - 30 * len(lines)
    draw.rectangle((20, top - 12, IMAGE_SIDE - 20, IMAGE_SIDE - 28), fill=(255, 255, 255))
    for row, line in enumerate(lines):
        draw.text((36, top + row * 30), line, fill=(30, 30, 30), font=font)


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=22)  # a scalable font when FreeType is available
    except (ImportError, OSError):
        return ImageFont.load_default()


def _wrap(words: list[str], *, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if len(candidate) > width and current:
            lines.append(current)
            current = word[:width]
        else:
            current = candidate[: width * 2]
    if current:
        lines.append(current)
    return lines
