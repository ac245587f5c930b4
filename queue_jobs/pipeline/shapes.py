"""The JSON Schemas of what the pipelines produce, each shape written once.

The model's answers (queue_jobs.pipeline.llm.schemas) are these shapes with the counts the
prompts ask for. Every object is closed (`additionalProperties: false`, all properties
required), as OpenAI's strict structured outputs need.
"""

from __future__ import annotations

from typing import Any

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

ANALYSIS = closed({name: TEXT for name in ("businessName", "businessType", "industry",
                                           "description", "targetAudience", "brandVoice")}
                  | {"keywords": TEXTS})
AUDIENCE = closed({"name": TEXT, "description": TEXT, "painPoints": TEXTS})
SEO = closed({"metaTitle": TEXT, "metaDescription": TEXT, "keywords": TEXTS})
# A blog post's text: the model writes it, the result's `data` and a saved post hold it.
POST_TEXT: dict[str, Schema] = {"title": TEXT, "content": _described(TEXT, "Markdown."),
                                "excerpt": TEXT, "tags": TEXTS, "seo": SEO}
