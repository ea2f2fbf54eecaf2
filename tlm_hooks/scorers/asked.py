"""The path every score takes, in the library and in the server: the TLM options that act around a
scorer rather than inside it.

- ``disable_trustworthiness``: no score, no judge call; the result says why it has no score;
- ``max_timeout``: the score is given up (a failed result, :class:`ScoringTimeout`) after that many seconds;
- ``log: ["usage"]``: ``log.usage`` with judge calls, tokens and their estimated cost (:mod:`.cost`);
- ``log: ["perplexity"]``: ``log.perplexity`` from the response's token logprobs;
- the score cache (:mod:`.cache`): a stored result comes back with ``log.cached: true`` and no judge
  call; ``cache: false`` skips it, ``disable_persistence: true`` scores without storing the result.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import ScoringTimeout
from ..llm.usage import Usage, metered
from ..options import TLMOptions
from ..types import ScoreRequest, TokenLogprob, TrustResult
from .cache import ScoreCache
from .cost import Prices, usage_log

__all__ = [
    "DISABLED",
    "NO_LOGPROBS",
    "ascore_as_asked",
    "disabled",
    "perplexity",
    "score_as_asked",
    "score_as_asked_sync",
]

logger = logging.getLogger("tlm_hooks")

DISABLED = "trustworthiness was not scored: options.disable_trustworthiness is true"
NO_LOGPROBS = "options.log 'perplexity' needs the response's token logprobs; none were available, so it is null"


def _settings(options: TLMOptions | None) -> Mapping[str, Any]:
    return options.options if isinstance(options, TLMOptions) else {}


def disabled(options: TLMOptions | None) -> bool:
    """True when the options turn trustworthiness scoring off."""
    return bool(_settings(options).get("disable_trustworthiness"))


def perplexity(logprobs: Sequence[TokenLogprob] | None) -> float | None:
    """The geometric mean of the tokens' probabilities (TLM's ``log.perplexity``, in [0, 1])."""
    finite = [min(0.0, t.logprob) for t in logprobs or () if math.isfinite(t.logprob)]
    if not finite:
        return None
    return math.exp(sum(finite) / len(finite))


async def score_as_asked(
    run: Callable[[], Awaitable[TrustResult]],
    options: TLMOptions | None,
    *,
    logprobs: Callable[[], Sequence[TokenLogprob] | None],
    cache: ScoreCache | None = None,
    key: Callable[[], str] | None = None,
    prices: Prices | None = None,
    count_calls: bool = False,
) -> TrustResult:
    """``run()``'s result under ``options`` (see the module's list). ``logprobs()`` gives the scored
    response's token logprobs (for ``log.perplexity``); ``key()`` the request's cache key, computed
    only when ``cache`` is used. ``count_calls`` adds the judge calls and tokens to
    ``per_component_score`` (``llm_calls``, ``llm_tokens``). Never raises an ``Exception``: a
    failing ``run`` gives a failed result."""
    settings = _settings(options)
    if settings.get("disable_trustworthiness"):
        return _finish(TrustResult(None, warnings=(DISABLED,)), logprobs, settings, Usage(), prices, cached=False)
    use_cache = cache is not None and key is not None and settings.get("cache", True)
    cache_key = key() if use_cache and key is not None else ""
    leading: concurrent.futures.Future[dict[str, Any] | None] | None = None
    if use_cache and cache is not None:
        stored = await _cache_get(cache, cache_key)
        if stored is None:  # the same score already running here: wait for it rather than pay twice
            leading, running = _in_flight(cache_key)
            if running is not None:
                # shielded: a waiter that is cancelled must not cancel the shared future
                stored = await asyncio.shield(asyncio.wrap_future(running))
        if stored is not None:
            result = _finish(TrustResult.from_dict(stored), logprobs, settings, Usage(), prices, cached=True)
            return _with_calls(result, Usage()) if count_calls else result
    shared: dict[str, Any] | None = None
    try:
        with metered() as usage:
            result = await _within(run(), settings.get("max_timeout"))
        if use_cache and cache is not None and _complete(result):
            shared = result.to_dict()
            if not settings.get("disable_persistence"):
                await _cache_put(cache, cache_key, shared)
    finally:
        if leading is not None:
            _landed(cache_key, leading, shared)  # None: the waiters score for themselves
    result = _finish(result, logprobs, settings, usage, prices, cached=False)
    counted = result.trustworthiness_score is not None or result.skipped is not None  # skipped: 0 calls, said
    return _with_calls(result, usage) if count_calls and counted else result


async def ascore_as_asked(scorer: Any, request: ScoreRequest) -> TrustResult:
    """``scorer.ascore(request)`` on the path of :func:`score_as_asked`; a scorer that takes that
    path itself (``takes_asked_path = True``, as ``TLMScorer``) is called as it is."""
    if getattr(scorer, "takes_asked_path", False):
        return await scorer.ascore(request)  # type: ignore[no-any-return]
    options = request.options if isinstance(request.options, TLMOptions) else None
    return await score_as_asked(lambda: scorer.ascore(request), options, logprobs=lambda: request.response_logprobs)


def score_as_asked_sync(scorer: Any, request: ScoreRequest) -> TrustResult:
    """``scorer.score(request)`` with ``disable_trustworthiness`` and ``log`` usage/perplexity
    applied, for sync callers (the hook's sync path); ``max_timeout`` and the cache are the async
    path's, which a scorer with ``takes_asked_path`` runs inside its own ``score``."""
    if getattr(scorer, "takes_asked_path", False):
        return scorer.score(request)  # type: ignore[no-any-return]
    options = request.options if isinstance(request.options, TLMOptions) else None
    settings = _settings(options)

    def logprobs() -> Sequence[TokenLogprob] | None:
        return request.response_logprobs

    if settings.get("disable_trustworthiness"):
        return _finish(TrustResult(None, warnings=(DISABLED,)), logprobs, settings, Usage(), None, cached=False)
    if not settings:  # nothing to add around the score (the common case, on every hooked call)
        try:
            return scorer.score(request)  # type: ignore[no-any-return]
        except Exception as exc:  # reported once, by the caller that reads the failed result
            return TrustResult.failed(exc)
    with metered() as usage:
        try:
            result = scorer.score(request)
        except Exception as exc:
            result = TrustResult.failed(exc)
    return _finish(result, logprobs, settings, usage, None, cached=False)


_RUNNING: dict[str, concurrent.futures.Future[dict[str, Any] | None]] = {}
_RUNNING_LOCK = threading.Lock()


def _in_flight(key: str) -> tuple[Any, Any]:
    """``(own future, None)`` when this caller is the first to score ``key``, else ``(None, the
    running one's future)``. A thread-safe future, so callers on other event loops can wait too."""
    with _RUNNING_LOCK:
        running = _RUNNING.get(key)
        if running is not None:
            return None, running
        own: concurrent.futures.Future[dict[str, Any] | None] = concurrent.futures.Future()
        _RUNNING[key] = own
        return own, None


def _landed(key: str, own: concurrent.futures.Future[dict[str, Any] | None], value: dict[str, Any] | None) -> None:
    with _RUNNING_LOCK:
        _RUNNING.pop(key, None)
    if not own.done():
        own.set_result(value)


async def _within(work: Awaitable[TrustResult], seconds: float | None) -> TrustResult:
    """``work``'s result, or a failed result at ``seconds``: the work is then cancelled and not waited
    for (a judge call stuck in a thread must not hold the caller past its deadline)."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=None if seconds is None else float(seconds))
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_consume)
        error = ScoringTimeout(float(seconds or 0))
        error.args = (f"scoring did not finish within options.max_timeout={float(seconds or 0):g}s",)
        return TrustResult.failed(error)  # the caller (hook policy, server, TLM) reports it, once
    try:
        return task.result()
    except Exception as exc:
        return TrustResult.failed(exc)


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


def _complete(result: TrustResult) -> bool:
    """A score worth storing: it has a score and every judge call its plan asked for ran."""
    if not result.ok:
        return False
    return all(counts.get("ran", 0) >= counts.get("asked", 0) for name, counts in result.signals.items()
               if name != "token_probability")  # fmt: skip


def _finish(
    result: TrustResult,
    logprobs: Callable[[], Sequence[TokenLogprob] | None],
    settings: Mapping[str, Any],
    usage: Usage,
    prices: Prices | None,
    *,
    cached: bool,
) -> TrustResult:
    wanted = settings.get("log", ())
    log = dict(result.log)
    warnings = list(result.warnings)
    if cached:
        log["cached"] = True
    if "usage" in wanted:
        log["usage"] = usage_log(usage, prices or {})
    if "perplexity" in wanted:
        log["perplexity"] = perplexity(logprobs())
        if log["perplexity"] is None and NO_LOGPROBS not in warnings:
            warnings.append(NO_LOGPROBS)
    if log == result.log and len(warnings) == len(result.warnings):
        return result
    return replace(result, log=log, warnings=tuple(warnings))


def _with_calls(result: TrustResult, usage: Usage) -> TrustResult:
    components = {**result.components, "llm_calls": float(usage.calls), "llm_tokens": float(usage.tokens)}
    return replace(result, components=components)


async def _cache_get(cache: ScoreCache, key: str) -> dict[str, Any] | None:
    try:
        if getattr(cache, "blocking", False):
            return await asyncio.to_thread(cache.get, key)
        return cache.get(key)
    except Exception as exc:  # a broken cache costs a judge call, never the score
        logger.warning("tlm-hooks: reading the score cache failed: %s", exc)
        return None


async def _cache_put(cache: ScoreCache, key: str, value: dict[str, Any]) -> None:
    try:
        if getattr(cache, "blocking", False):
            await asyncio.to_thread(cache.put, key, value)
        else:
            cache.put(key, value)
    except Exception as exc:
        logger.warning("tlm-hooks: storing a score in the cache failed: %s", exc)
