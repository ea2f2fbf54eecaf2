"""TLMScorer with a scripted judge: presets, overrides, signals, concurrency, explanations, failures."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from engine.conftest import FakeJudge
from tlm_hooks import ScoreRequest, TLMScorer, TokenLogprob
from tlm_hooks.scorers.signals.presets import PRESET_PLANS
from tlm_hooks.scorers.signals.weights import SIGNAL_WEIGHTS, combine

QUESTION = "What is 2+2?"
SURE = (TokenLogprob("4", math.log(0.9)),)


def request(response: str = "4", *, logprobs=SURE, **kwargs) -> ScoreRequest:
    return ScoreRequest(prompt=kwargs.pop("prompt", QUESTION), response=response, response_logprobs=logprobs, **kwargs)


# -- presets = work done -----------------------------------------------------------------------


@pytest.mark.parametrize(("preset", "calls"), [("base", 0), ("low", 2), ("medium", 3), ("high", 4), ("best", 6)])
async def test_preset_call_counts(judge: FakeJudge, preset: str, calls: int) -> None:
    plan = PRESET_PLANS[preset]
    assert calls == plan.reflections + (1 if plan.samples else 0)  # the documented formula
    result = await TLMScorer(preset, judge=judge).ascore(request())
    assert result.ok
    assert len(judge.calls) == calls
    assert result.components["llm_calls"] == calls
    samples = [c for c in judge.calls if c.kind == "sample"]
    assert [c.n for c in samples] == ([plan.samples] if plan.samples else [])  # one request with n=k


async def test_medium_signals_and_components(judge: FakeJudge) -> None:
    result = await TLMScorer("medium", judge=judge).ascore(request())
    comps = result.components
    assert set(comps) == {"token_probability", "self_reflection", "consistency", "llm_calls", "llm_tokens"}
    assert comps["self_reflection"] == 1.0 and comps["consistency"] == 1.0
    assert comps["token_probability"] == pytest.approx(0.9)
    assert comps["llm_tokens"] == 2 * (3 + 1) + 4 * (3 + 2)  # as the fake judge reports them
    assert result.trustworthiness_score == pytest.approx(combine(comps, "default"))
    kinds = sorted(judge.kinds())
    assert kinds == ["letter", "sample", "word_yes"]


async def test_base_without_logprobs_falls_back_to_one_reflection_and_says_so(judge: FakeJudge) -> None:
    scorer = TLMScorer("base", options={"log": ["explanation"]}, judge=judge)
    result = await scorer.ascore(request(logprobs=None))
    assert len(judge.calls) == 1 and judge.calls[0].kind == "word_yes"
    assert set(result.components) == {"self_reflection", "llm_calls", "llm_tokens"}
    assert "no token logprobs" in (result.explanation or "")


async def test_base_with_logprobs_is_token_probability_only(judge: FakeJudge) -> None:
    result = await TLMScorer("base", judge=judge).ascore(request())
    assert judge.calls == []
    assert result.trustworthiness_score == pytest.approx(0.9)
    assert result.components["llm_calls"] == 0


async def test_overrides_and_repeated_reflections(judge: FakeJudge) -> None:
    opts = {"num_self_reflections": 7, "num_consistency_samples": 0}
    result = await TLMScorer("low", options=opts, judge=judge).ascore(request())
    assert result.ok and len(judge.calls) == 7 and "sample" not in judge.kinds()
    repeats = judge.calls[5:]
    assert all(c.temperature > 0 for c in repeats) and len({c.seed for c in repeats}) == 2
    assert "consistency" not in result.components


async def test_request_options_override_the_scorer(judge: FakeJudge) -> None:
    from tlm_hooks import TLMOptions

    result = await TLMScorer("best", judge=judge).ascore(request(options=TLMOptions("low")))
    assert result.ok and len(judge.calls) == 2


async def test_semantic_similarity_asks_the_judge_per_sample(judge: FakeJudge) -> None:
    judge.agree = "no"
    result = await TLMScorer("medium", options={"similarity_measure": "semantic"}, judge=judge).ascore(request())
    assert judge.kinds().count("agreement") == PRESET_PLANS["medium"].samples
    assert result.components["llm_calls"] == 3 + PRESET_PLANS["medium"].samples
    assert result.components["consistency"] == 0.0


async def test_classification_agrees_on_labels(judge: FakeJudge) -> None:
    judge.samples = ("The sentiment is negative.", "negative")
    scorer = TLMScorer(
        "medium", task="classification", options={"constrain_outputs": ["positive", "negative"]}, judge=judge
    )
    wrong = await scorer.ascore(request("positive", prompt="Sentiment of: I hated it"))
    right = await scorer.ascore(request("Negative", prompt="Sentiment of: I hated it"))
    assert wrong.components["consistency"] == 0.0 and right.components["consistency"] == 1.0


# -- the signals move the score the right way -----------------------------------------------------


async def test_disagreement_and_bad_verdicts_lower_the_score() -> None:
    good = await TLMScorer("medium", judge=FakeJudge()).ascore(request("4"))
    bad_judge = FakeJudge(verdict="bad", samples=("4", "four", "4.0"))
    wrong = await TLMScorer("medium", judge=bad_judge).ascore(request("17"))
    assert wrong.components["consistency"] == 0.0 and wrong.components["self_reflection"] == 0.0
    assert wrong.trustworthiness_score < good.trustworthiness_score


async def test_logprob_weighted_verdicts_are_used() -> None:
    def unsure(answer: str) -> tuple[TokenLogprob, ...]:
        other = {"yes": "no", "A": "B"}.get(answer, answer)
        return (TokenLogprob(answer, math.log(0.7), ((answer, math.log(0.7)), (other, math.log(0.3)))),)

    judge = FakeJudge(verdict_logprobs=unsure)
    result = await TLMScorer("medium", options={"num_consistency_samples": 0}, judge=judge).ascore(request())
    assert result.components["self_reflection"] == pytest.approx(0.7)


# -- explanations ------------------------------------------------------------------------------------


async def test_explanation_names_consistency_and_quotes_a_disagreeing_answer() -> None:
    judge = FakeJudge(samples=("The answer is 4.", "4", "It is 4"))
    scorer = TLMScorer("medium", options={"log": ["explanation"]}, judge=judge)
    result = await scorer.ascore(request("2+2 is 17", logprobs=None))
    text = result.explanation or ""
    assert "observed consistency" in text and "0 of 4 sampled answers agreed" in text
    assert '"The answer is 4."' in text or '"4"' in text or '"It is 4"' in text


async def test_explanation_names_self_reflection_when_the_judge_objects() -> None:
    judge = FakeJudge(verdict="bad")
    result = await TLMScorer("medium", options={"log": ["explanation"]}, judge=judge).ascore(request("4"))
    assert "self-reflection" in (result.explanation or "") and "2 of 2 checks" in (result.explanation or "")


async def test_no_explanation_unless_asked(judge: FakeJudge) -> None:
    assert (await TLMScorer("medium", judge=judge).ascore(request())).explanation is None


# -- speed: all calls of one score at once, bounded ------------------------------------------------


async def test_all_calls_of_one_score_are_in_flight_together() -> None:
    judge = FakeJudge(delay=0.2)
    started = time.perf_counter()
    result = await TLMScorer("best", judge=judge).ascore(request())
    elapsed = time.perf_counter() - started
    assert result.ok and judge.peak == 6
    assert elapsed < 0.2 * 2


async def test_concurrency_is_bounded() -> None:
    judge = FakeJudge(delay=0.01)
    await TLMScorer("best", judge=judge, max_concurrency=2).ascore(request())
    assert judge.peak == 2


# -- failures ----------------------------------------------------------------------------------------


async def test_a_failing_part_is_left_out_and_noted() -> None:
    judge = FakeJudge(fail_kinds=frozenset({"sample"}))
    result = await TLMScorer("medium", options={"log": ["explanation"]}, judge=judge).ascore(request())
    assert result.ok and "consistency" not in result.components
    assert "1 judge call(s) failed" in (result.explanation or "")


async def test_all_calls_failing_gives_a_failed_result_not_an_exception() -> None:
    judge = FakeJudge(fail_if="2+2")
    result = await TLMScorer("medium", judge=judge).ascore(request(logprobs=None))
    assert not result.ok and "scripted judge failure" in (result.error or "")


async def test_batch_keeps_order_and_isolates_failures() -> None:
    judge = FakeJudge(fail_if="BROKEN")
    scorer = TLMScorer("low", judge=judge)
    items = [request("4"), request("4", prompt="BROKEN question", logprobs=None), request("4", logprobs=None)]
    results = await scorer.ascore_batch(items)
    assert [r.ok for r in results] == [True, False, True]
    sync_results = scorer.score_batch(items)
    assert [r.ok for r in sync_results] == [True, False, True]


def test_sync_score_works_inside_a_running_loop(judge: FakeJudge) -> None:
    scorer = TLMScorer("low", judge=judge)

    async def inside() -> float | None:
        return scorer.score(request()).trustworthiness_score

    assert asyncio.run(inside()) is not None


# -- weights ------------------------------------------------------------------------------------------


def test_weights_are_explicit_and_renormalised() -> None:
    for table in SIGNAL_WEIGHTS.values():
        assert sum(table.values()) == pytest.approx(1.0)
    assert combine({"self_reflection": 0.4}, "default") == pytest.approx(0.4)
    with pytest.raises(ValueError):
        combine({}, "default")


# -- generation -----------------------------------------------------------------------------------------


async def test_agenerate_low_scores_the_greedy_answer(judge: FakeJudge) -> None:
    text, result = await TLMScorer("low", judge=judge).agenerate(QUESTION)
    assert text == "4" and result.ok
    assert judge.kinds() == ["other", "word_yes", "sample"] or sorted(judge.kinds()[1:]) == ["sample", "word_yes"]
    assert result.components["llm_calls"] == 3


async def test_agenerate_high_returns_the_most_trustworthy_candidate() -> None:
    judge = FakeJudge(samples=("five", "4", "four", "4"), verdict_for=lambda text: "good" if "five" in text else "bad")
    text, result = await TLMScorer("high", judge=judge).agenerate([{"role": "user", "content": QUESTION}])
    assert text == "five"
    plan = PRESET_PLANS["high"]
    # greedy + one sampling request + reflections for each distinct candidate (greedy "five" dedups)
    candidates = 3
    assert result.components["llm_calls"] == 2 + candidates * plan.reflections


async def test_agenerate_high_overlaps_generation_and_sampling() -> None:
    judge = FakeJudge(delay=0.15, samples=("4", "four", "5"))
    started = time.perf_counter()
    text, result = await TLMScorer("high", judge=judge).agenerate(QUESTION)
    assert result.ok and judge.peak >= 2
    assert time.perf_counter() - started < 0.15 * 2.9  # two rounds (answers, then reflections), not three
