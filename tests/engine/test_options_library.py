"""The options that act around a score are honoured by the library as by the server: ``max_timeout``
gives the score up, ``disable_trustworthiness`` makes no judge call, ``log: ["perplexity"]`` is
filled in, for ``TLMScorer``, ``TLM`` (with any scorer) and patched clients."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from fake_openai import FakeOpenAI

import tlm_hooks
from engine.judge_server import JudgeServer, judge_server
from tlm_hooks import TLM, ScoreRequest, TLMScorer, TokenLogprob
from tlm_hooks.llm import OpenAICompatibleBackend, RetryPolicy
from tlm_hooks.options import TLMOptions
from tlm_hooks.scorers import FunctionScorer
from tlm_hooks.scorers.asked import DISABLED, NO_LOGPROBS
from tlm_hooks.types import TrustResult

SURE = (TokenLogprob("4", math.log(0.9)), TokenLogprob(".", math.log(0.8)))


@pytest.fixture
def slow_judge() -> Iterator[JudgeServer]:
    with judge_server(refuse_n=False, delay=4.0) as server:
        yield server


def backend(server: JudgeServer) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(model="judge-model", base_url=server.url, api_key="k", retry=RetryPolicy(max_retries=0))


def req(logprobs: Any = SURE, **options: Any) -> ScoreRequest:
    return ScoreRequest(prompt="What is 2+2?", response="4.", response_logprobs=logprobs, options=TLMOptions(options=options))


def test_max_timeout_gives_a_slow_score_up(slow_judge: JudgeServer) -> None:
    scorer = TLMScorer("low", judge=backend(slow_judge), cache=False)
    started = time.monotonic()
    result = asyncio.run(scorer.ascore(req(max_timeout=0.4)))
    elapsed = time.monotonic() - started
    assert not result.ok and result.error_type == "ScoringTimeout"
    assert "options.max_timeout=0.4s" in (result.error or "")
    assert elapsed < 3.0  # the judge answers after 4 s: the score was given up, not waited for


def test_max_timeout_in_the_scorer_options_and_through_tlm(slow_judge: JudgeServer) -> None:
    scorer = TLMScorer("low", options={"max_timeout": 0.4}, judge=backend(slow_judge), cache=False)
    tlm = TLM("low", options={"max_timeout": 0.4}, scorer=scorer)
    started = time.monotonic()
    with pytest.raises(tlm_hooks.TrustScoringError, match="max_timeout"):
        tlm.get_trustworthiness_score("What is 2+2?", "4")
    assert time.monotonic() - started < 3.0


def test_disable_trustworthiness_makes_no_judge_call(slow_judge: JudgeServer) -> None:
    scorer = TLMScorer("medium", judge=backend(slow_judge), cache=False)
    result = asyncio.run(scorer.ascore(req(disable_trustworthiness=True, log=["usage"])))
    assert result.trustworthiness_score is None and result.error is None
    assert result.warnings == (DISABLED,) and slow_judge.asked == []
    assert result.log["usage"]["judge_calls"] == 0
    tlm = TLM("medium", options={"disable_trustworthiness": True}, scorer=scorer)
    assert tlm.get_trustworthiness_score("q", "a") == {"trustworthiness_score": None, "log": {"warnings": [DISABLED]}}
    assert slow_judge.asked == []


def test_perplexity_is_filled_in_or_said_to_be_missing() -> None:
    scorer = TLMScorer("base", cache=False)  # token probability only: no judge call
    with_logprobs = asyncio.run(scorer.ascore(req(log=["perplexity"])))
    assert with_logprobs.log["perplexity"] == pytest.approx(math.sqrt(0.9 * 0.8))
    assert NO_LOGPROBS not in with_logprobs.warnings
    assert "perplexity" not in asyncio.run(scorer.ascore(req())).log


def test_tlm_with_any_scorer_takes_the_same_path() -> None:
    seen: list[ScoreRequest] = []

    def scorer(request: ScoreRequest) -> TrustResult:
        seen.append(request)
        return TrustResult(0.7)

    tlm = TLM("low", options={"log": ["perplexity", "usage"]}, scorer=FunctionScorer(scorer))
    out = tlm.get_trustworthiness_score("q", "a")
    assert out["trustworthiness_score"] == 0.7
    assert out["log"]["perplexity"] is None and out["log"]["warnings"] == [NO_LOGPROBS]  # said once
    assert out["log"]["usage"]["judge_calls"] == 0
    disabled = TLM("low", options={"disable_trustworthiness": True}, scorer=FunctionScorer(scorer))
    assert disabled.get_trustworthiness_score("q", "a")["trustworthiness_score"] is None
    assert len(seen) == 1  # the disabled score never reached the scorer


def test_a_patched_client_carries_usage(fake: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake.url, api_key="test-key", max_retries=0)
    provider = {"api_base": fake.url, "api_key": "judge-key"}
    options = {"model": "judge-model", "model_provider": provider, "log": ["usage"]}
    tlm_hooks.patch(client, quality_preset="low", options=options)
    response = client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "2+2?"}])
    usage = response.tlm_metadata["log"]["usage"]
    judge_calls = [seen for seen in fake.requests if seen.body["model"] == "judge-model"]
    assert usage["judge_calls"] == len(judge_calls) > 0


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_patched_client_on_token_probabilities_fills_in_log_options(fake: FakeOpenAI, is_async: bool) -> None:
    kind = openai.AsyncOpenAI if is_async else openai.OpenAI
    client = tlm_hooks.patch(kind(base_url=fake.url, api_key="test-key", max_retries=0),
                             options={"log": ["perplexity", "usage"]})  # fmt: skip
    kwargs: dict[str, Any] = {"model": "gpt-x", "messages": [{"role": "user", "content": "2+2?"}]}
    create = client.chat.completions.create
    response = asyncio.run(create(**kwargs)) if is_async else create(**kwargs)
    log = response.tlm_metadata["log"]
    assert 0 < log["perplexity"] < 1 and log["usage"]["judge_calls"] == 0
    assert len(fake.requests) == 1  # the call itself, no judge


def test_a_patched_client_with_its_own_scorer_honours_disable_trustworthiness(fake: FakeOpenAI) -> None:
    seen: list[ScoreRequest] = []

    def scorer(request: ScoreRequest) -> TrustResult:
        seen.append(request)
        return TrustResult(0.5)

    client = tlm_hooks.patch(openai.OpenAI(base_url=fake.url, api_key="test-key", max_retries=0),
                             scorer=scorer, options={"disable_trustworthiness": True})  # fmt: skip
    response = client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "2+2?"}])
    assert response.tlm_metadata["trustworthiness_score"] is None and seen == []
    assert DISABLED in response.tlm_metadata["log"]["warnings"]
