"""The offline provider: complete, schema-valid and deterministic answers without a network."""

from __future__ import annotations

import copy
import io
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from queue_jobs.pipeline.failures import LLMError, UnusableAnswer
from queue_jobs.pipeline.llm import schemas
from queue_jobs.pipeline.llm.factory import build_provider
from queue_jobs.pipeline.llm.offline import OfflineProvider
from queue_jobs.pipeline.llm.openai_provider import OpenAIProvider
from queue_jobs.pipeline.pages import CallToAction, PageFacts

SAAS_PAGE = PageFacts(
    url="https://acme.io/",
    title="Home | Acme - Invoicing software for freelancers",
    description="Acme is the invoicing platform that gets freelancers paid faster.",
    site_name="acme.io",
    headings=[
        "Invoicing made simple",
        "Built for freelancers and small agencies",
        "Integrations with your bank",
        "Pricing for every team",
    ],
    text=(
        "Send invoices in seconds! Acme automates your invoicing workflow. Connect your bank, "
        "track payments and get paid faster. Our platform integrates with the tools you "
        "already use. Start your free trial today."
    ),
    keywords=["invoicing", "payments", "freelancers", "software"],
    language="en",
    ctas=[
        CallToAction(text="", href="https://acme.io/#", type="link"),
        CallToAction(text="Start free trial", href="https://acme.io/signup", type="button"),
    ],
)

RESTAURANT_PAGE = PageFacts(
    url="https://trattoria.example/",
    title="Trattoria Bella \u2013 Italian restaurant in Lyon",  # en dash separator
    description="",
    site_name="Trattoria Bella",
    headings=["Our menu", "Reserve a table", "Catering for events"],
    text=(
        "Welcome to Trattoria Bella. Our chef cooks seasonal Italian cuisine every day. "
        "The menu changes weekly and our dinner service starts at 7 pm. Book a table online."
    ),
)

EMPTY_PAGE = PageFacts(url="https://www.blank-site.co.uk/", title="", description="", site_name="")

PAGES = [SAAS_PAGE, RESTAURANT_PAGE, EMPTY_PAGE]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the offline provider must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield


def run_all(page: PageFacts) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    provider = OfflineProvider()
    analysis = provider.analyze_business(page)
    audiences = provider.generate_audiences(page, analysis)
    pitches = provider.generate_pitches(analysis, audiences)
    return analysis, audiences, pitches


@pytest.mark.parametrize("page", PAGES, ids=["saas", "restaurant", "empty"])
def test_every_answer_is_complete_and_matches_the_schemas(page: PageFacts) -> None:
    analysis, audiences, pitches = run_all(page)

    assert schemas.validate("business_analysis", analysis) is analysis
    schemas.validate("audiences", {"audiences": audiences})
    # The per-call schema the OpenAI provider sends: exactly one pitch per audience.
    schemas.validate("pitches", {"pitches": pitches}, count=len(audiences))
    assert all(isinstance(v, str) and v.strip() for k, v in analysis.items() if k != "keywords")
    assert 1 <= len(analysis["keywords"]) <= 10
    assert 2 <= len(audiences) <= 5
    assert len({a["name"].lower() for a in audiences}) == len(audiences)
    assert all(2 <= len(a["painPoints"]) <= 3 for a in audiences)
    assert len(pitches) == len(audiences)


def test_analysis_is_derived_from_the_page() -> None:
    analysis, audiences, pitches = run_all(SAAS_PAGE)

    assert analysis["businessName"] == "Acme"
    assert analysis["businessType"] == "Software / SaaS"
    assert analysis["industry"] == "Software"
    assert analysis["description"] == SAAS_PAGE.description
    assert analysis["keywords"] == ["invoicing", "payments", "freelancers", "software"]
    assert analysis["brandVoice"]
    # Pain points name the page's own words; pitches name business, audience, pain and CTA.
    for audience in audiences:
        text = " ".join(audience["painPoints"]).lower()
        assert any(word in text for word in SAAS_PAGE.keywords)
    for audience, pitch in zip(audiences, pitches, strict=True):
        assert "Acme" in pitch
        assert audience["name"] in pitch
        assert audience["painPoints"][0][1:] in pitch
        assert "Start free trial" in pitch
    # "Built for freelancers ..." names an audience of its own.
    assert "Freelancers" in [a["name"] for a in audiences]


def test_restaurant_and_fallbacks() -> None:
    analysis, _, _ = run_all(RESTAURANT_PAGE)
    assert analysis["businessName"] == "Trattoria Bella"
    assert analysis["industry"] == "Food & Beverage"
    assert analysis["description"].startswith("Welcome to Trattoria Bella.")
    assert len(analysis["description"]) <= 300

    analysis, _, pitches = run_all(EMPTY_PAGE)
    assert analysis["businessName"] == "Blank Site"
    assert (analysis["businessType"], analysis["industry"]) == ("Business", "General")
    assert all("Blank Site" in pitch for pitch in pitches)


def test_long_text_description_is_capped() -> None:
    page = PageFacts(
        url="https://x.example/", title="X", description="", site_name="X",
        text="word " * 400,
    )
    description = OfflineProvider().analyze_business(page)["description"]
    assert 0 < len(description) <= 300


def test_deterministic() -> None:
    for page in PAGES:
        first = run_all(page)
        second = run_all(copy.deepcopy(page))
        assert first == second
    provider = OfflineProvider()
    assert provider.generate_image("a bakery").data == OfflineProvider().generate_image(
        "a bakery"
    ).data
    assert provider.generate_image("a bakery").data != provider.generate_image("a gym").data


def test_image_is_a_valid_png() -> None:
    image = OfflineProvider().generate_image("Hero image for Trattoria Bella, café in Lyon ✨")

    assert image.content_type == "image/png"
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert decoded.format == "PNG"
        assert decoded.size == (512, 512)
        decoded.verify()


def test_provider_identity_and_factory() -> None:
    offline = build_provider(
        provider="offline", api_key=None, base_url=None, model="m", image_model="i", timeout_s=5
    )
    assert isinstance(offline, OfflineProvider)
    assert (offline.name, offline.model) == ("offline", "offline-heuristics-v1")

    online = build_provider(
        provider="openai", api_key="sk-test", base_url="http://127.0.0.1:9/v1",
        model="gpt-test", image_model="gpt-image-test", timeout_s=5,
    )
    assert isinstance(online, OpenAIProvider)
    assert (online.name, online.model) == ("openai", "gpt-test")

    with pytest.raises(ValueError, match="unknown LLM provider"):
        build_provider(
            provider="other", api_key=None, base_url=None, model="m", image_model="i", timeout_s=5
        )
    keyless = build_provider(
        provider="openai", api_key=None, base_url="http://127.0.0.1:9/v1",
        model="local", image_model="i", timeout_s=5,
    )
    assert isinstance(keyless, OpenAIProvider)
    with pytest.raises(ValueError, match="API key"):
        build_provider(
            provider="openai", api_key=None, base_url=None, model="m", image_model="i", timeout_s=5
        )


VALID_ANALYSIS: dict[str, Any] = {
    "businessName": "Acme",
    "businessType": "SaaS",
    "industry": "Software",
    "description": "Invoicing for freelancers.",
    "targetAudience": "Freelancers.",
    "brandVoice": "Friendly",
    "keywords": ["invoicing"],
}


def _with(**changes: object) -> dict[str, Any]:
    value = copy.deepcopy(VALID_ANALYSIS)
    value.update(changes)
    return value


def _without(key: str) -> dict[str, Any]:
    value = copy.deepcopy(VALID_ANALYSIS)
    del value[key]
    return value


AUDIENCE = {"name": "Freelancers", "description": "Solo workers.", "painPoints": ["Late pay"]}


@pytest.mark.parametrize(
    ("schema_name", "value", "reason"),
    [
        ("business_analysis", [], "must be an object"),
        ("business_analysis", _without("industry"), "missing 'industry'"),
        ("business_analysis", _with(extra="x"), "unexpected keys extra"),
        ("business_analysis", _with(businessName=3), "$.businessName must be a string"),
        ("business_analysis", _with(description="  "), "$.description must not be empty"),
        ("business_analysis", _with(keywords=[]), "at least 1 items"),
        ("business_analysis", _with(keywords=["k"] * 11), "at most 10 items"),
        ("business_analysis", _with(keywords=["ok", None]), "$.keywords[1] must be a string"),
        ("audiences", {"audiences": [AUDIENCE]}, "at least 2 items"),
        ("audiences", {"audiences": [AUDIENCE] * 6}, "at most 5 items"),
        ("audiences", {"audiences": [AUDIENCE, {**AUDIENCE, "painPoints": []}]}, "[1].painPoints"),
        ("audiences", {"audiences": [AUDIENCE, {**AUDIENCE, "name": ""}]}, "[1].name"),
        ("pitches", {"pitches": "one"}, "$.pitches must be an array"),
        ("pitches", {"pitches": ["ok", 1]}, "$.pitches[1] must be a string"),
        ("pitches", {}, "missing 'pitches'"),
    ],
)
def test_validate_rejects_broken_values(schema_name: str, value: object, reason: str) -> None:
    with pytest.raises(LLMError) as caught:
        schemas.validate(schema_name, value)
    message = str(caught.value)
    assert message.startswith(f"The language model answered invalid JSON for {schema_name}: ")
    assert reason in message
    assert isinstance(caught.value, UnusableAnswer)
    # A list of the wrong length is a count problem, the rest a schema problem.
    assert caught.value.reason == ("count" if " items, got " in message else "schema")


def test_a_call_fixes_the_pitch_count() -> None:
    schema = schemas.for_call("pitches", 2)
    assert schema["properties"]["pitches"] == {"type": "array", "items": {"type": "string"},
                                               "minItems": 2, "maxItems": 2}
    assert "minItems" not in schemas.SCHEMAS["pitches"]["properties"]["pitches"]  # untouched
    assert schemas.validate("pitches", {"pitches": ["a", "b"]}, count=2)
    for wrong in (["a"], ["a", "b", "c"]):
        with pytest.raises(UnusableAnswer, match=f"exactly 2 items, got {len(wrong)}") as caught:
            schemas.validate("pitches", {"pitches": wrong}, count=2)
        assert caught.value.reason == "count"
    with pytest.raises(ValueError):
        schemas.for_call("business_analysis", 2)  # no list of its is counted per call


def test_validate_accepts_good_values_and_knows_only_its_schemas() -> None:
    assert schemas.validate("business_analysis", VALID_ANALYSIS) == VALID_ANALYSIS
    schemas.validate("audiences", {"audiences": [AUDIENCE, AUDIENCE]})
    schemas.validate("pitches", {"pitches": []})
    with pytest.raises(ValueError):
        schemas.validate("nope", {})


def test_schemas_are_strict() -> None:
    def objects(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if schema["type"] == "object":
            yield schema
            for sub in schema["properties"].values():
                yield from objects(sub)
        elif schema["type"] == "array":
            yield from objects(schema["items"])

    for name in ("business_analysis", "audiences", "pitches"):
        for obj in objects(schemas.SCHEMAS[name]):
            assert obj["additionalProperties"] is False
            assert sorted(obj["required"]) == sorted(obj["properties"])
