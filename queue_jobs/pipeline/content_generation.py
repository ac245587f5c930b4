"""The content-generation pipeline: write the post, draw its visual, save it.

The job input is self-contained: the API copies the organization's name, site and stored
analysis into it at creation, so the steps need no database reads. Each step's checkpoint
keeps a retry from redoing it: a job that failed while drawing resumes there and does not
rewrite the text.
"""

from __future__ import annotations

import logging
from typing import Any

from queue_jobs.models import JobType
from queue_jobs.pipeline.failures import LLMError
from queue_jobs.pipeline.llm.base import PostBrief
from queue_jobs.pipeline.runner import Pipeline, Step, StepInput

JOB_TYPE = JobType.CONTENT_GENERATION
# The fields of a post that the result's `data` and the posts table hold.
POST_FIELDS = ("title", "content", "excerpt", "tags", "seo")

log = logging.getLogger(__name__)


def post_brief(job_input: dict[str, Any]) -> PostBrief:
    topic = job_input["topic"]
    organization = job_input["organization"]
    return PostBrief(
        topic_title=topic["title"],
        topic_description=topic.get("description") or "",
        topic_keywords=tuple(topic.get("keywords") or ()),
        business_info=job_input["businessInfo"],
        organization_name=organization["name"],
        website_url=organization["websiteUrl"],
        analysis=organization["analysis"],
        additional_instructions=job_input.get("additionalInstructions") or "",
    )


def generate_content(step: StepInput) -> dict[str, Any]:
    return {"post": step.services.provider.write_blog_post(post_brief(step.job_input))}


def generate_visuals(step: StepInput) -> dict[str, Any]:
    if not step.job_input["options"]["includeVisuals"]:
        return {"visuals": [], "requested": False, "generated": 0, "failed": 0}
    post = step.outputs["content"]["post"]
    prompt = post["imagePrompt"]
    try:
        # Kept as a part as soon as it is made: a run cut short before this step's
        # checkpoint finds it there and does not pay for it again.
        url = step.image("visual", prompt)
    except LLMError as error:
        if error.transient:
            raise  # retried by the runner; if that runs out the job fails here, resumable
        # Refused for good (e.g. a content policy): the post is still worth having.
        log.warning("job %s: image not generated: %s", step.job_id, error)
        return {"visuals": [], "requested": True, "generated": 0, "failed": 1}
    visual = {"imageUrl": url, "prompt": prompt, "alt": post["imageAlt"]}
    return {"visuals": [visual], "requested": True, "generated": 1, "failed": 0}


def save_post(step: StepInput) -> dict[str, Any]:
    options = step.job_input["options"]
    if not options["autoSave"]:
        return {"savedPost": None}
    post = {**_post_data(step), "visuals": step.outputs["visuals"]["visuals"]}
    saved = step.services.save_post(step.job_input["organizationId"], post, options["status"])
    return {"savedPost": saved}


def _post_data(step: StepInput) -> dict[str, Any]:
    post = step.outputs["content"]["post"]
    return {field: post[field] for field in POST_FIELDS}


def build_result(step: StepInput) -> dict[str, Any]:
    visuals = step.outputs["visuals"]
    provider = step.services.provider
    return {
        "success": True,
        "data": {**_post_data(step), "visuals": visuals["visuals"]},
        "savedPost": step.outputs["save"]["savedPost"],
        "metadata": {"provider": provider.name, "model": provider.model, "durationMs": 0},
        "imageGeneration": {key: visuals[key] for key in ("requested", "generated", "failed")},
    }


PIPELINE = Pipeline(
    job_type=JOB_TYPE,
    steps=(
        Step("content", "Generating content...", generate_content, weight=55),
        Step("visuals", "Generating visuals...", generate_visuals, weight=35),
        Step("save", "Saving post...", save_post, weight=10),
    ),
    build_result=build_result,
    default_step_seconds={"content": 20, "visuals": 15, "save": 1},
)
