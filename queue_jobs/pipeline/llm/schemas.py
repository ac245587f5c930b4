"""The JSON Schemas of the model's answers, and their check with jsonschema.

Each is a shape of queue_jobs.pipeline.shapes with the counts its prompt asks for, sent as
the response_format of a strict structured completion; `for_call` narrows a count a call
knows exactly (one pitch per audience given). Models (and OpenAI-compatible servers) do
not always honour it, so every answer is checked again before the pipeline trusts it, and
a mismatch names its reason (`schema`, or `count` for a list of the wrong length) so the
provider can ask again.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import best_match

from queue_jobs.pipeline import shapes
from queue_jobs.pipeline.failures import UnusableAnswer
from queue_jobs.pipeline.shapes import TEXT, TEXTS, Schema, array, closed


def _counted(schema: Schema, **counts: tuple[int, int]) -> Schema:
    """`schema` with each named list holding from `low` to `high` items."""
    properties = dict(schema["properties"])
    for name, (low, high) in counts.items():
        properties[name] = {**properties[name], "minItems": low, "maxItems": high}
    return {**schema, "properties": properties}


SCHEMAS: dict[str, Schema] = {
    "business_analysis": _counted(shapes.ANALYSIS, keywords=(1, 10)),
    "audiences": closed({"audiences": array(_counted(shapes.AUDIENCE, painPoints=(1, 5)),
                                            minItems=2, maxItems=5)}),
    "pitches": closed({"pitches": TEXTS}),
    "blog_post": _counted(closed({
        **shapes.POST_TEXT, "seo": _counted(shapes.SEO, keywords=(1, 10)),
        "imagePrompt": TEXT,  # for the visuals step; not part of the job's result
        "imageAlt": TEXT}), tags=(1, 8)),
}
# The list whose length a call fixes, by schema: the pitches, one per audience.
_EXACT_COUNTS = {"pitches": "pitches"}


def _type_and_not_blank(validator: Any, types: Any, instance: Any,
                        schema: Schema) -> Iterator[ValidationError]:
    yield from Draft202012Validator.VALIDATORS["type"](validator, types, instance, schema)
    # A blank string satisfies the schema but is useless in a result.
    if types == "string" and isinstance(instance, str) and not instance.strip():
        yield ValidationError("must not be empty")


_Validator = validators.extend(Draft202012Validator, {"type": _type_and_not_blank})


def get(schema_name: str) -> Schema:
    """The schema called `schema_name`; ValueError for an unknown name (a programming error)."""
    try:
        return SCHEMAS[schema_name]
    except KeyError:
        raise ValueError(f"unknown schema {schema_name!r}") from None


def for_call(schema_name: str, count: int | None = None) -> Schema:
    """The schema one call sends: with `count`, its counted list holds exactly that many
    items (minItems = maxItems), so a strict server enforces the count as it writes."""
    schema = get(schema_name)
    if count is None:
        return schema
    if schema_name not in _EXACT_COUNTS:
        raise ValueError(f"schema {schema_name!r} has no per-call count")
    return _counted(schema, **{_EXACT_COUNTS[schema_name]: (count, count)})


@lru_cache(maxsize=64)  # a few (schema, count) pairs in practice; bounded all the same
def _validator(schema_name: str, count: int | None) -> Any:
    return _Validator(for_call(schema_name, count))


def validate(schema_name: str, value: object, count: int | None = None) -> dict[str, Any]:
    """Return `value` if it matches the call's schema (`for_call`), else raise UnusableAnswer
    saying what is wrong, with reason `count` for a list of the wrong length."""
    error = best_match(_validator(schema_name, count).iter_errors(value))
    if error is not None:
        reason = "count" if error.validator in ("minItems", "maxItems") else "schema"
        problem = _reason(error)
        raise UnusableAnswer(f"The language model answered invalid JSON for {schema_name}: "
                             f"{problem}", reason=reason, problem=problem)
    assert isinstance(value, dict)  # every answer's schema is an object, checked above
    return value


_ARTICLES = {"object": "an object", "array": "an array", "string": "a string"}
_JSON_TYPES = {type(None): "null", bool: "boolean", int: "number", float: "number",
               str: "string", list: "array", dict: "object"}


def _reason(error: ValidationError) -> str:
    """The mismatch as a readable reason, e.g. "$.keywords[1] must be a string, got null"."""
    path, value, expected = error.json_path, error.instance, error.validator_value
    if error.validator == "type" and expected == "string" and isinstance(value, str):
        return f"{path} must not be empty"
    if error.validator == "type":
        got = _JSON_TYPES.get(type(value), type(value).__name__)
        return f"{path} must be {_ARTICLES.get(expected, expected)}, got {got}"
    if error.validator == "required":
        return f"{path} is missing {next(key for key in expected if key not in value)!r}"
    if error.validator == "additionalProperties":
        extra = sorted(str(key) for key in value if key not in error.schema["properties"])
        return f"{path} has unexpected keys {', '.join(extra)}"
    if error.validator in ("minItems", "maxItems"):
        if error.schema.get("minItems") == error.schema.get("maxItems"):
            return f"{path} must have exactly {expected} items, got {len(value)}"
        bound = "at least" if error.validator == "minItems" else "at most"
        return f"{path} must have {bound} {expected} items, got {len(value)}"
    return f"{path}: {error.message}"
