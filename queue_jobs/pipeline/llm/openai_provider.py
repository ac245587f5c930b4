"""The provider that asks an OpenAI (or OpenAI-compatible) API.

Text steps use chat completions with strict structured outputs, and every answer is
validated again locally because compatible servers do not always enforce the schema.
An answer that is not JSON, was cut off, is off the schema or holds the wrong count is
asked for again, at most MAX_REASKS times, in the same conversation: the bad answer as the
assistant's turn and a user turn naming the problem, so the model can mend it. Each
re-ask is a paid call, recorded as any other, and reported to the step's meter.

The client never retries (max_retries=0): the pipeline runner retries transient errors
itself, with backoff and cancellation checks, so retrying here would multiply the waits.
A re-ask is not such a retry: the call succeeded, its answer did not.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import openai
import requests
from openai.types.chat import ChatCompletionMessageParam

from queue_jobs.pipeline.failures import (
    LLMError,
    LLMRateLimited,
    LLMTimeout,
    TransientLLMError,
    UnusableAnswer,
)
from queue_jobs.pipeline.llm import schemas, usage
from queue_jobs.pipeline.llm.base import Analysis, Audience, BlogPost, GeneratedImage, PostBrief
from queue_jobs.pipeline.pages import PageFacts

PAGE_TEXT_CHARS = 6000  # enough for the gist of a page while keeping prompts cheap
MAX_HEADINGS = 40
MAX_CTAS = 10
IMAGE_SIZE = "1024x1024"
IMAGE_DOWNLOAD_TIMEOUT = (5, 30)  # (connect, read) seconds
MAX_IMAGE_BYTES = 10 * 1024 * 1024
DETAIL_CHARS = 300  # how much of an API error message goes into the job's error
# Unusable answers asked for again before the step fails: a model that slipped once
# usually mends its answer when told what was wrong; one that keeps failing will not.
MAX_REASKS = 2

SYSTEM_PROMPT = (
    "You are a senior B2B marketing analyst. You study a company's website and help its "
    "sales team. Base every statement on the information given; do not invent products, "
    "prices or customers. Be specific and concise, write in the language of the website, "
    "and answer only with JSON that matches the requested schema."
)


class OpenAIProvider:
    name: str = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str | None,
        model: str,
        image_model: str,
        timeout_s: float = 60.0,
        image_timeout_s: float = 120.0,
    ) -> None:
        self.model = model
        self._image_model = image_model
        self._image_timeout_s = image_timeout_s
        self._api_key = api_key
        self._client = openai.OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
        )

    def analyze_business(self, page: PageFacts) -> Analysis:
        return self._complete("business_analysis", _analysis_prompt(page))

    def generate_audiences(self, page: PageFacts, analysis: Analysis) -> list[Audience]:
        answer = self._complete("audiences", _audiences_prompt(page, analysis))
        audiences: list[Audience] = answer["audiences"]
        return audiences

    def generate_pitches(self, analysis: Analysis, audiences: list[Audience]) -> list[str]:
        # The schema fixes the count, so a strict server writes one pitch per audience.
        answer = self._complete("pitches", _pitches_prompt(analysis, audiences),
                                count=len(audiences))
        pitches: list[str] = answer["pitches"]
        return pitches

    def write_blog_post(self, brief: PostBrief) -> BlogPost:
        return self._complete("blog_post", _blog_post_prompt(brief))

    def generate_image(self, prompt: str) -> GeneratedImage:
        try:
            # No response_format: GPT image models reject it and always answer b64_json,
            # while older models (dall-e-*) answer with a URL by default. Both are handled.
            response = self._client.images.generate(
                model=self._image_model,
                prompt=prompt,
                n=1,
                size=IMAGE_SIZE,
                timeout=self._image_timeout_s,
            )
        except openai.OpenAIError as exc:
            raise self._error(exc, self._image_model) from exc
        tokens = getattr(response, "usage", None)  # GPT image models report usage
        usage.record(self._image_model, getattr(tokens, "input_tokens", 0),
                     getattr(tokens, "output_tokens", 0))
        images = getattr(response, "data", None) or []
        if not images:
            raise LLMError("The image model returned no image")
        data = _image_bytes(images[0].b64_json, images[0].url)
        return GeneratedImage(data, sniff_image_type(data))

    def _complete(self, schema_name: str, user_prompt: str,
                  count: int | None = None) -> dict[str, Any]:
        """One structured answer, parsed and validated against the call's schema, asked for
        again while unusable (at most MAX_REASKS times); the last problem fails the step."""
        schema = schemas.for_call(schema_name, count)
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_prompt}]
        for asked in range(1, MAX_REASKS + 2):
            completion = self._chat(schema_name, schema, messages)
            try:
                return _parse_completion(schema_name, completion, count)
            except UnusableAnswer as unusable:
                if asked > MAX_REASKS:
                    raise UnusableAnswer(
                        f"{unusable} (asked {asked} times)", reason=unusable.reason,
                        problem=unusable.problem, answer=unusable.answer) from unusable
                usage.reask(unusable.reason)
                messages = [*messages, *_follow_up(unusable)]
        raise AssertionError("unreachable: the last answer returns or raises")

    def _chat(self, schema_name: str, schema: dict[str, Any],
              messages: list[ChatCompletionMessageParam]) -> Any:
        """One chat completion; transport faults raise the job's error classes."""
        try:
            completion = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": schema_name, "strict": True, "schema": schema},
                },
            )
        except openai.OpenAIError as exc:
            raise self._error(exc, self.model) from exc
        tokens = getattr(completion, "usage", None)  # counted even if the answer is unusable
        usage.record(self.model, getattr(tokens, "prompt_tokens", 0),
                     getattr(tokens, "completion_tokens", 0))
        return completion

    def _error(self, exc: Exception, model: str) -> LLMError:
        """The job's error for a failed call to `model`, reported to the step's meter."""
        error = _map_error(exc)
        usage.failed(model, error.error_code)
        # An OpenAI-compatible server may echo the request's credentials in its errors.
        if self._api_key and self._api_key in str(error):
            return type(error)(str(error).replace(self._api_key, "[redacted]"))
        return error


def _map_error(exc: BaseException) -> LLMError:
    """Translate a client failure into the job's error classes (transient ones get retried)."""
    if isinstance(exc, LLMError):
        return exc
    # APITimeoutError is an APIConnectionError, so it must be tested first.
    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeout("The language model did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return TransientLLMError(f"Could not reach the language model service: {_detail(exc)}")
    if isinstance(exc, openai.RateLimitError):
        return LLMRateLimited(f"The language model service is rate limiting us: {_detail(exc)}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if isinstance(exc, openai.InternalServerError) or status >= 500:
            return TransientLLMError(
                f"The language model service failed with HTTP {status}: {_detail(exc)}"
            )
        return LLMError(
            f"The language model service refused the request with HTTP {status}: {_detail(exc)}"
        )
    if isinstance(exc, json.JSONDecodeError):
        return LLMError(f"The language model answered invalid JSON: {exc.msg}")
    return LLMError(f"The language model call failed: {type(exc).__name__}: {_detail(exc)}")


# Things shaped like credentials, in case a server quotes them back in an error message.
_SECRET_RE = re.compile(r"(sk-[A-Za-z0-9_\-*]{6,}|Bearer\s+\S+)")


def _detail(exc: BaseException) -> str:
    """A short, credential-free description of the error for the job's error message."""
    body = getattr(exc, "body", None)
    message: object = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("error")
    if not isinstance(message, str) or not message.strip():
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = " ".join(str(message).split())
    text = _SECRET_RE.sub("[redacted]", text)
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def _parse_completion(schema_name: str, completion: Any,
                      count: int | None = None) -> dict[str, Any]:
    """The answer's JSON; UnusableAnswer for one worth asking again, LLMError otherwise."""
    choices = getattr(completion, "choices", None) or []
    if not choices:
        raise LLMError(f"The language model returned no answer for {schema_name}")
    choice = choices[0]
    message = choice.message
    refusal = getattr(message, "refusal", None)
    if refusal:  # asked again it would refuse again
        raise LLMError(f"The language model refused to answer {schema_name}: {_short(refusal)}")
    content = message.content or ""
    if getattr(choice, "finish_reason", None) == "length":
        raise UnusableAnswer(
            f"The language model's answer for {schema_name} was cut off", reason="truncated",
            problem="your answer was cut off at the length limit before the JSON document "
                    "ended; write it more briefly",
            answer=content)
    if not content.strip():
        raise UnusableAnswer(
            f"The language model returned an empty answer for {schema_name}",
            reason="not_json", problem="your answer was empty", answer=content)
    try:
        value = json.loads(content)
    except json.JSONDecodeError as exc:
        raise UnusableAnswer(
            f"The language model answered invalid JSON for {schema_name}: {exc.msg}",
            reason="not_json", problem=f"your answer is not valid JSON ({exc})",
            answer=content) from exc
    try:
        return schemas.validate(schema_name, value, count)
    except UnusableAnswer as unusable:
        raise UnusableAnswer(
            str(unusable), reason=unusable.reason,
            problem=f"your answer does not match the schema: {unusable.problem}",
            answer=content) from None


def _follow_up(unusable: UnusableAnswer) -> list[ChatCompletionMessageParam]:
    """The turns that ask again: the model's own answer, then what was wrong with it."""
    turns: list[ChatCompletionMessageParam] = (
        [{"role": "assistant", "content": unusable.answer}] if unusable.answer else [])
    return [*turns, {"role": "user", "content": (
        f"That answer could not be used: {_short(unusable.problem)}. Answer again with only "
        "the corrected JSON document, complete and matching the requested schema.")}]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


# --- prompts ---------------------------------------------------------------------------


def _analysis_prompt(page: PageFacts) -> str:
    return (
        "Analyse the business behind this website.\n\n"
        f"{_page_block(page, text_chars=PAGE_TEXT_CHARS)}\n\n"
        "Answer with: businessName (the company or brand name), businessType (what kind of "
        "business it is, e.g. 'B2B SaaS'), industry, description (2-3 sentences on what it "
        "offers and to whom), targetAudience (one sentence), brandVoice (a few words "
        "describing the tone of the site), keywords (3 to 10 short search keywords)."
    )


def _audiences_prompt(page: PageFacts, analysis: Analysis) -> str:
    return (
        "Here is the analysis of a business and an extract of its website.\n\n"
        f"Analysis:\n{_json(analysis)}\n\n"
        f"{_page_block(page, text_chars=PAGE_TEXT_CHARS // 3)}\n\n"
        "Identify 2 to 5 distinct target audiences (customer segments) for this business. "
        "For each give a short name, a one or two sentence description, and 1 to 5 concrete "
        "pain points this business can solve for them."
    )


def _pitches_prompt(analysis: Analysis, audiences: list[Audience]) -> str:
    return (
        f"Business analysis:\n{_json(analysis)}\n\n"
        f"Target audiences, in order:\n{_json(audiences)}\n\n"
        f"Write exactly {len(audiences)} sales pitches, one per audience and in the same "
        "order. Each pitch is 2 to 4 sentences, names the business, speaks to that "
        "audience's pain points and ends with a clear call to action."
    )


def _blog_post_prompt(brief: PostBrief) -> str:
    topic = [f"Title idea: {brief.topic_title}"]
    if brief.topic_description:
        topic.append(f"About: {brief.topic_description}")
    if brief.topic_keywords:
        topic.append(f"Keywords to cover: {', '.join(brief.topic_keywords)}")
    instructions = brief.additional_instructions or "(none)"
    return (
        f"Write a blog post for {brief.organization_name} ({brief.website_url}).\n\n"
        f"Business analysis of their website:\n{_json(brief.analysis)}\n\n"
        "What the customer says about the business (takes precedence over the analysis):\n"
        f"{_json(brief.business_info)}\n\n"
        "Topic:\n" + "\n".join(topic) + "\n\n"
        f"Additional instructions from the customer:\n{instructions}\n\n"
        "Answer with: title (at most 70 characters); content (the whole post in Markdown, "
        "600 to 1000 words, with an introduction, 3 to 5 sections under '## ' headings and a "
        "closing call to action that links to the website; do not repeat the title as a "
        "heading); excerpt (1 or 2 sentences, at most 200 characters); tags (3 to 6 short "
        "lower-case tags); seo.metaTitle (at most 60 characters), seo.metaDescription (at "
        "most 155 characters), seo.keywords (3 to 8 search phrases); imagePrompt (a prompt "
        "for one header illustration that fits the post, with no text in the image); imageAlt "
        "(a short alt text describing that illustration)."
    )


def _page_block(page: PageFacts, *, text_chars: int) -> str:
    headings = [h.strip() for h in page.headings if h.strip()][:MAX_HEADINGS]
    ctas = [c.text.strip() for c in page.ctas if c.text.strip()][:MAX_CTAS]
    lines = [
        f"URL: {page.url}",
        f"Site name: {page.site_name or '(none)'}",
        f"Title: {page.title or '(none)'}",
        f"Meta description: {page.description or '(none)'}",
    ]
    if page.language:
        lines.append(f"Language: {page.language}")
    lines.append("Headings:")
    lines.extend(f"- {heading}" for heading in headings or ["(none)"])
    lines.append(f"Calls to action: {'; '.join(ctas) if ctas else '(none)'}")
    lines.append(f"Page text (first {text_chars} characters):")
    lines.append(page.text[:text_chars] or "(none)")
    return "\n".join(lines)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


# --- images ----------------------------------------------------------------------------


def _image_bytes(b64_json: str | None, url: str | None) -> bytes:
    if b64_json:
        try:
            data = base64.b64decode(b64_json, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise LLMError("The image model answered with invalid base64 data") from exc
    elif url:
        data = _download(url)
    else:
        raise LLMError("The image model answered with neither image data nor a URL")
    if not data:
        raise LLMError("The image model returned an empty image")
    return data


def _download(url: str) -> bytes:
    """Fetch an image the API only linked to. The URL is signed, so it stays out of errors."""
    try:
        with requests.get(url, timeout=IMAGE_DOWNLOAD_TIMEOUT, stream=True) as response:
            if response.status_code >= 500:
                raise TransientLLMError(f"Image download failed with HTTP {response.status_code}")
            if response.status_code >= 400:
                raise LLMError(f"Image download failed with HTTP {response.status_code}")
            return _read_capped(response)
    except requests.Timeout as exc:
        raise LLMTimeout("The generated image could not be downloaded in time") from exc
    except requests.RequestException as exc:
        raise TransientLLMError(
            f"The generated image could not be downloaded: {type(exc).__name__}"
        ) from exc


def _read_capped(response: requests.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=64 * 1024):
        size += len(chunk)
        if size > MAX_IMAGE_BYTES:
            raise LLMError(f"The generated image is larger than {MAX_IMAGE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def sniff_image_type(data: bytes) -> str:
    """The content type from the file signature; the API's own headers are not trusted."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return "image/png"  # the API's default output format
