"""Bounded retries with exponential backoff and jitter, honouring ``Retry-After``."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .failures import is_connection_failure, is_timeout, judge_unreachable, status_of
from .limiter import AdaptiveLimiter
from .usage import current_usage

__all__ = ["RetryPolicy", "Failure", "classify", "call_with_retries"]

logger = logging.getLogger("tlm_hooks")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_retries`` retries; waits double from ``base_delay`` up to ``max_delay``
    (half fixed, half random); a server's ``Retry-After`` is obeyed up to ``max_retry_after``."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Failure:
    """How an exception from a model request should be handled."""

    retryable: bool
    overload: bool = False  # the server is saturated: the limiter should shrink
    retry_after: float | None = None


def classify(exc: BaseException) -> Failure:
    """Retry 429, 408, 409, 5xx, timeouts and connection errors; nothing else."""
    if is_timeout(exc):
        return Failure(True, overload=True)
    status = status_of(exc)
    if status is not None:
        retry_after = _retry_after(exc)
        if status == 429:
            return Failure(True, overload=True, retry_after=retry_after)
        if status in (408, 409) or status >= 500:
            return Failure(True, overload=status in (503, 504), retry_after=retry_after)
        return Failure(False)
    if is_connection_failure(exc):
        return Failure(True)
    return Failure(False)


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return float(millis) / 1000.0
        value = headers.get("retry-after")
    except Exception:
        return None
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    limiter: AdaptiveLimiter | None = None,
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    judge: str | None = None,
) -> T:
    """Run ``attempt()`` (holding a limiter slot), retrying retryable failures per ``policy``.

    ``judge`` describes the model and URL called (e.g. ``"'gpt-4.1-mini' at https://…/v1"``):
    a connection failure or timeout that outlasts the retries is raised as a
    `~tlm_hooks.errors.JudgeConnectionError` / `~tlm_hooks.errors.JudgeTimeoutError` naming it
    (the original error is its ``__cause__``)."""
    for number in range(policy.max_retries + 1):
        if limiter is not None:
            await limiter.acquire()
        try:
            result = await attempt()
        except Exception as exc:
            failure = classify(exc)
            if limiter is not None and failure.overload:
                limiter.on_overload()
            if not failure.retryable or number >= policy.max_retries:
                named = judge_unreachable(exc, judge, number + 1) if judge is not None else None
                if named is not None:
                    raise named from exc
                raise
            wait = policy.delay(number, failure.retry_after)
            logger.info("tlm-hooks: judge call failed (%s); retry %d in %.2fs", type(exc).__name__, number + 1, wait)
        else:
            if limiter is not None:
                limiter.on_success()
            return result
        finally:
            if limiter is not None:
                limiter.release()
        usage = current_usage()
        if usage is not None:
            usage.add_retry()
        await sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
