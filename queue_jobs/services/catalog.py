"""What exists, for the API's document and answers: job types, step labels, the errorCodes
a failed job can carry and how a synchronous call answers each, and the JSON Schemas of
what the pipelines produce (the results, an analysis, a saved post)."""

from __future__ import annotations

from queue_jobs.pipeline import shapes
from queue_jobs.pipeline.failures import failure_classes, sync_status_by_code
from queue_jobs.pipeline.registry import PIPELINES

JOB_TYPES = list(PIPELINES)
STEP_LABELS = [step.label for pipeline in PIPELINES.values() for step in pipeline.steps]
FAILURE_CODES = sorted({cls.error_code for cls in failure_classes()})
SYNC_FAILURE_STATUS = sync_status_by_code()
# The pipelines' shapes the API document shows, by component name (where one holds
# another, the document refers to it by name).
RESULT_SCHEMAS: dict[str, shapes.Schema] = {
    "WebsiteAnalysisResult": shapes.WEBSITE_ANALYSIS_RESULT,
    "ContentGenerationResult": shapes.CONTENT_GENERATION_RESULT,
    "AudiencesResult": shapes.AUDIENCES_RESULT, "PitchesResult": shapes.PITCHES_RESULT,
    "ImagesResult": shapes.IMAGES_RESULT, "BusinessAnalysis": shapes.ANALYSIS,
    "ScenarioAudience": shapes.AUDIENCE, "AnalysisScenario": shapes.SCENARIO,
    "PitchedScenario": shapes.PITCHED_SCENARIO, "CallToAction": shapes.CTA,
    "ResultMetadata": shapes.METADATA, "GeneratedPost": shapes.GENERATED_POST,
    "Seo": shapes.SEO, "Visual": shapes.VISUAL, "SavedPost": shapes.SAVED_POST,
    "ImageGeneration": shapes.IMAGE_GENERATION, "Post": shapes.POST,
}


def sync_failure_status(error_code: str | None) -> int:
    """The HTTP status a deprecated synchronous call answers a failed run with."""
    return SYNC_FAILURE_STATUS.get(error_code or "INTERNAL_ERROR", 500)


def sync_failures_by_status() -> dict[int, tuple[str, ...]]:
    """The same map turned around, for the API document: status -> its errorCodes."""
    by_status: dict[int, list[str]] = {}
    for code, status in sorted(SYNC_FAILURE_STATUS.items()):
        by_status.setdefault(status, []).append(code)
    return {status: tuple(codes) for status, codes in sorted(by_status.items())}
