"""The JSON Schemas of what the pipelines produce, each shape written once.

The model's answers (queue_jobs.pipeline.llm.schemas) are these shapes with the counts the
prompts ask for; the job results (contract §6) are built from them. The API document shows
the results with these same schemas (named in queue_jobs.services.catalog), so every object
is closed (`additionalProperties: false`, all properties required): OpenAI's strict
structured outputs need that, and the document's tests then catch any undocumented field.
The analysis, audience, SEO and post shapes carry no counts: a deprecated per-step call
echoes the client's audiences, which may have more pain points than a model is asked for.
"""

from __future__ import annotations

from typing import Any

from queue_jobs.models import ISO_UTC

Schema = dict[str, Any]


def closed(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def array(items: Schema, **bounds: int) -> Schema:
    return {"type": "array", "items": items, **bounds}


def _described(schema: Schema, description: str) -> Schema:
    return {**schema, "description": description}


TEXT: Schema = {"type": "string"}
TEXTS = array(TEXT)
UUID: Schema = {"type": "string", "format": "uuid"}
COUNT: Schema = {"type": "integer", "minimum": 0}
SUCCESS: Schema = {"type": "boolean", "enum": [True]}
# What StepServices.save_image answers (queue_jobs.runs.journal).
IMAGE_URL: Schema = {"type": "string", "pattern": "^/api/v1/images/[0-9a-f]{8}-[0-9a-f]{4}-"
                                                  "[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}

ANALYSIS = closed({name: TEXT for name in ("businessName", "businessType", "industry",
                                           "description", "targetAudience", "brandVoice")}
                  | {"keywords": TEXTS})
AUDIENCE = closed({"name": TEXT, "description": TEXT, "painPoints": TEXTS})
SEO = closed({"metaTitle": TEXT, "metaDescription": TEXT, "keywords": TEXTS})
# A blog post's text: the model writes it, the result's `data` and a saved post hold it.
POST_TEXT: dict[str, Schema] = {"title": TEXT, "content": _described(TEXT, "Markdown."),
                                "excerpt": TEXT, "tags": TEXTS, "seo": SEO}

# --- the results (contract §6) and what they hold -----------------------------------------

SCENARIO = closed({"id": UUID, "audience": AUDIENCE, "pitch": TEXT, "imageUrl": IMAGE_URL})
METADATA = closed({"provider": _described(TEXT, "`openai` or `offline`."), "model": TEXT,
                   "durationMs": _described(COUNT, "Summed step time, across retries.")})
CTA = closed({"text": TEXT,  # pages.CallToAction
              "href": _described(TEXT, "Absolute URL, or empty for a bare button."),
              "type": {"type": "string", "enum": ["button", "link"]}})
VISUAL = closed({"imageUrl": IMAGE_URL, "prompt": TEXT, "alt": TEXT})
SAVED_POST = closed({"id": UUID, "organizationId": UUID, "title": TEXT,
                     "status": {"type": "string", "enum": ["draft", "published"]},
                     "createdAt": ISO_UTC})

GENERATED_POST = closed({**POST_TEXT,
                         "visuals": _described(array(VISUAL), "Empty unless includeVisuals.")})
IMAGE_GENERATION = closed({"requested": {"type": "boolean"}, "generated": COUNT,
                           "failed": _described(COUNT, "Images the model refused for good.")})
# A saved post as GET /api/v1/posts/{postId} answers it (services.organizations).
POST = closed({**SAVED_POST["properties"], **POST_TEXT, "visuals": array(VISUAL),
               "updatedAt": ISO_UTC})

WEBSITE_ANALYSIS_RESULT = closed({
    "success": SUCCESS, "url": _described(TEXT, "The final URL, after redirects."),
    "organizationId": UUID, "analysis": ANALYSIS,
    "scenarios": array(SCENARIO, minItems=2, maxItems=5), "ctas": array(CTA),
    "metadata": METADATA})
CONTENT_GENERATION_RESULT = closed({
    "success": SUCCESS, "data": GENERATED_POST,
    "savedPost": {"anyOf": [SAVED_POST, {"type": "null"}],
                  "description": "null unless autoSave."},
    "metadata": METADATA, "imageGeneration": IMAGE_GENERATION})
# The deprecated per-step calls' results (queue_jobs.services.sync_runs).
AUDIENCES_RESULT = closed({"success": SUCCESS, "audiences": array(AUDIENCE)})
PITCHED_SCENARIO = closed({name: SCENARIO["properties"][name]
                           for name in ("id", "audience", "pitch")})
PITCHES_RESULT = closed({"success": SUCCESS, "scenarios": array(PITCHED_SCENARIO)})
IMAGES_RESULT = closed({"success": SUCCESS, "scenarios": array(SCENARIO)})

