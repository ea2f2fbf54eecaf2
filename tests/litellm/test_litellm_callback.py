"""`TLMCallback` in litellm's own callbacks list, driven by the real litellm against the loopback
fake: every successful chat call is scored once; the score reaches the response and the
logging payload the loggers after it receive; scoring never holds up a call unless asked."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import litellm
import pytest
from fake_openai import Reply
from litellm.integrations.custom_logger import CustomLogger
from litutil import MESSAGES, call, drain, prob

from tlm_hooks.integrations.litellm import TLMCallback
from tlm_hooks.types import ScoreRequest


class Collector(CustomLogger):  # type: ignore[misc]
    """A logger placed after TLMCallback: what the standard logging payload held for it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def _take(self, kwargs: dict[str, Any]) -> None:
        payload = kwargs.get("standard_logging_object") or {}
        self.seen.append((payload.get("metadata") or {}).get("tlm_metadata"))

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._take(kwargs)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._take(kwargs)


class Counting:
    """A scorer function that counts its calls and answers ``score``."""

    def __init__(self, score: float = 0.75, before: Callable[[], None] | None = None) -> None:
        self.score = score
        self.before = before
        self.requests: list[ScoreRequest] = []

    def __call__(self, request: ScoreRequest) -> float:
        if self.before is not None:
            self.before()
        self.requests.append(request)
        return self.score


async def until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait (without blocking the loop litellm's async logging runs on) until ``predicate()``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for litellm's logging"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("entry", ["litellm", "router"])
async def test_every_call_is_scored_once_and_recorded(
    fake: Any, provider: Any, router: Any, entry: str, is_async: bool, stream: bool
) -> None:
    scorer = Counting(0.75)
    collector = Collector()
    litellm.callbacks = [TLMCallback(scorer), collector]
    fake.push(Reply(text="Four."))
    result = await call(entry, is_async, provider, router, stream=stream)
    if stream:
        await drain(result, is_async=is_async)
    await until(lambda: bool(collector.seen))
    await asyncio.sleep(0.2)  # a second scoring, if there were one, would show by now
    assert len(scorer.requests) == 1
    assert scorer.requests[0].response == "Four."
    assert list(scorer.requests[0].messages or ()) == MESSAGES
    assert collector.seen == [{"trustworthiness_score": 0.75}]  # in the payload the next logger gets
    if not stream:  # the response the app holds carries it too, once scored
        assert result.tlm_metadata == {"trustworthiness_score": 0.75}
        assert result._hidden_params["tlm_metadata"] == {"trustworthiness_score": 0.75}
        assert "tlm_metadata" not in result.model_dump()


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_scoring_does_not_hold_up_the_call(fake: Any, provider: Any, router: Any, is_async: bool) -> None:
    """The scorer is held until the call has returned: the call returns anyway, then the score lands."""
    release = threading.Event()
    scorer = Counting(0.6, before=lambda: release.wait(60))
    collector = Collector()
    litellm.callbacks = [TLMCallback(scorer), collector]
    fake.push(Reply(text="Four."))
    response = await call("litellm", is_async, provider, router)
    assert response.choices[0].message.content == "Four."
    assert not hasattr(response, "tlm_metadata")  # returned before its score
    release.set()
    await until(lambda: bool(collector.seen))
    assert response.tlm_metadata == {"trustworthiness_score": 0.6}
    assert collector.seen == [{"trustworthiness_score": 0.6}]


async def test_wait_scores_async_calls_before_they_return(fake: Any, provider: Any, router: Any) -> None:
    scorer = Counting(0.55)
    collector = Collector()
    litellm.callbacks = [TLMCallback(scorer, wait=True), collector]
    fake.push(Reply(text="Four."))
    response = await litellm.acompletion(**provider, messages=MESSAGES)
    assert response.tlm_metadata == {"trustworthiness_score": 0.55}  # already there on return
    await until(lambda: bool(collector.seen))
    assert collector.seen == [{"trustworthiness_score": 0.55}]
    assert len(scorer.requests) == 1  # the logging hook reused it


async def test_default_scorer_uses_the_logprobs_the_app_asked_for(fake: Any, provider: Any) -> None:
    collector = Collector()
    litellm.callbacks = [TLMCallback(), collector]
    fake.push(Reply(text="Four.", logprob=-0.3), Reply(text="Four."))
    litellm.completion(**provider, messages=MESSAGES, logprobs=True)
    await until(lambda: len(collector.seen) == 1)
    assert collector.seen[0]["trustworthiness_score"] == pytest.approx(prob(-0.3))
    litellm.completion(**provider, messages=MESSAGES)  # no logprobs: the score says so
    await until(lambda: len(collector.seen) == 2)
    assert collector.seen[1]["trustworthiness_score"] is None
    assert collector.seen[1]["error"]["type"] == "MissingLogprobs"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_calls_made_while_scoring_are_not_scored(fake: Any, provider: Any, router: Any, is_async: bool) -> None:
    """A judge that itself calls litellm: its call is logged by litellm but not scored again."""

    def judge(request: ScoreRequest) -> float:
        litellm.completion(**provider, messages=[{"role": "user", "content": "judge this"}])
        return 0.5

    scorer = Counting(0.5, before=lambda: judge(None))  # type: ignore[arg-type]
    collector = Collector()
    litellm.callbacks = [TLMCallback(scorer), collector]
    await call("litellm", is_async, provider, router)
    await until(lambda: len(collector.seen) == 2)
    await asyncio.sleep(0.3)
    assert len(scorer.requests) == 1
    assert len(fake.requests) == 2
    assert sorted(collector.seen, key=str) == sorted([None, {"trustworthiness_score": 0.5}], key=str)


def test_bad_arguments_are_refused_at_construction() -> None:
    with pytest.raises(TypeError, match="wait must be True or False"):
        TLMCallback(wait="yes")  # type: ignore[arg-type]
    from tlm_hooks.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="score_timeout"):
        TLMCallback(score_timeout=-1)
    with pytest.raises(InvalidOptionError, match="LogprobScorer"):
        from tlm_hooks import LogprobScorer

        TLMCallback(LogprobScorer(), quality_preset="high")
