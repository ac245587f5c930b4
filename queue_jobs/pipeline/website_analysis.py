"""The website-analysis pipeline: fetch and analyse, audiences, pitches, images.

Steps are plain functions of their input and the injected services; each returns the
JSON checkpoint that later steps and the result read.
"""

from __future__ import annotations

import uuid
from typing import Any

from queue_jobs.models import JobType
from queue_jobs.pipeline.extract import extract_page
from queue_jobs.pipeline.failures import LLMError
from queue_jobs.pipeline.pages import PageFacts
from queue_jobs.pipeline.runner import Pipeline, Step, StepInput

JOB_TYPE = JobType.WEBSITE_ANALYSIS
MIN_SCENARIOS, MAX_SCENARIOS = 2, 5


def analyze_website(step: StepInput) -> dict[str, Any]:
    fetched = step.services.fetch_page(step.job_input["url"])
    page = extract_page(fetched.html, fetched.url)
    analysis = step.services.provider.analyze_business(page)
    return {"page": page.to_dict(), "analysis": analysis}


def generate_audiences(step: StepInput) -> dict[str, Any]:
    analyzed = step.outputs["analyze"]
    page = PageFacts.from_dict(analyzed["page"])
    audiences = step.services.provider.generate_audiences(page, analyzed["analysis"])
    if len(audiences) < MIN_SCENARIOS:
        raise LLMError(f"Expected at least {MIN_SCENARIOS} audiences, got {len(audiences)}")
    return {"audiences": audiences[:MAX_SCENARIOS]}


def generate_pitches(step: StepInput) -> dict[str, Any]:
    audiences = step.outputs["audiences"]["audiences"]
    pitches = step.services.provider.generate_pitches(step.outputs["analyze"]["analysis"],
                                                      audiences)
    if len(pitches) != len(audiences):
        raise LLMError(f"Expected {len(audiences)} pitches, got {len(pitches)}")
    return {"pitches": pitches}


def image_prompt(analysis: dict[str, Any], audience: dict[str, Any]) -> str:
    return (f"A clean marketing illustration for {analysis['businessName']} "
            f"({analysis['industry']}) speaking to {audience['name']}: "
            f"{audience['description']}. No text.")


def generate_images(step: StepInput) -> dict[str, Any]:
    """One image per audience, each kept as it is made (part: the audience's index), so a
    step cut short and run again draws only the missing ones; each one saved raises the
    job's progress by its share of the step."""
    analysis = step.outputs["analyze"]["analysis"]
    audiences = step.outputs["audiences"]["audiences"]
    urls = []
    for index, audience in enumerate(audiences):
        if step.services.should_stop():
            break  # the runner raises the stop reason right after the step returns
        # Each image moves the progress bar its share of the step as it is saved.
        urls.append(step.image(str(index), image_prompt(analysis, audience),
                               unit=(index + 1, len(audiences))))
    return {"imageUrls": urls}


def scenarios(step: StepInput, *, with_images: bool = True) -> list[dict[str, Any]]:
    """One scenario per audience with its pitch (and image): ids derived from the job, so
    a repeated run answers the same ones."""
    audiences = step.outputs["audiences"]["audiences"]
    pitches = step.outputs["pitches"]["pitches"]
    images = step.outputs["images"]["imageUrls"] if with_images else [None] * len(pitches)
    return [{"id": str(uuid.uuid5(uuid.UUID(step.job_id), f"scenario-{index}")),
             "audience": audience, "pitch": pitch,
             **({"imageUrl": image} if with_images else {})}
            for index, (audience, pitch, image) in enumerate(zip(audiences, pitches, images,
                                                                 strict=True))]


def build_result(step: StepInput) -> dict[str, Any]:
    page = step.outputs["analyze"]["page"]
    analysis = step.outputs["analyze"]["analysis"]
    organization_id = step.services.create_organization(analysis["businessName"], page["url"],
                                                        analysis)
    provider = step.services.provider
    return {
        "success": True,
        "url": page["url"],
        "organizationId": organization_id,
        "analysis": analysis,
        "scenarios": scenarios(step),
        "ctas": page["ctas"],
        "metadata": {"provider": provider.name, "model": provider.model, "durationMs": 0},
    }


PIPELINE = Pipeline(
    job_type=JOB_TYPE,
    steps=(
        Step("analyze", "Analyzing website...", analyze_website, weight=30),
        Step("audiences", "Generating audiences...", generate_audiences, weight=20),
        Step("pitches", "Generating pitches...", generate_pitches, weight=20),
        Step("images", "Generating images...", generate_images, weight=30),
    ),
    build_result=build_result,
    default_step_seconds={"analyze": 8, "audiences": 6, "pitches": 6, "images": 20},
)
