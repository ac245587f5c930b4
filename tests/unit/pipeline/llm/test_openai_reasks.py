"""The OpenAI provider asks again for an unusable answer, against the shared fake of the API
(tests/fakes/openai_server.py) scripted to misbehave: what it sends back, when it gives up,
and what the step's meter counts."""

from __future__ import annotations

from typing import Any

import pytest

from queue_jobs.pipeline.failures import TransientLLMError, UnusableAnswer
from queue_jobs.pipeline.llm import schemas, usage
from queue_jobs.pipeline.llm.openai_provider import MAX_REASKS, OpenAIProvider
from queue_jobs.pipeline.pages import PageFacts
from tests.fakes.openai_server import FakeOpenAI

PAGE = PageFacts(url="https://acme.io/", title="Acme - Invoicing", description="Invoices.",
                 site_name="Acme", text="Send invoices in seconds.")
ANALYSIS: dict[str, Any] = {"businessName": "Acme", "businessType": "SaaS",
                            "industry": "Software", "description": "Invoices.",
                            "targetAudience": "Freelancers.", "brandVoice": "Direct",
                            "keywords": ["invoicing"]}
AUDIENCES = [{"name": n, "description": f"{n}.", "painPoints": ["Late payments"]}
             for n in ("Freelancers", "Agencies")]


@pytest.fixture
def provider(fake: FakeOpenAI) -> OpenAIProvider:
    return OpenAIProvider(api_key="test-key", base_url=fake.base_url, model="gpt-test",
                          image_model="gpt-image-test", timeout_s=5)


@pytest.mark.parametrize(("fault", "reason", "named"), [
    ("not_json", "not_json", "is not valid JSON"),
    ("truncated", "truncated", "was cut off"),
    ("missing_field", "schema", "$ is missing 'businessName'"),
    ("wrong_count", "count", "$.keywords must have at most 10 items, got 11"),
])
def test_an_unusable_answer_is_asked_for_again_with_its_problem(
        fake: FakeOpenAI, provider: OpenAIProvider, fault: str, reason: str,
        named: str) -> None:
    fake.answer_badly("chat:business_analysis", fault)

    with usage.metering(usage.Meter()) as meter:
        analysis = provider.analyze_business(PAGE)

    assert schemas.validate("business_analysis", analysis) is analysis  # complete
    first, second = fake.messages("chat:business_analysis")
    assert [m["role"] for m in first] == ["system", "user"]
    assert second[:2] == first  # the same conversation, continued
    bad_answer, follow_up = second[2:]
    assert bad_answer["role"] == "assistant" and bad_answer["content"]
    assert follow_up["role"] == "user" and named in follow_up["content"]
    assert meter.reasks == {reason: 1}
    assert meter.by_model["gpt-test"].calls == 2  # the re-ask is a paid call too


def test_the_bad_answer_goes_back_as_the_assistant_turn(
        fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.answer_badly("chat:business_analysis", "not_json")

    provider.analyze_business(PAGE)

    _, second = fake.messages("chat:business_analysis")
    assert second[2]["content"].startswith("Sure! Here is the JSON you asked for:")


def test_the_pitch_count_is_in_the_schema_and_a_wrong_count_asked_again(
        fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.answer_badly("chat:pitches", "wrong_count")  # 3 pitches for 2 audiences

    with usage.metering(usage.Meter()) as meter:
        pitches = provider.generate_pitches(ANALYSIS, AUDIENCES)

    assert len(pitches) == 2
    sent = [entry["response_format"]["json_schema"]["schema"]["properties"]["pitches"]
            for entry in fake.requests_log]
    assert all(schema["minItems"] == schema["maxItems"] == 2 for schema in sent)
    follow_up = fake.messages("chat:pitches")[1][-1]["content"]
    assert "$.pitches must have exactly 2 items, got 3" in follow_up
    assert meter.reasks == {"count": 1}


def test_three_unusable_answers_fail_the_call_naming_the_last_problem(
        fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.answer_badly("chat:business_analysis", "not_json", times=2)
    fake.answer_badly("chat:business_analysis", "missing_field")

    with usage.metering(usage.Meter()) as meter, pytest.raises(UnusableAnswer) as caught:
        provider.analyze_business(PAGE)

    assert caught.value.error_code == "LLM_ERROR" and not caught.value.transient
    assert "missing 'businessName'" in str(caught.value)
    assert "asked 3 times" in str(caught.value)
    assert fake.calls("chat") == 1 + MAX_REASKS
    assert meter.reasks == {"not_json": 2}  # the third answer was not asked for again
    assert meter.by_model["gpt-test"].calls == 3


def test_a_transport_fault_is_not_asked_again_but_left_to_the_runner(
        fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.answer_badly("chat:business_analysis", "truncated")
    fake.fail_next("chat:business_analysis", 500, times=2)  # used up before the bad answer

    with usage.metering(usage.Meter()) as meter, pytest.raises(TransientLLMError):
        provider.analyze_business(PAGE)
    assert fake.calls("chat") == 1 and meter.reasks == {}

    with usage.metering(usage.Meter()) as meter, pytest.raises(TransientLLMError):
        provider.analyze_business(PAGE)
    assert fake.calls("chat") == 2 and meter.reasks == {}

    with usage.metering(usage.Meter()) as meter:  # the runner's retry: truncated, re-asked
        provider.analyze_business(PAGE)
    assert fake.calls("chat") == 4 and meter.reasks == {"truncated": 1}
