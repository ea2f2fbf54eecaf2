"""The handlers' judge traffic budget: judge requests give way to the app's own LLM calls, run
at most ``judge_concurrency`` at once, and a score the app keeps waiting is dropped and counted."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest
from li_util import FakeRAG, ScriptedLLM
from llama_index.core.base.llms.types import CompletionResponse

from tlm_hooks.integrations.llamaindex import TLMCallbackHandler, TrustEventHandler
from tlm_hooks.integrations.llamaindex.budget import AppBusy, YieldingJudge, job_budget
from tlm_hooks.integrations.llamaindex.tracking import QueryTracker
from tlm_hooks.llm.base import Generation

HANDLERS = [TrustEventHandler, TLMCallbackHandler]


class OneAtATime:
    """A model server that serves one request at a time, first come first served (as a
    single-slot llama.cpp or vLLM server queues them); logs who was served, in order."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.log: list[str] = []
        self._log_lock = threading.Lock()
        self._turn = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def serve(self, who: str) -> None:
        with self._turn:
            ticket, self._next_ticket = self._next_ticket, self._next_ticket + 1
            while self._serving != ticket:
                self._turn.wait()
        try:
            self.note(f"{who}-served")
            time.sleep(self.seconds)
        finally:
            with self._turn:
                self._serving += 1
                self._turn.notify_all()

    def note(self, what: str) -> None:
        with self._log_lock:
            self.log.append(what)


class SharedJudge:
    """A judge on the shared server; answers "Yes" to everything."""

    name = "shared-judge"

    def __init__(self, server: OneAtATime) -> None:
        self.server = server
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    async def acomplete(self, messages: Any, *, n: int = 1, **kwargs: Any) -> list[Generation]:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.to_thread(self.server.serve, "judge")
            return [Generation("Yes") for _ in range(n)]
        finally:
            with self._lock:
                self.in_flight -= 1

    def with_model(self, model: str) -> Any:
        return self


class SharedLLM(ScriptedLLM):
    """The app's LLM on the same one-at-a-time server."""

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        server: OneAtATime = self._server  # type: ignore[attr-defined]
        server.note("app-asked")
        server.serve("app")
        return super().complete(prompt, formatted, **kwargs)


def _shared_llm(server: OneAtATime) -> SharedLLM:
    llm = SharedLLM(default="Paris.")
    object.__setattr__(llm, "_server", server)
    return llm


def test_judge_requests_wait_while_the_app_has_an_llm_call_in_flight() -> None:
    tracker = QueryTracker()
    server = OneAtATime()
    judge = YieldingJudge(SharedJudge(server), tracker.wait_app_idle, max_wait=10)
    tracker.start_llm("app-call")
    done = threading.Event()

    def ask() -> None:
        asyncio.run(judge.acomplete([{"role": "user", "content": "q"}]))
        done.set()

    threading.Thread(target=ask, daemon=True).start()
    assert not done.wait(0.3)  # held back while the app's call is open
    assert server.log == []
    tracker.end_llm("app-call")
    assert done.wait(10)
    assert server.log == ["judge-served"]


def test_a_judge_request_gives_up_after_max_wait_and_the_whole_score_with_it() -> None:
    tracker = QueryTracker()
    judge = YieldingJudge(SharedJudge(OneAtATime()), tracker.wait_app_idle, max_wait=0.2)
    tracker.start_llm("app-call")

    async def two_requests() -> tuple[bool, bool]:
        with job_budget() as budget:
            with pytest.raises(AppBusy, match="stayed busy for 0.2 s"):
                await judge.acomplete([{"role": "user", "content": "q"}])
            tracker.end_llm("app-call")  # even with the app idle again, the job's other requests stop
            with pytest.raises(AppBusy, match="earlier judge request"):
                await judge.acomplete([{"role": "user", "content": "q"}])
            return budget.gave_up, True

    assert asyncio.run(two_requests()) == (True, True)


def test_at_most_judge_concurrency_requests_run_at_once() -> None:
    tracker = QueryTracker()
    inner = SharedJudge(OneAtATime(0.0))

    async def slow(messages: Any, **kwargs: Any) -> list[Generation]:
        with inner._lock:
            inner.in_flight += 1
            inner.most_in_flight = max(inner.most_in_flight, inner.in_flight)
        await asyncio.sleep(0.05)
        with inner._lock:
            inner.in_flight -= 1
        return [Generation("Yes")]

    inner.acomplete = slow  # type: ignore[method-assign]
    judge = YieldingJudge(inner, tracker.wait_app_idle, concurrency=2, max_wait=10)

    async def many() -> None:
        await asyncio.gather(*(judge.acomplete([{"role": "user", "content": str(i)}]) for i in range(8)))

    asyncio.run(many())
    assert inner.most_in_flight == 2


@pytest.mark.parametrize("kind", HANDLERS)
def test_the_apps_call_waits_for_at_most_one_judge_request(kind: type) -> None:
    """App and judge share a one-request-at-a-time server. While the handler scores (several judge
    requests per score), a new app call is served after at most the one judge request already
    running — the handler does not queue its remaining requests ahead of the app."""
    server = OneAtATime(seconds=0.05)
    judge = SharedJudge(server)
    handler = kind(judge=judge, quality_preset="medium", score_queries=False).register()
    llm = _shared_llm(server)
    try:
        llm.complete("What is the capital of France?")  # its score now runs in the background
        deadline = time.monotonic() + 30
        while "judge-served" not in server.log:
            assert time.monotonic() < deadline, "the handler never started scoring"
            time.sleep(0.005)
        llm.complete("And of Germany?")
        assert handler.wait(60)
    finally:
        handler.close()
    log = server.log
    asked = [i for i, entry in enumerate(log) if entry == "app-asked"][1]
    served = log.index("app-served", asked)
    judged_between = [e for e in log[asked:served] if e == "judge-served"]
    assert len(judged_between) <= 1, log
    assert judge.most_in_flight == 1
    assert len(handler.results("llm")) == 2  # both calls still scored, after the app was served


@pytest.mark.parametrize("kind", HANDLERS)
def test_a_score_the_app_keeps_waiting_is_dropped_and_counted(kind: type, caplog: pytest.LogCaptureFixture) -> None:
    server = OneAtATime(seconds=0.0)
    handler = kind(judge=SharedJudge(server), rag=FakeRAG(), max_wait=0.2).register()
    core = handler._core
    try:
        core.tracker.start_llm("a-long-app-call")  # the app's model stays busy
        with caplog.at_level(logging.WARNING, logger="tlm_hooks"):
            ScriptedLLM(default="Paris.").complete("What is the capital of France?")
            assert handler.wait(30)
        assert handler.skipped_busy == 1
        assert handler.results() == []  # dropped, not recorded as a (failed) score
        assert "score(s) given up" in caplog.text
        core.tracker.end_llm("a-long-app-call")
        ScriptedLLM(default="Paris.").complete("What is the capital of France?")
        assert handler.wait(30)
        [scored] = handler.results("llm")
        assert scored.score is not None and scored.result.error is None
    finally:
        handler.close()


@pytest.mark.parametrize(
    "bad", [{"judge_concurrency": 0}, {"judge_concurrency": 1.5}, {"max_wait": 0}, {"max_wait": "5"}]
)
def test_bad_budget_arguments_are_refused(bad: dict[str, Any]) -> None:
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        TrustEventHandler(**bad)
