"""A preset or options given to ``patch``/``score_completion``/``trust_scored`` is used (the
engine at that preset) or refused, never dropped in favour of the logprob scorer."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from fake_openai import FakeOpenAI
from hookutil import MESSAGES

import tlm_hooks
from tlm_hooks.errors import InvalidOptionError

JUDGE = "judge-model"


def _client(fake: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url, api_key="test-key", max_retries=0)


def _judge_options(fake: FakeOpenAI, preset: str) -> dict[str, Any]:
    provider = {"api_base": fake.url, "api_key": "judge-key"}
    return {"quality_preset": preset, "options": {"model": JUDGE, "model_provider": provider}}


def test_score_completion_with_a_preset_runs_the_engine_at_that_preset(fake: FakeOpenAI) -> None:
    kwargs = {"model": "gpt-x", "messages": MESSAGES, "logprobs": True}
    response = _client(fake).chat.completions.create(**kwargs)
    fake.requests.clear()
    result = tlm_hooks.score_completion(response, options=_judge_options(fake, "low"), **kwargs)
    components = result["log"]["per_component_score"]
    assert {"token_probability", "self_reflection", "consistency"} <= set(components)  # low: all three signals
    judge_calls = [seen for seen in fake.requests if seen.body["model"] == JUDGE]
    assert judge_calls and len(judge_calls) == len(fake.requests)


def test_score_completion_without_a_preset_stays_on_token_probabilities(fake: FakeOpenAI) -> None:
    kwargs = {"model": "gpt-x", "messages": MESSAGES, "logprobs": True}
    response = _client(fake).chat.completions.create(**kwargs)
    fake.requests.clear()
    result = tlm_hooks.score_completion(response, options={"options": {"log": ["explanation"]}}, **kwargs)
    assert set(result["log"]["per_component_score"]) == {
        "token_probability_geometric_mean",
        "token_probability_mean",
        "token_probability_min",
    }
    assert result["log"]["explanation"].startswith("Token probability")
    assert fake.requests == []  # no judge


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"quality_preset": "medium"}, "quality_preset"),
        ({"task": "classification"}, "task"),
        ({"options": {"num_self_reflections": 2}}, "options.num_self_reflections"),
    ],
)
def test_the_logprob_scorer_refuses_what_it_cannot_do(fake: FakeOpenAI, options: dict[str, Any], key: str) -> None:
    kwargs = {"model": "gpt-x", "messages": MESSAGES, "logprobs": True}
    response = _client(fake).chat.completions.create(**kwargs)
    fake.requests.clear()
    with pytest.raises(InvalidOptionError) as info:
        tlm_hooks.score_completion(response, scorer=tlm_hooks.LogprobScorer(), options=options, **kwargs)
    assert info.value.key == key and "TLMScorer(" in str(info.value) and "leave scorer unset" in str(info.value)
    with pytest.raises(InvalidOptionError):
        tlm_hooks.patch(_client(fake), scorer=tlm_hooks.LogprobScorer(), **options)
    assert fake.requests == []  # refused before any call


def test_patch_with_a_preset_judges_with_the_hooked_client(fake: FakeOpenAI) -> None:
    client = tlm_hooks.patch(_client(fake), quality_preset="low")
    reply = client.chat.completions.create(model="gpt-x", messages=MESSAGES)
    assert {"self_reflection", "consistency"} <= set(reply.tlm_metadata["log"]["per_component_score"])
    assert len(fake.requests) > 1  # the answer, then the engine's judge calls on the same client
    assert {seen.body["model"] for seen in fake.requests} == {"gpt-x"}


@pytest.mark.parametrize("preset", [None, "base"])
def test_patch_without_a_preset_above_base_keeps_the_free_scorer(fake: FakeOpenAI, preset: str | None) -> None:
    client = tlm_hooks.patch(_client(fake), quality_preset=preset, options={"log": ["explanation"]})
    reply = client.chat.completions.create(model="gpt-x", messages=MESSAGES)
    assert reply.tlm_metadata["log"]["explanation"].startswith("Token probability")
    assert len(fake.requests) == 1


def test_trust_scored_with_a_preset_runs_the_engine(fake: FakeOpenAI) -> None:
    client = _client(fake)

    @tlm_hooks.trust_scored(**_judge_options(fake, "low"))
    def answer(prompt: str) -> str:
        return (
            client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": prompt}])
            .choices[0]
            .message.content
        )

    result = answer("What is 2+2?")
    assert "self_reflection" in result.tlm_metadata["log"]["per_component_score"]
    assert any(seen.body["model"] == JUDGE for seen in fake.requests)


def test_a_scorer_of_your_own_gets_the_options(fake: FakeOpenAI) -> None:
    seen: list[Any] = []

    def scorer(request: Any) -> float:
        seen.append(request.options)
        return 0.5

    client = tlm_hooks.patch(_client(fake), scorer=scorer, quality_preset="high")
    assert client.chat.completions.create(model="gpt-x", messages=MESSAGES).tlm_metadata["trustworthiness_score"] == 0.5
    assert seen[0].quality_preset == "high"


def test_route_sends_the_preset_to_the_backend(fake: FakeOpenAI) -> None:
    client = tlm_hooks.route(_client(fake), quality_preset="medium", options={"log": ["explanation"]})
    client.chat.completions.create(model="gpt-x", messages=MESSAGES)
    body = fake.requests[0].body
    assert body["quality_preset"] == "medium" and body["options"] == {"log": ["explanation"]}


def test_patch_all_with_a_preset_runs_the_engine(fake: FakeOpenAI) -> None:
    tlm_hooks.patch_all(quality_preset="low", sdks=("openai",))
    reply = _client(fake).chat.completions.create(model="gpt-x", messages=MESSAGES)
    assert "self_reflection" in reply.tlm_metadata["log"]["per_component_score"]
    with pytest.raises(InvalidOptionError):
        tlm_hooks.patch_all(scorer=tlm_hooks.LogprobScorer(), quality_preset="low", sdks=("openai",))
