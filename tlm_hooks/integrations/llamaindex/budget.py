"""The background handlers' judge traffic budget: scoring must not starve the app it watches.

The judge is often the app's own model server (a local llama.cpp or vLLM that serves one or
a few requests at a time) or the embedded model in the same process. One score is several
judge requests (reflection, consistency samples), so a handler that scored at full speed
would queue the app's own queries behind its judge calls. :class:`YieldingJudge` wraps the
handlers' judge so that:

- at most ``concurrency`` judge requests of the handler run at once (default 1);
- before each judge request it waits while the app has an LLM call in flight (the handler
  sees the app's LLM start/end events), so an app call waits for at most the one judge
  request already running;
- when the app stays busy for ``max_wait`` seconds, the score is given up: the job is
  dropped and counted (``handler.skipped_busy``), rather than delaying the app.

It is a scheduling rule, not a rate limit on the app: the app's calls are never delayed by it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from ...llm.base import ChatBackend, Generation

__all__ = ["YieldingJudge", "AppBusy", "JobBudget", "job_budget", "DEFAULT_JUDGE_CONCURRENCY", "DEFAULT_MAX_WAIT"]

DEFAULT_JUDGE_CONCURRENCY = 1
DEFAULT_MAX_WAIT = 30.0


class AppBusy(RuntimeError):
    """The app kept its model busy for longer than the handler's ``max_wait``: score given up."""


class JobBudget:
    """One scoring job's state: set once any of its judge requests gave way to the app, so the
    job's other requests stop at once and the whole job is dropped (not scored partially)."""

    def __init__(self) -> None:
        self.gave_up = False


_JOB: ContextVar[JobBudget | None] = ContextVar("tlm_hooks_llamaindex_job_budget", default=None)


class job_budget:  # noqa: N801  (a context manager used like a function)
    """``with job_budget() as budget:`` around one scoring job (tasks it starts share it)."""

    def __enter__(self) -> JobBudget:
        self._budget = JobBudget()
        self._token = _JOB.set(self._budget)
        return self._budget

    def __exit__(self, *exc_info: Any) -> None:
        _JOB.reset(self._token)


class YieldingJudge:
    """A :class:`~tlm_hooks.llm.base.ChatBackend` that lets the app's own LLM calls go first
    (see the module docstring). ``app_idle(timeout) -> bool`` blocks until the app has no LLM
    call in flight."""

    def __init__(
        self,
        inner: ChatBackend,
        app_idle: Callable[[float], bool],
        *,
        concurrency: int = DEFAULT_JUDGE_CONCURRENCY,
        max_wait: float = DEFAULT_MAX_WAIT,
        _slots: threading.BoundedSemaphore | None = None,
    ) -> None:
        self.inner = inner
        self.app_idle = app_idle
        self.concurrency = concurrency
        self.max_wait = max_wait
        self._slots = _slots or threading.BoundedSemaphore(concurrency)
        self.name = getattr(inner, "name", type(inner).__name__)
        endpoint = getattr(inner, "endpoint", None)
        if endpoint is not None:
            self.endpoint = endpoint

    def with_model(self, model: str) -> YieldingJudge:
        """The same budget around the inner judge switched to ``model`` (``options.model``)."""
        switch = getattr(self.inner, "with_model", None)
        inner = switch(model) if switch is not None else self.inner
        return YieldingJudge(
            inner, self.app_idle, concurrency=self.concurrency, max_wait=self.max_wait, _slots=self._slots
        )

    async def acomplete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        n: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 256,
        logprobs: bool = False,
        top_logprobs: int = 0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]:
        budget = _JOB.get()
        if budget is not None and budget.gave_up:
            raise AppBusy("an earlier judge request of this score gave way to the app")
        await asyncio.to_thread(self._take_slot, budget)
        try:
            return await self.inner.acomplete(
                messages, n=n, temperature=temperature, max_tokens=max_tokens, logprobs=logprobs,
                top_logprobs=top_logprobs, seed=seed, stop=stop,
            )  # fmt: skip
        finally:
            self._slots.release()

    def _take_slot(self, budget: JobBudget | None) -> None:
        if not self._slots.acquire(timeout=self.max_wait):
            self._give_up(budget, f"no judge slot free within {self.max_wait:g} s")
        if not self.app_idle(self.max_wait):
            self._slots.release()
            self._give_up(budget, f"the app's LLM stayed busy for {self.max_wait:g} s")

    @staticmethod
    def _give_up(budget: JobBudget | None, why: str) -> None:
        if budget is not None:
            budget.gave_up = True
        raise AppBusy(why)
