"""JSON schemas for the structured answers of the LLM steps, and a checker for them.

The schemas follow OpenAI's strict structured outputs rules: every object lists all of its
properties as required and forbids additional ones. Models (and OpenAI-compatible servers)
do not always honour the schema, so every answer is checked again with `validate` before
the pipeline trusts it. The checker understands only the subset of JSON Schema used here,
which keeps the service free of a jsonschema dependency.
"""

from __future__ import annotations

from typing import Any

from queue_jobs.pipeline.failures import LLMError

Schema = dict[str, Any]

_STRING: Schema = {"type": "string"}


def _object(properties: dict[str, Schema]) -> Schema:
    # Strict mode needs every property required and no extra ones, on every object.
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _array(items: Schema, *, min_items: int | None = None, max_items: int | None = None) -> Schema:
    schema: Schema = {"type": "array", "items": items}
    if min_items is not None:
        schema["minItems"] = min_items
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


BUSINESS_ANALYSIS: Schema = _object(
    {
        "businessName": _STRING,
        "businessType": _STRING,
        "industry": _STRING,
        "description": _STRING,
        "targetAudience": _STRING,
        "brandVoice": _STRING,
        "keywords": _array(_STRING, min_items=1, max_items=10),
    }
)

AUDIENCES: Schema = _object(
    {
        "audiences": _array(
            _object(
                {
                    "name": _STRING,
                    "description": _STRING,
                    "painPoints": _array(_STRING, min_items=1, max_items=5),
                }
            ),
            min_items=2,
            max_items=5,
        )
    }
)

PITCHES: Schema = _object({"pitches": _array(_STRING)})

BLOG_POST: Schema = _object(
    {
        "title": _STRING,
        "content": _STRING,  # markdown
        "excerpt": _STRING,
        "tags": _array(_STRING, min_items=1, max_items=8),
        "seo": _object(
            {
                "metaTitle": _STRING,
                "metaDescription": _STRING,
                "keywords": _array(_STRING, min_items=1, max_items=10),
            }
        ),
        "imagePrompt": _STRING,  # for the visuals step; not part of the job's result
        "imageAlt": _STRING,
    }
)

SCHEMAS: dict[str, Schema] = {
    "business_analysis": BUSINESS_ANALYSIS,
    "audiences": AUDIENCES,
    "pitches": PITCHES,
    "blog_post": BLOG_POST,
}


def get(schema_name: str) -> Schema:
    """The schema called `schema_name`; ValueError for an unknown name (a programming error)."""
    try:
        return SCHEMAS[schema_name]
    except KeyError:
        raise ValueError(f"unknown schema {schema_name!r}") from None


def validate(schema_name: str, value: object) -> dict[str, Any]:
    """Return `value` if it matches the schema, else raise LLMError saying what is wrong."""
    problem = _check(get(schema_name), value, "$")
    if problem is not None:
        raise LLMError(f"The language model answered invalid JSON for {schema_name}: {problem}")
    assert isinstance(value, dict)  # every top-level schema is an object, checked above
    return value


def _check(schema: Schema, value: object, path: str) -> str | None:
    """The first mismatch between `value` and `schema` as a readable reason, or None."""
    kind = schema["type"]
    if kind == "object":
        return _check_object(schema, value, path)
    if kind == "array":
        return _check_array(schema, value, path)
    if kind == "string":
        return _check_string(value, path)
    raise ValueError(f"schema type {kind!r} is not supported by this checker")


def _check_object(schema: Schema, value: object, path: str) -> str | None:
    if not isinstance(value, dict):
        return f"{path} must be an object, got {_json_type(value)}"
    properties: dict[str, Schema] = schema["properties"]
    for key in schema["required"]:
        if key not in value:
            return f"{path} is missing {key!r}"
    if schema.get("additionalProperties") is False:
        extra = sorted(str(key) for key in value if key not in properties)
        if extra:
            return f"{path} has unexpected keys {', '.join(extra)}"
    for key, sub_schema in properties.items():
        if key in value:
            problem = _check(sub_schema, value[key], f"{path}.{key}")
            if problem is not None:
                return problem
    return None


def _check_array(schema: Schema, value: object, path: str) -> str | None:
    if not isinstance(value, list):
        return f"{path} must be an array, got {_json_type(value)}"
    low, high = schema.get("minItems"), schema.get("maxItems")
    if low is not None and len(value) < low:
        return f"{path} must have at least {low} items, got {len(value)}"
    if high is not None and len(value) > high:
        return f"{path} must have at most {high} items, got {len(value)}"
    for index, item in enumerate(value):
        problem = _check(schema["items"], item, f"{path}[{index}]")
        if problem is not None:
            return problem
    return None


def _check_string(value: object, path: str) -> str | None:
    if not isinstance(value, str):
        return f"{path} must be a string, got {_json_type(value)}"
    # Blank strings satisfy the JSON schema but are useless in a result, so reject them too.
    if not value.strip():
        return f"{path} must not be empty"
    return None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
