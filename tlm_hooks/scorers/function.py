"""`FunctionScorer`: any user function (sync or async) as a scorer."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .._run import run_sync
from ..types import ScoreRequest, TrustResult
from .base import BaseScorer

__all__ = ["FunctionScorer", "ScoreValue"]

ScoreValue = float | TrustResult | Mapping[str, Any]


def _to_result(value: Any, name: str) -> TrustResult:
    if isinstance(value, TrustResult):
        return value
    if isinstance(value, Mapping):
        result = TrustResult.from_dict(value)
        if result.trustworthiness_score is None and result.error is None:
            raise TypeError(
                f"scorer function {name} returned a dict without a score: allowed a dict with "
                "'trustworthiness_score' (or 'error'), a float in [0, 1], or a TrustResult"
            )
        return result
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return TrustResult(float(value))
    raise TypeError(
        f"scorer function {name} returned {type(value).__name__}: allowed a float in [0, 1], "
        "a TrustResult, or a dict with 'trustworthiness_score'"
    )


class FunctionScorer(BaseScorer):
    """Wrap ``fn(request) -> float | TrustResult | dict`` (or an ``async def`` of the same).

    A sync function is run in a worker thread on the async path; an async function runs on its
    own loop on the sync path. ``wants_logprobs`` asks hooked calls for token logprobs.
    """

    def __init__(
        self,
        fn: Callable[[ScoreRequest], ScoreValue | Awaitable[ScoreValue]],
        *,
        wants_logprobs: bool = False,
        max_concurrency: int = 8,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"FunctionScorer needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = getattr(fn, "__qualname__", repr(fn))
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
        self._wants_logprobs = wants_logprobs
        self.max_concurrency = max_concurrency

    @property
    def wants_logprobs(self) -> bool:
        return self._wants_logprobs

    def score(self, request: ScoreRequest) -> TrustResult:
        value = self.fn(request)
        if inspect.isawaitable(value):
            value = run_sync(_await(value))
        return _to_result(value, self.name)

    async def ascore(self, request: ScoreRequest) -> TrustResult:
        if self._is_async:
            value = self.fn(request)
        else:
            import asyncio  # loaded by the running loop already; not at `import tlm_hooks`

            value = await asyncio.to_thread(self.fn, request)
        if inspect.isawaitable(value):
            value = await value
        return _to_result(value, self.name)


async def _await(value: Awaitable[Any]) -> Any:
    return await value
