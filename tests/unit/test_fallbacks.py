"""Each built-in fallback, sync and async, against the fake ResponseOps."""

from __future__ import annotations

import asyncio
import gc
import queue
import threading
import time
import warnings
from typing import Any

import pytest

from tlm_hooks.errors import InvalidOptionError, UntrustworthyResponseError
from tlm_hooks.fallbacks import (
    DEFAULT_HOLDING,
    AppendWarning,
    Escalate,
    HumanReview,
    Raise,
    Regenerate,
    ReplaceResponse,
)
from tlm_hooks.policy import LowTrustEvent, TrustPolicy, arun_policy, run_policy

from ._fakes import FakeClient, FakeOps, make_event, resp

MODES = ["sync", "async"]


def call(handler: Any, event: LowTrustEvent, mode: str) -> Any:
    """Run a fallback the way a sync or an async hooked call would (no loop running here)."""
    if mode == "sync":
        return handler.handle(event)
    return asyncio.run(handler.ahandle(event))


def run(policy: TrustPolicy, event: LowTrustEvent, mode: str) -> Any:
    if mode == "sync":
        return run_policy(policy, event)
    return asyncio.run(arun_policy(policy, event))


# --- AppendWarning --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_append_warning_formats_score_and_threshold(mode: str) -> None:
    template = "\n[score {score:.3f} below {threshold}]"
    event = make_event(0.2, threshold=0.65, text="Paris")
    original = dict(event.response)
    out = call(AppendWarning(template), event, mode)
    assert out["text"] == "Paris" + template.format(score=0.2, threshold=0.65)
    assert out["text"].endswith("[score 0.200 below 0.65]")
    assert event.response == original  # a new response, the old one untouched


@pytest.mark.parametrize("mode", MODES)
def test_append_warning_default_text_shows_score(mode: str) -> None:
    out = call(AppendWarning(), make_event(0.137, text="A"), mode)
    assert out["text"].startswith("A\n")
    assert f"{0.137:.2f}" in out["text"]


def test_append_warning_rejects_non_text() -> None:
    with pytest.raises(InvalidOptionError) as info:
        AppendWarning(3)  # type: ignore[arg-type]
    assert info.value.key == "AppendWarning.text"


@pytest.mark.parametrize("mode", MODES)
def test_append_warning_in_policy_is_recorded(mode: str) -> None:
    response, result = run(TrustPolicy(0.5, [AppendWarning("!")]), make_event(0.3, text="t"), mode)
    assert response["text"] == "t!"
    assert result.fallbacks == ("append_warning",)


# --- ReplaceResponse ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_replace_with_text(mode: str) -> None:
    out = call(ReplaceResponse("I don't know (score {score:.1f})."), make_event(0.2), mode)
    assert out["text"] == "I don't know (score 0.2)."


@pytest.mark.parametrize("mode", MODES)
def test_replace_default_text(mode: str) -> None:
    out = call(ReplaceResponse(), make_event(0.2, text="wrong"), mode)
    assert out["text"] != "wrong" and out["text"]


@pytest.mark.parametrize("mode", MODES)
def test_replace_with_function(mode: str) -> None:
    seen = []

    def rewrite(event: LowTrustEvent) -> str:
        seen.append(event)
        return f"unsure about: {event.text} ({event.score})"

    event = make_event(0.3, text="42")
    out = call(ReplaceResponse(rewrite), event, mode)
    assert seen == [event]
    assert out["text"] == "unsure about: 42 (0.3)"


def test_replace_with_async_function_on_async_path() -> None:
    async def rewrite(event):
        await asyncio.sleep(0)
        return event.text[::-1]

    out = call(ReplaceResponse(rewrite), make_event(0.1, text="abc"), "async")
    assert out["text"] == "cba"


async def _rewrite_async(event):
    return "rewritten"


def _replace_async_on_sync_path() -> None:
    """An async text function also works on the sync path (run on its own loop)."""
    out = ReplaceResponse(_rewrite_async).handle(make_event(0.1))
    assert out["text"] == "rewritten"
    gc.collect()


def test_replace_with_async_function_on_sync_path() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _replace_async_on_sync_path()


def test_replace_async_function_on_sync_path_leaks_no_coroutine() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        _replace_async_on_sync_path()
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_replace_rejects_non_text() -> None:
    with pytest.raises(InvalidOptionError) as info:
        ReplaceResponse(None)  # type: ignore[arg-type]
    assert info.value.key == "ReplaceResponse.text"


@pytest.mark.parametrize("mode", MODES)
def test_replace_with_literal_json_text(mode: str) -> None:
    text = '{"answer": null, "reason": "low confidence"}'
    out = call(ReplaceResponse(text), make_event(0.1), mode)
    assert out["text"] == text


def test_replace_function_does_not_block_the_loop() -> None:
    def slow(event):
        time.sleep(0.2)
        return "later"

    async def main() -> int:
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        try:
            out = await ReplaceResponse(slow).ahandle(make_event(0.1))
        finally:
            task.cancel()
        assert out["text"] == "later"
        return ticks

    assert asyncio.run(main()) >= 5


# --- Regenerate ------------------------------------------------------------------------------------


def _model_calls(ops: FakeOps) -> list[tuple]:
    return [c for c in ops.calls if c[0] in ("call_model", "acall_model")]


@pytest.mark.parametrize("mode", MODES)
def test_regenerate_keeps_the_best(mode: str) -> None:
    ops = FakeOps([resp("second", 0.45), resp("third", 0.3)])
    event = make_event(0.2, threshold=0.9, ops=ops)
    out = call(Regenerate(attempts=2, temperature=1.0), event, mode)
    assert out == resp("second", 0.45)
    assert event.result.trustworthiness_score == 0.45
    expected_method = "call_model" if mode == "sync" else "acall_model"
    assert _model_calls(ops) == [(expected_method, {"temperature": 1.0})] * 2
    assert [c[0] for c in ops.calls if "score" in c[0]] == ["score" if mode == "sync" else "ascore"] * 2


@pytest.mark.parametrize("mode", MODES)
def test_regenerate_stops_early_at_threshold(mode: str) -> None:
    ops = FakeOps([resp("good", 0.6), resp("better", 0.95), resp("best", 0.99)])
    event = make_event(0.2, threshold=0.6, ops=ops)
    out = call(Regenerate(attempts=3), event, mode)
    assert out == resp("good", 0.6)
    assert len(_model_calls(ops)) == 1
    assert len(ops.script) == 2


@pytest.mark.parametrize("mode", MODES)
def test_regenerate_returns_none_when_nothing_beats_the_original(mode: str) -> None:
    ops = FakeOps([resp("worse", 0.1), resp("tie", 0.2), resp("unscored", None)])
    event = make_event(0.2, ops=ops)
    original_result = event.result
    assert call(Regenerate(attempts=3), event, mode) is None
    assert event.result is original_result
    assert len(_model_calls(ops)) == 3


@pytest.mark.parametrize("mode", MODES)
def test_regenerate_in_policy(mode: str) -> None:
    ops = FakeOps([resp("fixed", 0.8)])
    response, result = run(TrustPolicy(0.5, [Regenerate(attempts=2)]), make_event(0.2, ops=ops), mode)
    assert response == resp("fixed", 0.8)
    assert result.trustworthiness_score == 0.8
    assert result.fallbacks == ("regenerate",)


@pytest.mark.parametrize("attempts", [0, 11, -1, True, 2.5, "2", None])
def test_regenerate_validates_attempts(attempts) -> None:
    with pytest.raises(InvalidOptionError) as info:
        Regenerate(attempts=attempts)
    assert info.value.key == "Regenerate.attempts"
    assert repr(attempts) in str(info.value) and "1 to 10" in str(info.value)


@pytest.mark.parametrize("attempts", [1, 10])
def test_regenerate_attempt_bounds_accepted(attempts: int) -> None:
    assert Regenerate(attempts=attempts).attempts == attempts


# --- Escalate --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_escalate_with_model_rescored(mode: str) -> None:
    ops = FakeOps([resp("big model answer", 0.85)])
    event = make_event(0.2, ops=ops)
    out = call(Escalate(model="gpt-big", temperature=0.0), event, mode)
    assert out == resp("big model answer", 0.85)
    assert event.result.trustworthiness_score == 0.85  # the new answer was scored
    prefix = "" if mode == "sync" else "a"
    assert ops.calls == [
        (f"{prefix}call_model", {"model": "gpt-big", "temperature": 0.0}),
        (f"{prefix}score", "big model answer"),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_escalate_with_client(mode: str) -> None:
    ops = FakeOps()  # call_model must not be used
    client = FakeClient("strong", 0.9)
    event = make_event(0.2, ops=ops)
    out = call(Escalate(client=client, model="gpt-strong"), event, mode)
    assert out == resp("answer from strong", 0.9)
    assert event.result.trustworthiness_score == 0.9
    prefix = "" if mode == "sync" else "a"
    assert ops.calls[0] == (f"{prefix}call_client", client, {"model": "gpt-strong"})
    assert ops.calls[0][1] is client
    assert ops.methods() == [f"{prefix}call_client", f"{prefix}score"]


@pytest.mark.parametrize("mode", MODES)
def test_escalate_replaces_even_a_low_answer_and_chain_continues(mode: str) -> None:
    ops = FakeOps([resp("still weak", 0.3)])
    policy = TrustPolicy(0.5, [Escalate(model="m2"), AppendWarning(" (checked {score:.1f})")])
    response, result = run(policy, make_event(0.2, ops=ops), mode)
    assert response["text"] == "still weak (checked 0.3)"
    assert result.trustworthiness_score == 0.3
    assert result.fallbacks == ("escalate", "append_warning")


def test_escalate_needs_client_or_model() -> None:
    with pytest.raises(InvalidOptionError) as info:
        Escalate()
    assert "client" in str(info.value) and "model" in str(info.value)


# --- HumanReview ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_human_review_sync_callback(mode: str) -> None:
    seen = []
    event = make_event(0.2, text="risky")
    out = call(HumanReview(seen.append, holding_text="Checking (score {score:.2f})."), event, mode)
    assert _is_review_of(seen, event)
    assert out["text"] == "Checking (score 0.20)."


def _is_review_of(items: list, event: LowTrustEvent) -> bool:
    """The reviewer got one event describing the judged answer (a copy is fine)."""
    [review] = items
    return review.response == event.response and review.result is event.result and review.threshold == event.threshold


@pytest.mark.parametrize("mode", MODES)
def test_human_review_reviewer_keeps_the_judged_answer_after_the_policy(mode: str) -> None:
    q: queue.Queue = queue.Queue()
    event = make_event(0.2, text="risky")
    response, result = run(TrustPolicy(0.5, [HumanReview(queue=q, holding_text="hold")]), event, mode)
    assert response["text"] == "hold" and event.response["text"] == "hold"
    review = q.get_nowait()
    assert review.text == "risky"  # what the person must look at
    assert review.score == 0.2
    assert result.fallbacks == ("human_review",)


@pytest.mark.parametrize("mode", MODES)
def test_human_review_async_callback(mode: str) -> None:
    seen = []

    async def notify(event):
        await asyncio.sleep(0)
        seen.append(event.text)

    out = call(HumanReview(notify), make_event(0.2, text="risky"), mode)
    assert seen == ["risky"]
    assert out["text"] == DEFAULT_HOLDING


async def test_human_review_async_callback_on_sync_path_inside_loop() -> None:
    seen = []

    async def notify(event):
        seen.append(event.text)

    HumanReview(notify).handle(make_event(0.2, text="x"))
    assert seen == ["x"]


async def test_human_review_sync_callback_runs_off_the_loop() -> None:
    threads = []
    await HumanReview(lambda e: threads.append(threading.get_ident())).ahandle(make_event(0.2))
    assert threads and threads[0] != threading.get_ident()


@pytest.mark.parametrize("mode", MODES)
def test_human_review_thread_queue(mode: str) -> None:
    q: queue.Queue = queue.Queue()
    event = make_event(0.2)
    out = call(HumanReview(queue=q), event, mode)
    assert _is_review_of([q.get_nowait()], event)
    assert q.empty()
    assert out["text"] == DEFAULT_HOLDING


async def test_human_review_asyncio_queue_async_path() -> None:
    q: asyncio.Queue = asyncio.Queue()
    event = make_event(0.2)
    out = await HumanReview(queue=q, holding_text="wait").ahandle(event)
    assert _is_review_of([q.get_nowait()], event)
    assert out["text"] == "wait"


async def test_human_review_asyncio_queue_sync_path() -> None:
    q: asyncio.Queue = asyncio.Queue()
    event = make_event(0.2)
    HumanReview(queue=q).handle(event)
    assert _is_review_of([await asyncio.wait_for(q.get(), 1)], event)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"callback": print, "queue": queue.Queue()}],
    ids=["neither", "both"],
)
def test_human_review_needs_exactly_one_target(kwargs: dict) -> None:
    with pytest.raises(InvalidOptionError) as info:
        HumanReview(**kwargs)
    assert "exactly one" in str(info.value)


def test_human_review_rejects_bad_targets() -> None:
    with pytest.raises(InvalidOptionError) as info:
        HumanReview("not callable")  # type: ignore[arg-type]
    assert info.value.key == "HumanReview.callback"
    with pytest.raises(InvalidOptionError) as info:
        HumanReview(queue=[])
    assert info.value.key == "HumanReview.queue"


# --- Raise ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_raise(mode: str) -> None:
    event = make_event(0.123, threshold=0.7)
    with pytest.raises(UntrustworthyResponseError) as info:
        call(Raise(), event, mode)
    assert info.value.result is event.result
    assert info.value.response is event.response
    assert info.value.threshold == 0.7
    assert "0.123" in str(info.value) and "0.7" in str(info.value)


@pytest.mark.parametrize(
    "handler",
    [AppendWarning(), ReplaceResponse(), Regenerate(), Escalate(model="m"), HumanReview(print), Raise()],
    ids=lambda h: type(h).__name__,
)
def test_builtins_are_fallbacks_with_distinct_names(handler) -> None:
    from tlm_hooks.policy import Fallback

    assert isinstance(handler, Fallback)
    assert TrustPolicy(on_low_trust=[handler]).handlers == (handler,)
    names = {AppendWarning.name, ReplaceResponse.name, Regenerate.name, Escalate.name, HumanReview.name, Raise.name}
    assert len(names) == 6
