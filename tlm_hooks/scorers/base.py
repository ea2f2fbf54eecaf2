"""The `Scorer` protocol and `BaseScorer`, which derives the missing sync/async/batch forms."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .._run import run_sync
from ..progress import row_reporter, uncounted
from ..types import ScoreRequest, TrustResult

__all__ = ["Scorer", "BaseScorer"]

logger = logging.getLogger("tlm_hooks")


@runtime_checkable
class Scorer(Protocol):
    """Anything that turns a :class:`ScoreRequest` into a :class:`TrustResult`, sync and async."""

    def score(self, request: ScoreRequest) -> TrustResult: ...

    async def ascore(self, request: ScoreRequest) -> TrustResult: ...

    def score_batch(self, requests: Sequence[ScoreRequest]) -> list[TrustResult]: ...

    async def ascore_batch(self, requests: Sequence[ScoreRequest]) -> list[TrustResult]: ...


class BaseScorer:
    """Base for scorers: implement ``score`` or ``ascore`` (or both); the rest is derived.

    - a sync-only scorer gets ``ascore`` run in a worker thread (the event loop never blocks);
    - an async-only scorer gets ``score`` run on its own loop (works inside a running loop);
    - batch forms keep input order, run up to ``max_concurrency`` items at once, and turn one
      item's exception into a failed :class:`TrustResult` for that item instead of raising.

    ``wants_logprobs`` tells the hook to ask the model for token logprobs when the caller didn't.
    """

    max_concurrency: int = 8

    @property
    def wants_logprobs(self) -> bool:
        """Whether hooked calls should ask the model for token logprobs (default: no)."""
        return False

    def score(self, request: ScoreRequest) -> TrustResult:
        if type(self).ascore is BaseScorer.ascore:
            raise NotImplementedError(f"{type(self).__name__} implements neither score() nor ascore()")
        return run_sync(self.ascore(request))

    async def ascore(self, request: ScoreRequest) -> TrustResult:
        if type(self).score is BaseScorer.score:
            raise NotImplementedError(f"{type(self).__name__} implements neither score() nor ascore()")
        import asyncio  # loaded by the running loop already; not at `import tlm_hooks`

        return await asyncio.to_thread(self.score, request)

    def _check_implemented(self) -> None:
        # a scorer with neither method is a programming error: raise it, don't turn it into failed results
        if type(self).score is BaseScorer.score and type(self).ascore is BaseScorer.ascore:
            raise NotImplementedError(f"{type(self).__name__} implements neither score() nor ascore()")

    def score_batch(self, requests: Sequence[ScoreRequest]) -> list[TrustResult]:
        """Score many requests; results are in input order, failures become failed results."""
        self._check_implemented()
        items = list(requests)
        if type(self).score is BaseScorer.score:  # async-native: one loop for the whole batch
            return run_sync(self.ascore_batch(items))
        rows = row_reporter(hide=False)  # a progress display advances as each row finishes

        def one(item: ScoreRequest) -> TrustResult:
            with uncounted():
                result = self._score_safely(item)
            if rows is not None:
                rows.finished(result.ok)
            return result

        if len(items) <= 1 or self.max_concurrency <= 1:
            return [one(item) for item in items]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(items))) as pool:
            return list(pool.map(one, items))

    async def ascore_batch(self, requests: Sequence[ScoreRequest]) -> list[TrustResult]:
        """Async form of :meth:`score_batch`."""
        import asyncio

        self._check_implemented()
        limit = asyncio.Semaphore(max(1, self.max_concurrency))

        async def one(item: ScoreRequest) -> TrustResult:
            rows = row_reporter()  # a progress display advances as each row finishes
            async with limit:
                try:
                    result = await self.ascore(item)
                except Exception as exc:
                    logger.warning("tlm-hooks: scoring one batch item failed: %s", exc)
                    result = TrustResult.failed(exc)
            if rows is not None:
                rows.finished(result.ok)
            return result

        return list(await asyncio.gather(*(one(item) for item in requests)))

    def _score_safely(self, request: ScoreRequest) -> TrustResult:
        try:
            return self.score(request)
        except Exception as exc:
            logger.warning("tlm-hooks: scoring one batch item failed: %s", exc)
            return TrustResult.failed(exc)
