"""The registry of job types: type name -> pipeline definition."""

from __future__ import annotations

from queue_jobs.pipeline import content_generation, website_analysis
from queue_jobs.pipeline.runner import Pipeline

PIPELINES: dict[str, Pipeline] = {
    website_analysis.JOB_TYPE: website_analysis.PIPELINE,
    content_generation.JOB_TYPE: content_generation.PIPELINE,
}
