"""No paid work done twice, without a database: a step's images are kept one by one as
parts, so a step run again draws only the missing ones; each LLM call is handed on as it
returns, not when its step ends."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from queue_jobs.pipeline import content_generation, website_analysis
from queue_jobs.pipeline.failures import Cancelled, TransientLLMError
from queue_jobs.pipeline.llm import usage
from queue_jobs.pipeline.llm.base import GeneratedImage
from queue_jobs.pipeline.runner import (
    Pipeline,
    RetryPolicy,
    Step,
    StepInput,
    StopSignal,
    run_pipeline,
)
from tests.unit.pipeline.test_runner_and_status import RecordingJournal, _services


class ImageProvider:
    """Draws images, failing transiently where told; each drawn image is a paid call."""

    def __init__(self, fail_at: set[int] | None = None) -> None:
        self.prompts: list[str] = []
        self._fail_at = fail_at or set()

    def generate_image(self, prompt: str) -> GeneratedImage:
        self.prompts.append(prompt)
        if len(self.prompts) in self._fail_at:
            raise TransientLLMError("overloaded")
        usage.record("img", 1, 2)
        return GeneratedImage(b"png", "image/png")


AUDIENCES = [{"name": f"A{i}", "description": "d", "painPoints": []} for i in range(3)]
ANALYSIS = {"businessName": "Acme", "industry": "software"}
BEFORE_IMAGES = {"analyze": {"analysis": ANALYSIS, "page": {}},
                 "audiences": {"audiences": AUDIENCES}, "pitches": {"pitches": ["p"] * 3}}


def _images_pipeline() -> Pipeline:
    return Pipeline("test", (Step("images", "images", website_analysis.generate_images, 1),),
                    build_result=lambda step: step.outputs["images"])


def test_a_transient_failure_mid_images_redraws_only_the_missing_ones() -> None:
    provider = ImageProvider(fail_at={2})  # the second image fails once
    calls: list[tuple[str, str, int, int]] = []
    result = run_pipeline(_images_pipeline(), "job", {}, BEFORE_IMAGES,
                          _services(provider, calls), RecordingJournal(), StopSignal(),
                          RetryPolicy(retries=1, backoff_s=0))
    assert result == {"imageUrls": ["/images/0", "/images/1", "/images/2"]}
    assert len(provider.prompts) == 4  # three images, and the one that failed
    assert len(set(provider.prompts)) == 3
    assert calls == [("images", "img", 1, 2)] * 3  # the answered calls, one by one


def test_a_resumed_images_step_draws_only_the_parts_it_does_not_have() -> None:
    provider = ImageProvider()
    result = run_pipeline(_images_pipeline(), "job", {}, BEFORE_IMAGES, _services(provider),
                          RecordingJournal(), StopSignal(), RetryPolicy(),
                          parts={"images": {"0": "/kept/0", "2": "/kept/2"}})
    assert result == {"imageUrls": ["/kept/0", "/images/1", "/kept/2"]}
    assert provider.prompts == [website_analysis.image_prompt(ANALYSIS, AUDIENCES[1])]


def test_a_post_visual_kept_before_its_step_ended_is_not_drawn_again() -> None:
    provider = ImageProvider()
    job_input = {"options": {"includeVisuals": True}}
    post = {"imagePrompt": "a chart", "imageAlt": "alt"}
    step = StepInput("job", job_input, {"content": {"post": post}}, _services(provider),
                     "visuals", {"visual": "/kept/visual"})
    output = content_generation.generate_visuals(step)
    assert output["visuals"] == [{"imageUrl": "/kept/visual", "prompt": "a chart",
                                  "alt": "alt"}]
    assert provider.prompts == []


def test_each_llm_call_is_handed_on_as_it_returns_even_if_its_run_is_cut_short() -> None:
    calls: list[tuple[str, str, int, int]] = []
    seen_during_the_step: list[int] = []
    stop = StopSignal()

    def two_calls_then_stopped(step_input: StepInput) -> dict[str, Any]:
        usage.record("gpt-x", 3, 4)
        seen_during_the_step.append(len(calls))  # written already, before the step ends
        usage.record("gpt-x", 5, 6)
        stop.stop(Cancelled())  # the run is cut short: no checkpoint follows
        return {}

    pipeline = Pipeline("test", (Step("a", "a", two_calls_then_stopped, weight=1),),
                        build_result=lambda step_input: {})
    with pytest.raises(Cancelled):
        run_pipeline(pipeline, "job", {}, {}, _services(calls=calls), RecordingJournal(),
                     stop, RetryPolicy())
    assert seen_during_the_step == [1]
    assert calls == [("a", "gpt-x", 3, 4), ("a", "gpt-x", 5, 6)]


def test_each_image_saved_moves_progress_its_share_of_the_step() -> None:
    saved: list[tuple[str, int | None]] = []

    def save_image(step: str, part: str, image: GeneratedImage, prompt: str,
                   progress: int | None) -> str:
        saved.append((part, progress))
        return f"/{step}/{part}"

    services = replace(_services(ImageProvider()), save_image=save_image)
    # the real pipeline: images is its last step, from progress_before(3) to (4)
    pipeline = website_analysis.PIPELINE
    low, high = pipeline.progress_before(3), pipeline.progress_before(4)
    run_pipeline(replace(pipeline, build_result=lambda step: {}), "job", {}, BEFORE_IMAGES,
                 services, RecordingJournal(), StopSignal(), RetryPolicy())
    assert [part for part, _ in saved] == ["0", "1", "2"]
    assert [progress for _, progress in saved] == [low + (high - low) * n // 3
                                                   for n in (1, 2, 3)]
    assert low < saved[0][1] < saved[1][1] < saved[2][1] == high  # type: ignore[operator]
