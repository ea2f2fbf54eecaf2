"""LogprobScorer: aggregates computed from the given logprobs."""

from __future__ import annotations

import math

import pytest

from tlm_hooks.errors import InvalidOptionError
from tlm_hooks.options import TLMOptions
from tlm_hooks.scorers import LogprobScorer, Scorer
from tlm_hooks.types import ScoreRequest, TokenLogprob


def _request(logprobs, tokens=None, options=None) -> ScoreRequest:
    tokens = tokens or [f"t{i}" for i in range(len(logprobs or ()))]
    lps = None if logprobs is None else [TokenLogprob(tok, lp) for tok, lp in zip(tokens, logprobs, strict=True)]
    return ScoreRequest("".join(tokens), prompt="q", response_logprobs=lps, options=options)


def _expected(logprobs: list[float]) -> dict[str, float]:
    lps = [min(0.0, lp) for lp in logprobs]
    return {
        "geometric_mean": math.exp(sum(lps) / len(lps)),
        "mean": sum(math.exp(lp) for lp in lps) / len(lps),
        "min": math.exp(min(lps)),
    }


CASES = [
    [-0.1, -2.0],
    [0.0],
    [-0.5, -0.5, -0.5],
    [-3.0, -0.01, -1.2, -0.7],
    [-800.0, 0.0],  # far below exp's underflow point
    [0.3, -1.0],  # slightly positive logprobs (rounding) count as probability 1
]


@pytest.mark.parametrize("logprobs", CASES, ids=repr)
@pytest.mark.parametrize("aggregate", ["geometric_mean", "mean", "min"])
def test_aggregates(logprobs: list[float], aggregate: str) -> None:
    expected = _expected(logprobs)
    result = LogprobScorer(aggregate).score(_request(logprobs))  # type: ignore[arg-type]
    assert result.ok
    assert result.trustworthiness_score == pytest.approx(expected[aggregate], rel=1e-9, abs=0)
    assert result.components == pytest.approx(
        {f"token_probability_{name}": value for name, value in expected.items()}, rel=1e-9, abs=0
    )


def test_worked_example_from_the_brief() -> None:
    request = _request([-0.1, -2.0])
    assert LogprobScorer().score(request).trustworthiness_score == pytest.approx(math.exp(-1.05))
    assert LogprobScorer("min").score(request).trustworthiness_score == pytest.approx(math.exp(-2.0))
    assert LogprobScorer("mean").score(request).trustworthiness_score == pytest.approx(
        (math.exp(-0.1) + math.exp(-2.0)) / 2
    )


def test_impossible_token_gives_zero() -> None:
    result = LogprobScorer().score(_request([-0.1, -math.inf]))
    assert result.trustworthiness_score == 0.0
    assert result.components["token_probability_min"] == 0.0
    assert result.components["token_probability_mean"] == pytest.approx(math.exp(-0.1) / 2)


def test_nan_logprobs_are_ignored() -> None:
    result = LogprobScorer("min").score(_request([math.nan, -0.4]))
    assert result.trustworthiness_score == pytest.approx(math.exp(-0.4))


@pytest.mark.parametrize("logprobs", [None, [], [math.nan]], ids=repr)
def test_missing_logprobs_is_a_failed_result_with_advice(logprobs) -> None:
    result = LogprobScorer().score(_request(logprobs))
    assert result.trustworthiness_score is None
    assert not result.ok
    assert result.error_type == "MissingLogprobs"
    assert "logprobs=True" in result.error  # tells the user what to do


def test_explanation_only_when_asked_and_names_least_likely_token() -> None:
    tokens, logprobs = ["Paris", " is", " maybe"], [-0.05, -0.2, -2.5]
    asked = LogprobScorer().score(_request(logprobs, tokens, TLMOptions(options={"log": ["explanation"]})))
    assert asked.explanation is not None
    assert repr(" maybe") in asked.explanation
    assert f"{math.exp(-2.5):.2f}" in asked.explanation
    assert LogprobScorer().score(_request(logprobs, tokens)).explanation is None
    not_asked = TLMOptions(options={"log": ["per_component_score"]})
    assert LogprobScorer().score(_request(logprobs, tokens, not_asked)).explanation is None


@pytest.mark.parametrize("aggregate", ["median", "", None, "MIN"])
def test_bad_aggregate(aggregate) -> None:
    with pytest.raises(InvalidOptionError) as info:
        LogprobScorer(aggregate)  # type: ignore[arg-type]
    message = str(info.value)
    assert info.value.key == "aggregate"
    assert repr(aggregate) in message
    for name in ("geometric_mean", "mean", "min"):
        assert repr(name) in message


def test_wants_logprobs_switch_and_protocol() -> None:
    assert LogprobScorer().wants_logprobs is True
    assert LogprobScorer(request_logprobs=False).wants_logprobs is False
    assert isinstance(LogprobScorer(), Scorer)


async def test_async_form_and_batches_match_sync() -> None:
    scorer = LogprobScorer("min")
    requests = [_request(lps) for lps in CASES]
    expected = [scorer.score(r) for r in requests]
    assert await scorer.ascore(requests[0]) == expected[0]
    assert await scorer.ascore_batch(requests) == expected
    assert scorer.score_batch(requests) == expected
