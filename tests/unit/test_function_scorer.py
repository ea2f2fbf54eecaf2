"""FunctionScorer: user functions (sync or async) as scorers."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tlm_hooks.scorers import FunctionScorer
from tlm_hooks.types import ScoreRequest, TrustResult


def _req(response: str = "abcd") -> ScoreRequest:
    return ScoreRequest(response, prompt="q")


def length_score(request: ScoreRequest) -> float:
    return len(request.response) / 10


async def async_length_score(request: ScoreRequest) -> float:
    await asyncio.sleep(0)
    return len(request.response) / 10


@pytest.mark.parametrize("fn", [length_score, async_length_score])
def test_sync_and_async_functions_score(fn) -> None:
    scorer = FunctionScorer(fn)
    assert scorer.score(_req("abcd")).trustworthiness_score == pytest.approx(0.4)
    assert asyncio.run(scorer.ascore(_req("abcdef"))).trustworthiness_score == pytest.approx(0.6)


def test_function_receives_the_request() -> None:
    seen = []
    request = _req()
    FunctionScorer(lambda r: seen.append(r) or 1.0).score(request)
    assert seen == [request] and seen[0] is request


def test_returns_trust_result_as_is() -> None:
    result = TrustResult(0.3, explanation="mine")
    assert FunctionScorer(lambda r: result).score(_req()) is result


def test_returns_int_as_float() -> None:
    assert FunctionScorer(lambda r: 1).score(_req()).trustworthiness_score == 1.0


def test_returns_dict() -> None:
    scorer = FunctionScorer(
        lambda r: {"trustworthiness_score": len(r.response) / 10, "log": {"explanation": r.response}}
    )
    result = scorer.score(_req("abc"))
    assert result.trustworthiness_score == pytest.approx(0.3)
    assert result.explanation == "abc"
    failed = FunctionScorer(lambda r: {"trustworthiness_score": None, "error": "judge down"}).score(_req())
    assert failed.error == "judge down" and not failed.ok


@pytest.mark.parametrize(
    ("value", "type_name"),
    [("0.9", "str"), (None, "NoneType"), (True, "bool"), ([0.5], "list"), (object(), "object")],
)
def test_bad_return_type(value, type_name: str) -> None:
    def judge(request):
        return value

    with pytest.raises(TypeError) as info:
        FunctionScorer(judge).score(_req())
    message = str(info.value)
    assert f"returned {type_name}" in message
    assert "judge" in message
    assert "float" in message and "TrustResult" in message and "dict" in message


def test_dict_without_score_is_rejected() -> None:
    with pytest.raises(TypeError) as info:
        FunctionScorer(lambda r: {"score": 0.9}).score(_req())
    assert "trustworthiness_score" in str(info.value)


def test_out_of_range_return_rejected() -> None:
    with pytest.raises(ValueError):
        FunctionScorer(lambda r: 1.5).score(_req())


def test_not_callable() -> None:
    with pytest.raises(TypeError) as info:
        FunctionScorer(0.5)  # type: ignore[arg-type]
    assert "float" in str(info.value)


def test_wants_logprobs_and_concurrency_settings() -> None:
    assert FunctionScorer(length_score).wants_logprobs is False
    scorer = FunctionScorer(length_score, wants_logprobs=True, max_concurrency=3)
    assert scorer.wants_logprobs is True and scorer.max_concurrency == 3


async def test_score_works_inside_a_running_loop_for_async_fn() -> None:
    scorer = FunctionScorer(async_length_score)
    assert scorer.score(_req("abcdefg")).trustworthiness_score == pytest.approx(0.7)


async def test_ascore_of_async_fn_runs_on_the_callers_loop() -> None:
    loops = []

    async def judge(request):
        loops.append(asyncio.get_running_loop())
        return 0.5

    await FunctionScorer(judge).ascore(_req())
    assert loops == [asyncio.get_running_loop()]


async def test_async_callable_object_detected() -> None:
    class Judge:
        async def __call__(self, request):
            return 0.25

    assert (await FunctionScorer(Judge()).ascore(_req())).trustworthiness_score == 0.25
    assert FunctionScorer(Judge()).score(_req()).trustworthiness_score == 0.25


async def test_ascore_of_slow_sync_fn_does_not_block_the_loop() -> None:
    main_thread = threading.get_ident()
    ran_on = []

    def slow(request):
        ran_on.append(threading.get_ident())
        time.sleep(0.2)
        return 0.9

    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        result = await FunctionScorer(slow).ascore(_req())
    finally:
        task.cancel()
    assert result.trustworthiness_score == 0.9
    assert ran_on and ran_on[0] != main_thread
    assert ticks >= 5  # ~20 expected; a blocked loop gives 0


async def test_batches_with_function_scorer() -> None:
    requests = [_req("a" * n) for n in (3, 1, 7)]
    expected = [n / 10 for n in (3, 1, 7)]
    for fn in (length_score, async_length_score):
        scorer = FunctionScorer(fn)
        assert [r.trustworthiness_score for r in await scorer.ascore_batch(requests)] == pytest.approx(expected)
        assert [r.trustworthiness_score for r in scorer.score_batch(requests)] == pytest.approx(expected)
