"""The engine on the real embedded model: directly (LocalBackend) and over HTTP through
`tlm_hooks.server` (OpenAICompatibleBackend). No hard-coded scores: only relations that a
broken engine would fail."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from tlm_hooks import TLM, ScoreRequest, TLMScorer
from tlm_hooks.llm import ChatBackend, LocalBackend, OpenAICompatibleBackend

pytestmark = pytest.mark.embedded_model

QUESTION = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture(scope="module")
def model() -> Any:
    from tlm_hooks.local import get_default_model

    return get_default_model()


@pytest.fixture(scope="module")
def server_url(model: Any) -> Iterator[str]:
    from tlm_hooks.server.app import create_app
    from tlm_hooks.server.runner import ServerThread

    with ServerThread(create_app(model)) as running:
        yield f"{running.base_url}/v1"


def _judges(model: Any, server_url: str) -> dict[str, ChatBackend]:
    return {
        "local": LocalBackend(model),
        "http": OpenAICompatibleBackend(model=model.name, base_url=server_url, api_key="x", timeout=60.0),
    }


@pytest.mark.parametrize("via", ["local", "http"])
async def test_wrong_answer_is_less_consistent_than_the_models_own(model: Any, server_url: str, via: str) -> None:
    judge = _judges(model, server_url)[via]
    greedy = (await judge.acomplete(QUESTION, max_tokens=32, logprobs=True))[0]
    assert greedy.logprobs, "the judge should return real logprobs"
    samples = 5
    options = {"num_self_reflections": 1, "num_consistency_samples": samples, "log": ["explanation"]}
    scorer = TLMScorer("medium", options=options, judge=judge)
    random.seed(1234)  # the sample seeds
    own = await scorer.ascore(
        ScoreRequest(messages=tuple(QUESTION), response=greedy.text, response_logprobs=greedy.logprobs)
    )
    random.seed(1234)
    wrong = await scorer.ascore(ScoreRequest(messages=tuple(QUESTION), response="2+2 is 17"))
    for result in (own, wrong):
        assert result.ok, result.error
        assert 0.0 <= result.trustworthiness_score <= 1.0  # type: ignore[operator]
        assert all(0.0 <= result.components[k] <= 1.0 for k in ("self_reflection", "consistency"))
        honoured = getattr(judge, "n_honoured", False)
        assert result.components["llm_calls"] == 1 + (1 if honoured else samples)
        assert result.components["llm_tokens"] > 0
    assert "4" in greedy.text
    assert wrong.components["consistency"] < own.components["consistency"]
    assert "token_probability" in own.components and "token_probability" not in wrong.components
    assert "disagreeing answer" in (wrong.explanation or "")


def test_tlm_prompt_with_the_embedded_model(model: Any) -> None:
    tlm = TLM("base", scorer=TLMScorer("base", judge=LocalBackend(model)))
    out = tlm.prompt("What is 2+2?")
    assert set(out) == {"response", "trustworthiness_score"} and "4" in out["response"]
    assert 0.0 < out["trustworthiness_score"] <= 1.0  # base: the greedy answer's own token probability


async def test_a_prompt_beyond_the_models_context_keeps_its_question_and_says_so(model: Any) -> None:
    judge = LocalBackend(model)  # the default judge; over HTTP the refusal is a 400 (tests/engine/test_coverage.py)
    filler = " ".join(f"Archive line {i}: nothing to see here." for i in range(2400))[:83_000]
    messages = ({"role": "user", "content": f"{filler}\n\nWhat is 2+2?"},)
    options = {"num_self_reflections": 1, "num_consistency_samples": 2}
    result = await TLMScorer("low", options=options, judge=judge).ascore(ScoreRequest(messages=messages, response="4"))
    assert result.ok, result.error
    assert {"self_reflection", "consistency"} <= set(result.components)
    assert result.signals["consistency"] == {"asked": 2, "ran": 2}
    assert result.warnings[0].startswith("prompt cut to 4,000 of 83,")
    assert result.warnings[1].startswith("consistency: the prompt (83,") and "context window" in result.warnings[1]
