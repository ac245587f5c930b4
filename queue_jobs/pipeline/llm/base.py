"""The interface every LLM provider implements.

Methods work at the level of the product's steps (not raw prompts) so that the offline
provider can answer each one deterministically from the page itself. Every method raises
`queue_jobs.pipeline.failures.LLMError` subclasses on failure; transient ones are retried by the
pipeline runner, not by the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from queue_jobs.pipeline.pages import PageFacts

# Plain JSON, shaped as queue_jobs.pipeline.llm.schemas.SCHEMAS says (business_analysis,
# an item of audiences, blog_post).
Analysis = dict[str, Any]
Audience = dict[str, Any]
BlogPost = dict[str, Any]


@dataclass(frozen=True)
class PostBrief:
    """What the writer of a blog post gets: the request and the organization it is for."""

    topic_title: str
    topic_description: str  # "" when the request gave none
    topic_keywords: tuple[str, ...]
    # The request's businessInfo (webapp.schemas.inputs.BusinessInfo): optional analysis fields
    # that win over the stored analysis where both say something.
    business_info: dict[str, Any]
    organization_name: str
    website_url: str
    analysis: Analysis  # the organization's stored website analysis
    additional_instructions: str  # "" when none


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    content_type: str  # "image/png", "image/svg+xml", ...


class LLMProvider(Protocol):
    name: str  # "openai" | "offline"  (goes into result metadata.provider)
    model: str  # chat model name (metadata.model)

    def analyze_business(self, page: PageFacts) -> Analysis:
        """Business analysis of the page: every Analysis field, keywords non-empty."""

    def generate_audiences(self, page: PageFacts, analysis: Analysis) -> list[Audience]:
        """2 to 5 target audiences, each with at least one pain point."""

    def generate_pitches(self, analysis: Analysis, audiences: list[Audience]) -> list[str]:
        """One sales pitch per audience, same order, same length as `audiences`."""

    def write_blog_post(self, brief: PostBrief) -> BlogPost:
        """A blog post on the brief's topic for its business: every BlogPost field set."""

    def generate_image(self, prompt: str) -> GeneratedImage:
        """One image for the prompt."""
