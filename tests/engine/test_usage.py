"""``log.usage``: judge calls and tokens as the loopback judge saw them, and their cost from prices the
user gives or from litellm's table; asked for with ``options.log: ["usage"]`` in every entry point."""

from __future__ import annotations

import asyncio
import importlib.util
import math
from collections.abc import Iterator

import pytest

from engine.judge_server import JudgeServer, judge_server
from tlm_hooks import TLM, ScoreRequest, TLMScorer, TokenLogprob
from tlm_hooks.llm import OpenAICompatibleBackend, RetryPolicy
from tlm_hooks.llm.usage import Usage
from tlm_hooks.scorers.cost import check_prices, usage_log

SURE = (TokenLogprob("4", math.log(0.9)),)


@pytest.fixture
def judge() -> Iterator[JudgeServer]:
    with judge_server(refuse_n=False, delay=0.0) as server:
        yield server


def backend(server: JudgeServer, model: str = "judge-model") -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(model=model, base_url=server.url, api_key="k", retry=RetryPolicy(max_retries=0))


def req() -> ScoreRequest:
    return ScoreRequest(prompt="What is 2+2?", response="4", response_logprobs=SURE)


def _tokens_seen(server: JudgeServer) -> tuple[int, int]:
    # the judge server reports chars // 4 prompt tokens and n completion tokens per request
    return sum(a.chars // 4 for a in server.asked), sum(a.n for a in server.asked)


def test_usage_counts_what_the_judge_saw_and_prices_it(judge: JudgeServer) -> None:
    scorer = TLMScorer(
        "medium", options={"log": ["usage"]}, judge=backend(judge), cache=False, prices={"judge-model": (2.0, 8.0)}
    )
    result = asyncio.run(scorer.ascore(req()))
    usage = result.log["usage"]
    prompt, completion = _tokens_seen(judge)
    assert usage["judge_calls"] == len(judge.asked) > 1
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (prompt, completion)
    assert usage["cost_usd"] == pytest.approx((prompt * 2.0 + completion * 8.0) / 1e6)
    assert usage["priced_by"] == "prices" and usage["judge_models"] == ["judge-model"]
    assert result.to_dict()["log"]["usage"] == usage


def test_no_usage_unless_asked_and_unknown_price_is_null(judge: JudgeServer) -> None:
    plain = asyncio.run(TLMScorer("low", judge=backend(judge, "no-such-model-xyz"), cache=False).ascore(req()))
    assert "usage" not in plain.log
    asked = TLMScorer("low", options={"log": ["usage"]}, judge=backend(judge, "no-such-model-xyz"), cache=False)
    usage = asyncio.run(asked.ascore(req())).log["usage"]
    assert usage["judge_calls"] > 0 and usage["cost_usd"] is None and usage["priced_by"] is None


def test_tlm_returns_usage_in_its_log(judge: JudgeServer) -> None:
    scorer = TLMScorer("low", options={"log": ["usage"]}, judge=backend(judge), prices={"judge-model": (1, 1)})
    tlm = TLM("low", options={"log": ["usage"]}, scorer=scorer)
    out = tlm.get_trustworthiness_score("What is 2+2?", "4")
    assert out["log"]["usage"]["judge_calls"] == len(judge.asked) > 0
    assert out["log"]["usage"]["cost_usd"] > 0


@pytest.mark.skipif(importlib.util.find_spec("litellm") is None, reason="litellm is not installed (extra [litellm])")
def test_litellm_price_table_prices_a_known_model(judge: JudgeServer) -> None:
    import litellm

    entry = litellm.model_cost["gpt-4o-mini"]
    scorer = TLMScorer("low", options={"log": ["usage"]}, judge=backend(judge, "gpt-4o-mini"), cache=False)
    usage = asyncio.run(scorer.ascore(req())).log["usage"]
    prompt, completion = _tokens_seen(judge)
    expected = prompt * entry["input_cost_per_token"] + completion * entry["output_cost_per_token"]
    assert usage["priced_by"] == "litellm" and usage["cost_usd"] == pytest.approx(expected)
    # a price the user gives wins over the table
    usage = usage_log(_usage("gpt-4o-mini", 1_000_000, 0), {"gpt-4o-mini": (3.0, 0.0)})
    assert usage["cost_usd"] == pytest.approx(3.0) and usage["priced_by"] == "prices"


def _usage(model: str, prompt: int, completion: int) -> Usage:
    usage = Usage()
    usage.add(prompt, completion, model=model)
    return usage


def test_prices_without_a_provider_prefix_and_zero_calls() -> None:
    usage = usage_log(_usage("openai/my-judge", 500_000, 250_000), {"my-judge": (1.0, 4.0)})
    assert usage["cost_usd"] == pytest.approx(0.5 + 1.0)
    assert usage_log(Usage(), {})["cost_usd"] == 0.0


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ([("m", 1, 2)], "prices must be"),
        ({"m": 1.0}, r"prices\['m'\] must be \(input, output\)"),
        ({"m": (1.0, -2.0)}, ">= 0"),
        ({"m": (1.0, float("nan"))}, ">= 0"),
        ({"m": (True, 1.0)}, ">= 0"),
        ({"": (1.0, 1.0)}, "non-empty model name"),
    ],
)
def test_bad_prices_are_refused_before_any_call(prices: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_prices(prices)
    with pytest.raises(ValueError, match=message):
        TLMScorer("low", prices=prices)  # type: ignore[arg-type]
    given = {"m": [1, 2]}
    assert check_prices(given) == {"m": (1.0, 2.0)} and given == {"m": [1, 2]}  # not mutated
