"""The offline blog-post writer: schema-valid, readable and deterministic posts from a brief."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest

from queue_jobs.pipeline.llm import schemas
from queue_jobs.pipeline.llm.base import BlogPost, PostBrief
from queue_jobs.pipeline.llm.offline import OfflineProvider
from queue_jobs.pipeline.llm.offline_post import write_offline_post

ANALYSIS = {
    "businessName": "Acme",
    "businessType": "Software / SaaS",
    "industry": "Software",
    "description": "Acme is the invoicing platform that gets freelancers paid faster.",
    "targetAudience": "Companies and teams interested in invoicing and payments.",
    "brandVoice": "Friendly and direct",
    "keywords": ["invoicing", "payments", "freelancers", "software"],
}

RICH = PostBrief(
    topic_title="How to Get Paid Faster: 7 Invoicing Habits for Freelancers",
    topic_description=(
        "Late payments hurt small businesses. Here is how to send invoices that get paid on time."
    ),
    topic_keywords=("late payments", "invoice reminders"),
    business_info={"targetAudience": "Freelance designers and developers"},
    organization_name="Acme Invoicing",
    website_url="https://acme.io/",
    analysis=ANALYSIS,
    additional_instructions="",
)

SPARSE = PostBrief(
    topic_title="Spring update",
    topic_description="",
    topic_keywords=(),
    business_info={},
    organization_name="Bakery Nord",
    website_url="https://bakery-nord.example/",
    analysis={
        "businessName": "",
        "businessType": "",
        "industry": "",
        "description": "",
        "targetAudience": "",
        "brandVoice": "",
        "keywords": [],
    },
    additional_instructions="",
)

EMPTY = PostBrief("Spring update", "", (), {}, "", "", {}, "")


def short(brief: PostBrief) -> PostBrief:
    return dataclasses.replace(brief, additional_instructions="Please keep it short.")


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def word_count(markdown: str) -> int:
    return len(re.findall(r"[^\W_]+(?:['-][^\W_]+)*", markdown))


def headings(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("## ")]


def intro(post: BlogPost) -> str:
    return str(post["content"]).split("\n\n", 1)[0]


BRIEFS = [RICH, SPARSE, EMPTY, short(RICH), short(SPARSE), short(EMPTY)]
IDS = ["rich", "sparse", "empty", "rich-short", "sparse-short", "empty-short"]


@pytest.mark.parametrize("brief", BRIEFS, ids=IDS)
def test_every_post_is_schema_valid(brief: PostBrief) -> None:
    post = write_offline_post(brief)

    assert schemas.validate("blog_post", post) is post
    assert 1 <= len(post["tags"]) <= 6
    assert all(tag == tag.lower() for tag in post["tags"])
    assert 1 <= len(post["seo"]["keywords"]) <= 8


@pytest.mark.parametrize("brief", BRIEFS, ids=IDS)
def test_no_placeholders_or_template_leftovers(brief: PostBrief) -> None:
    post = write_offline_post(brief)

    for text in strings(post):
        for bad in ("None", "null", "Fake", "{", "}"):
            assert bad not in text, (bad, text)
    for heading in headings(post["content"]):
        assert heading[3:].strip(), "empty heading"
    assert not post["content"].startswith("#"), "the title is a separate field, not an H1"


def test_rich_post_names_the_business_topic_keywords_and_links_the_website() -> None:
    post = write_offline_post(RICH)
    content = post["content"]

    assert post["title"] == RICH.topic_title
    assert "Acme Invoicing" in intro(post)  # organization_name wins over the analysis name
    assert RICH.topic_title in content
    assert RICH.topic_description in content
    assert "late payments" in content and "invoice reminders" in content
    assert "[Visit Acme Invoicing](https://acme.io/)" in content
    assert "software industry" in content  # from the analysis industry
    assert ANALYSIS["description"] in content
    assert "- " in content.split("## Key takeaways", 1)[1]


def test_rich_post_has_the_normal_length_and_structure() -> None:
    content = write_offline_post(RICH)["content"]

    assert 3 <= len(headings(content)) <= 5
    assert "## Key takeaways" in headings(content)
    assert 300 <= word_count(content) <= 700
    assert content.rstrip().endswith("get in touch.")  # the call to action closes the post


def test_sparse_post_is_still_readable() -> None:
    post = write_offline_post(SPARSE)
    content = post["content"]

    assert intro(post).startswith("Bakery Nord put together this guide, *Spring update*")
    assert "[Visit Bakery Nord](https://bakery-nord.example/)" in content
    assert len(headings(content)) >= 3
    assert word_count(content) >= 300
    assert len(post["tags"]) >= 3
    assert post["excerpt"].endswith(".")


def test_brief_without_any_name_or_url_falls_back_politely() -> None:
    post = write_offline_post(EMPTY)

    assert intro(post).startswith("Our company put together this guide")
    assert "](" not in post["content"]  # no link without a website
    assert post["seo"]["metaTitle"] == "Spring update"


def test_business_name_precedence() -> None:
    from_info = dataclasses.replace(RICH, business_info={"businessName": "Acme Ltd"})
    from_analysis = dataclasses.replace(RICH, organization_name="")

    assert "Acme Ltd put together" in intro(write_offline_post(from_info))
    assert intro(write_offline_post(from_analysis)).startswith("Acme put together")


def test_business_info_target_audience_overrides_the_analysis() -> None:
    overridden = write_offline_post(RICH)
    from_analysis = write_offline_post(dataclasses.replace(RICH, business_info={}))

    assert "for freelance designers and developers." in intro(overridden)
    assert "companies and teams" not in intro(overridden).lower()
    assert "for companies and teams interested in invoicing and payments." in intro(from_analysis)


def test_business_info_keywords_come_first_and_are_deduplicated() -> None:
    brief = dataclasses.replace(RICH, business_info={"keywords": ["Payments", "late payments"]})
    keywords = write_offline_post(brief)["seo"]["keywords"]

    assert keywords[:3] == ["Payments", "late payments", "invoice reminders"]
    assert [k.lower() for k in keywords].count("payments") == 1


def test_non_string_values_in_the_request_are_ignored() -> None:
    brief = dataclasses.replace(
        RICH,
        business_info={"businessName": None, "targetAudience": 42, "keywords": [None, "tax"]},
    )
    post = write_offline_post(brief)

    schemas.validate("blog_post", post)
    assert intro(post).startswith("Acme Invoicing put together")
    assert "tax" in post["seo"]["keywords"]


def test_length_limits_cut_on_word_boundaries() -> None:
    long_title = "An unusually long title about invoicing that keeps going past sixty characters"
    sentence = "Invoices that get paid on time make everybody happier, from freelancer to client."
    long_description = " ".join([sentence] * 8)
    post = write_offline_post(
        dataclasses.replace(RICH, topic_title=long_title, topic_description=long_description)
    )

    meta_title = post["seo"]["metaTitle"]
    assert len(meta_title) <= 60
    assert long_title.startswith(meta_title) and long_title[len(meta_title)] == " "
    assert len(post["excerpt"]) <= 200
    assert len(post["seo"]["metaDescription"]) <= 155
    assert post["excerpt"] == f"{sentence} {sentence}"  # two whole sentences fit in 200
    assert post["seo"]["metaDescription"].endswith("…")
    assert not post["seo"]["metaDescription"][:-1].endswith(" ")


def test_a_single_long_sentence_is_cut_for_the_excerpt() -> None:
    description = " ".join(["invoicing"] * 60) + "."
    excerpt = write_offline_post(dataclasses.replace(RICH, topic_description=description))[
        "excerpt"
    ]

    assert len(excerpt) <= 200
    assert excerpt.endswith("invoicing…")


def test_short_title_gets_the_business_in_the_meta_title() -> None:
    post = write_offline_post(dataclasses.replace(RICH, topic_title="Invoicing   basics"))

    assert post["title"] == "Invoicing basics"  # whitespace collapsed
    assert post["seo"]["metaTitle"] == "Invoicing basics | Acme Invoicing"


def test_short_instruction_gives_a_shorter_post() -> None:
    normal = write_offline_post(RICH)["content"]
    shorter = write_offline_post(short(RICH))["content"]

    assert word_count(shorter) < word_count(normal) * 0.6
    assert len(headings(shorter)) >= 3
    assert "[Visit Acme Invoicing](https://acme.io/)" in shorter


def test_other_instructions_are_ignored() -> None:
    instructed = dataclasses.replace(RICH, additional_instructions="Mention our new pricing.")

    assert write_offline_post(instructed) == write_offline_post(RICH)


def test_output_is_deterministic() -> None:
    first = OfflineProvider().write_blog_post(RICH)
    second = OfflineProvider().write_blog_post(RICH)

    assert first == second == write_offline_post(RICH)


def test_image_fields_describe_the_topic() -> None:
    post = write_offline_post(RICH)

    assert post["imagePrompt"].endswith("No text.")
    assert "Acme Invoicing" in post["imagePrompt"] and "late payments" in post["imagePrompt"]
    assert "late payments" in post["imageAlt"]
    assert len(post["imageAlt"]) <= 125
