"""Scoring under a deadline: the hook's call returns when the scorer has not answered in time.

An async scorer (``ascore``) is cancelled at the deadline. A sync-only scorer runs on a small
dedicated thread pool, because Python cannot stop a thread: at the deadline the caller stops
waiting and the scorer's thread runs on until the scorer returns. The pool has
:data:`SCORING_THREADS` threads, so scorers that never return hold at most that many threads;
once all are held, further sync scores wait in the pool's queue until their own deadline, and
are then taken off the queue (never started).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import os
import threading
import time
from collections.abc import Coroutine
from typing import Any

from .._run import run_sync
from ..errors import ScoringTimeout
from ..scorers.asked import ascore_as_asked, score_as_asked_sync
from ..scorers.base import BaseScorer, Scorer
from ..scorers.function import FunctionScorer
from ..scorers.logprob import LogprobScorer
from ..types import ScoreRequest, TrustResult

__all__ = ["ScoringTimeout", "SCORING_THREADS", "score_within", "ascore_within", "stuck_scorer_threads"]

logger = logging.getLogger("tlm_hooks")

SCORING_THREADS = 16
"""Size of the pool that runs sync-only scorers under a deadline (threads start on demand)."""

_pool_lock = threading.Lock()
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_pid = 0
_overdue_lock = threading.Lock()
_overdue = 0  # sync scores still running past their deadline


def stuck_scorer_threads() -> int:
    """How many sync scores are still running after their deadline passed (threads held)."""
    return _overdue


def _scoring_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _pool, _pool_pid, _overdue
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():  # a forked child has none of the parent's threads
            _pool = concurrent.futures.ThreadPoolExecutor(max_workers=SCORING_THREADS, thread_name_prefix="tlm-hooks-score")
            _pool_pid = os.getpid()
            _overdue = 0
        return _pool


def _never_blocks(scorer: Scorer) -> bool:
    # LogprobScorer only reads the response's own logprobs: no I/O, well under a millisecond.
    return type(scorer) is LogprobScorer


def _sync_only(scorer: Scorer) -> bool:
    """True when the scorer's ``ascore`` is only its ``score`` in a worker thread (no cancellation)."""
    if isinstance(scorer, FunctionScorer):
        return not scorer._is_async
    return isinstance(scorer, BaseScorer) and type(scorer).ascore is BaseScorer.ascore


def _submit(scorer: Scorer, request: ScoreRequest) -> concurrent.futures.Future[TrustResult]:
    ctx = contextvars.copy_context()  # the scorer sees the caller's context (unhooked(), tracing)
    return _scoring_pool().submit(ctx.run, score_as_asked_sync, scorer, request)


def _abandon(future: concurrent.futures.Future[TrustResult], timeout: float) -> ScoringTimeout:
    """Stop waiting for ``future``: take it off the queue, or count its thread as held."""
    global _overdue
    if not future.cancel():  # already running: its thread stays busy until the scorer returns
        with _overdue_lock:
            _overdue += 1
            held = _overdue
        future.add_done_callback(_release)
        logger.warning(
            "tlm-hooks: a sync scorer is still running past score_timeout=%gs; its thread stays busy "
            "until it returns (%d of %d scoring threads held)",
            timeout,
            held,
            SCORING_THREADS,
        )
    return ScoringTimeout(timeout)


def _release(_: concurrent.futures.Future[TrustResult]) -> None:
    global _overdue
    with _overdue_lock:
        _overdue -= 1


def score_within(scorer: Scorer, request: ScoreRequest, timeout: float | None) -> TrustResult:
    """``scorer.score(request)``, raising :class:`ScoringTimeout` after ``timeout`` seconds."""
    # every path takes the options that act around a score (tlm_hooks.scorers.asked)
    if timeout is None or _never_blocks(scorer):
        return score_as_asked_sync(scorer, request)
    if _sync_only(scorer):
        future = _submit(scorer, request)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise _abandon(future, timeout) from None
    return run_sync(_cancel_after(ascore_as_asked(scorer, request), timeout))


async def ascore_within(scorer: Scorer, request: ScoreRequest, timeout: float | None) -> TrustResult:
    """``await scorer.ascore(request)``, raising :class:`ScoringTimeout` after ``timeout`` seconds."""
    if timeout is None or _never_blocks(scorer):
        return await ascore_as_asked(scorer, request)
    if _sync_only(scorer):  # on our pool, not the app's default executor
        future = _submit(scorer, request)
        waiting = asyncio.wrap_future(future)
        try:
            done, _ = await asyncio.wait({waiting}, timeout=timeout)
        except asyncio.CancelledError:
            future.cancel()
            waiting.cancel()
            raise
        if done:
            return waiting.result()
        error = _abandon(future, timeout)
        waiting.cancel()  # a late result is then dropped, even after this loop has closed
        raise error
    return await _cancel_after(ascore_as_asked(scorer, request), timeout)


async def _cancel_after(coro: Coroutine[Any, Any, TrustResult], timeout: float) -> TrustResult:
    """Await ``coro``; at ``timeout`` cancel it and raise at once (a scorer that is slow to
    honour the cancellation does not hold the caller; it finishes in the background)."""
    task = asyncio.ensure_future(coro)
    started = time.monotonic()
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if done:
        return task.result()
    task.cancel()
    task.add_done_callback(_consume)
    logger.debug("tlm-hooks: scoring cancelled after %.3fs", time.monotonic() - started)
    raise ScoringTimeout(timeout)


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved
