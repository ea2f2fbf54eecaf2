"""`TrustPolicy(score_timeout=...)`: a scorer that hangs does not hold the app's call.

Each hanging scorer here gives up by itself after a few seconds (so a broken deadline shows up
as a slow, failing test rather than a hung suite) and is released at the end of its test.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fake_openai import Reply
from hookutil import MESSAGES, drain, resolve

import tlm_hooks
from tlm_hooks import BaseScorer, InvalidOptionError, TrustPolicy, TrustResult, TrustScoringError
from tlm_hooks.hooks import deadline

TIMEOUT = 0.3
GIVE_UP = 5.0  # how long a "hanging" scorer really waits before returning on its own


class HangingSync:
    """A sync scoring function that blocks until released (or GIVE_UP seconds)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0
        self.finished = 0

    def __call__(self, request: tlm_hooks.ScoreRequest) -> float:
        self.calls += 1
        self.release.wait(GIVE_UP)
        self.finished += 1
        return 0.9


class HangingAsync(BaseScorer):
    """An async-only scorer that sleeps until cancelled (or GIVE_UP seconds)."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    async def ascore(self, request: tlm_hooks.ScoreRequest) -> TrustResult:
        try:
            await asyncio.sleep(GIVE_UP)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return TrustResult(0.9)


@pytest.fixture
def hanging_sync() -> Iterator[HangingSync]:
    scorer = HangingSync()
    yield scorer
    scorer.release.set()


async def _eventually(event: threading.Event, within: float = 2.0) -> bool:
    """Wait for ``event`` without blocking this thread's event loop (the cancellation may be
    delivered on it)."""
    deadline = time.monotonic() + within
    while not event.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return event.is_set()


async def _ask(client: Any, **kwargs: Any) -> Any:
    return await resolve(client.chat.completions.create(model="m", messages=MESSAGES, **kwargs))


async def _ask_and_read(client: Any, *, stream: bool, is_async: bool) -> tuple[Any, str]:
    result = await _ask(client, stream=stream)
    if stream:
        chunks = await drain(result, is_async=is_async)
        return result, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return result, result.choices[0].message.content


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_hanging_sync_scorer_fails_open_at_the_deadline(
    fake: Any, make_client: Any, is_async: bool, stream: bool, hanging_sync: HangingSync
) -> None:
    client = tlm_hooks.patch(make_client(is_async), scorer=hanging_sync, policy=TrustPolicy(score_timeout=TIMEOUT))
    started = time.monotonic()
    result, text = await _ask_and_read(client, stream=stream, is_async=is_async)
    elapsed = time.monotonic() - started
    assert text == Reply().text
    assert elapsed < TIMEOUT + 2.0 < GIVE_UP
    meta = result.tlm_metadata
    assert meta["trustworthiness_score"] is None
    assert meta["error"]["type"] == "ScoringTimeout"
    assert "score_timeout=0.3s" in meta["error"]["message"]
    assert hanging_sync.calls == 1 and hanging_sync.finished == 0  # abandoned, still running


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_hanging_async_scorer_is_cancelled(fake: Any, make_client: Any, is_async: bool, stream: bool) -> None:
    scorer = HangingAsync()
    client = tlm_hooks.patch(make_client(is_async), scorer=scorer, policy=TrustPolicy(score_timeout=TIMEOUT))
    started = time.monotonic()
    result, text = await _ask_and_read(client, stream=stream, is_async=is_async)
    assert time.monotonic() - started < TIMEOUT + 2.0
    assert text == Reply().text
    assert result.tlm_metadata["error"]["type"] == "ScoringTimeout"
    assert await _eventually(scorer.cancelled), "the abandoned ascore() was not cancelled"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_timeout_fails_closed_under_on_error_raise(
    fake: Any, make_client: Any, is_async: bool, stream: bool, hanging_sync: HangingSync
) -> None:
    policy = TrustPolicy(score_timeout=TIMEOUT, on_error="raise")
    client = tlm_hooks.patch(make_client(is_async), scorer=hanging_sync, policy=policy)
    started = time.monotonic()
    with pytest.raises(TrustScoringError) as info:
        await _ask_and_read(client, stream=stream, is_async=is_async)
    assert time.monotonic() - started < TIMEOUT + 2.0
    assert info.value.result is not None and info.value.result.error_type == "ScoringTimeout"
    assert "score_timeout" in str(info.value)


async def test_no_limit_waits_for_a_slow_scorer(fake: Any, make_client: Any, is_async: bool) -> None:
    def slow(request: tlm_hooks.ScoreRequest) -> float:
        time.sleep(2 * TIMEOUT)
        return 0.75

    client = tlm_hooks.patch(make_client(is_async), scorer=slow, policy=TrustPolicy(score_timeout=None))
    result = await _ask(client)
    assert result.tlm_metadata == {"trustworthiness_score": 0.75}


async def test_a_scorer_within_its_deadline_is_scored(fake: Any, make_client: Any, is_async: bool) -> None:
    client = tlm_hooks.patch(make_client(is_async), scorer=lambda r: 0.6, policy=TrustPolicy(score_timeout=TIMEOUT))
    assert (await _ask(client)).tlm_metadata == {"trustworthiness_score": 0.6}


def test_stuck_sync_scorers_hold_at_most_the_pool(
    fake: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch, hanging_sync: HangingSync
) -> None:
    """Six calls whose scorer never returns, on a pool of two: two threads are held, the other
    four scores are taken off the queue unstarted; every call still returns at its deadline."""
    monkeypatch.setattr(deadline, "SCORING_THREADS", 2)
    monkeypatch.setattr(deadline, "_pool", None)
    monkeypatch.setattr(deadline, "_pool_pid", 0)
    # a longer deadline here: both pool threads must have started their score before it passes
    client = tlm_hooks.patch(make_client(), scorer=hanging_sync, policy=TrustPolicy(score_timeout=1.0))
    results: list[Any] = []

    def call() -> None:
        results.append(client.chat.completions.create(model="m", messages=MESSAGES))

    callers = [threading.Thread(target=call) for _ in range(6)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(GIVE_UP)
    assert len(results) == 6
    assert all(r.tlm_metadata["error"]["type"] == "ScoringTimeout" for r in results)
    pool = deadline._pool
    assert pool is not None
    try:
        assert hanging_sync.calls == 2
        assert deadline.stuck_scorer_threads() == 2
        assert len(pool._threads) == 2  # type: ignore[attr-defined]
    finally:
        hanging_sync.release.set()
        pool.shutdown(wait=True)
    assert deadline.stuck_scorer_threads() == 0
    assert hanging_sync.finished == 2


async def test_trust_scored_honours_the_timeout(is_async: bool, hanging_sync: HangingSync) -> None:
    decorate = tlm_hooks.trust_scored(scorer=hanging_sync, policy=TrustPolicy(score_timeout=TIMEOUT))
    started = time.monotonic()
    if is_async:

        @decorate
        async def answer(prompt: str) -> str:
            return "four"

        text = await answer("2+2?")
    else:

        @decorate
        def answer_sync(prompt: str) -> str:
            return "four"

        text = answer_sync("2+2?")
    assert time.monotonic() - started < TIMEOUT + 2.0
    assert text == "four"
    assert text.tlm_metadata["error"]["type"] == "ScoringTimeout"


def _completion() -> Any:
    from openai.types.chat import ChatCompletion

    return ChatCompletion.model_validate(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}],
        }
    )


async def test_score_completion_honours_the_timeout(is_async: bool, hanging_sync: HangingSync) -> None:
    kwargs: dict[str, Any] = {"scorer": hanging_sync, "score_timeout": TIMEOUT, "model": "m", "messages": MESSAGES}
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="score_timeout=0.3s"):
        if is_async:
            await tlm_hooks.ascore_completion(_completion(), **kwargs)
        else:
            tlm_hooks.score_completion(_completion(), **kwargs)
    assert time.monotonic() - started < TIMEOUT + 2.0
    with pytest.raises(InvalidOptionError, match="score_timeout"):
        tlm_hooks.score_completion(_completion(), score_timeout=-1, model="m", messages=MESSAGES)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_scores_on_its_own_threads() -> None:
    """A pre-fork server (gunicorn --preload) forks after the parent scored: the child must not
    wait on the parent's scoring threads, which it does not have."""
    request = tlm_hooks.ScoreRequest("4", prompt="2+2?")
    scorer = tlm_hooks.FunctionScorer(lambda r: 0.5)
    assert deadline.score_within(scorer, request, 5.0).trustworthiness_score == 0.5  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        try:
            ok = deadline.score_within(scorer, request, 2.0).trustworthiness_score == 0.5
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
