"""BaseScorer: derived sync/async forms, batches (order, failures, bounded concurrency)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from tlm_hooks.scorers import BaseScorer, Scorer
from tlm_hooks.types import ScoreRequest, TrustResult

N = 8
# item i sleeps DELAYS[i]: early items finish last
DELAYS = [0.04 - 0.005 * i for i in range(N)]


def _requests(n: int = N) -> list[ScoreRequest]:
    return [ScoreRequest(str(i), prompt=f"q{i}") for i in range(n)]


def _expected(i: int) -> float:
    return i / 10


class Meter:
    """Counts how many scorings run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


class SyncScorer(BaseScorer):
    def __init__(self, max_concurrency: int = 8, fail_on: int | None = None, delay: float | None = None) -> None:
        self.max_concurrency = max_concurrency
        self.fail_on = fail_on
        self.delay = delay
        self.meter = Meter()

    def score(self, request: ScoreRequest) -> TrustResult:
        i = int(request.response)
        self.meter.enter()
        try:
            time.sleep(self.delay if self.delay is not None else DELAYS[i])
            if i == self.fail_on:
                raise RuntimeError(f"judge failed on item {i}")
            return TrustResult(_expected(i))
        finally:
            self.meter.leave()


class AsyncScorer(BaseScorer):
    def __init__(self, max_concurrency: int = 8, fail_on: int | None = None, delay: float | None = None) -> None:
        self.max_concurrency = max_concurrency
        self.fail_on = fail_on
        self.delay = delay
        self.meter = Meter()

    async def ascore(self, request: ScoreRequest) -> TrustResult:
        i = int(request.response)
        self.meter.enter()
        try:
            await asyncio.sleep(self.delay if self.delay is not None else DELAYS[i])
            if i == self.fail_on:
                raise RuntimeError(f"judge failed on item {i}")
            return TrustResult(_expected(i))
        finally:
            self.meter.leave()


KINDS = [SyncScorer, AsyncScorer]


async def _batch(scorer: BaseScorer, requests, entry: str):
    if entry == "score_batch":
        return await asyncio.to_thread(scorer.score_batch, requests)  # a plain sync caller
    return await scorer.ascore_batch(requests)


@pytest.mark.parametrize("entry", ["score_batch", "ascore_batch"])
@pytest.mark.parametrize("kind", KINDS)
async def test_batch_keeps_order(kind, entry: str) -> None:
    results = await _batch(kind(), _requests(), entry)
    assert [r.trustworthiness_score for r in results] == [_expected(i) for i in range(N)]


@pytest.mark.parametrize("entry", ["score_batch", "ascore_batch"])
@pytest.mark.parametrize("kind", KINDS)
async def test_one_failing_item_becomes_a_failed_slot(kind, entry: str, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="tlm_hooks")
    results = await _batch(kind(fail_on=3), _requests(), entry)
    assert len(results) == N
    failed = results[3]
    assert failed.trustworthiness_score is None
    assert failed.error_type == "RuntimeError"
    assert failed.error == "judge failed on item 3"
    assert [r.trustworthiness_score for i, r in enumerate(results) if i != 3] == [
        _expected(i) for i in range(N) if i != 3
    ]
    assert "judge failed on item 3" in caplog.text


@pytest.mark.parametrize("limit", [1, 3])
@pytest.mark.parametrize("entry", ["score_batch", "ascore_batch"])
@pytest.mark.parametrize("kind", KINDS)
async def test_concurrency_bounded_by_max_concurrency(kind, entry: str, limit: int) -> None:
    scorer = kind(max_concurrency=limit, delay=0.02)
    results = await _batch(scorer, _requests(10), entry)
    assert all(r.ok for r in results)
    assert scorer.meter.peak == limit  # never above the limit, and the limit is actually used


async def test_batch_runs_concurrently() -> None:
    scorer = AsyncScorer(max_concurrency=N, delay=0.05)
    start = time.perf_counter()
    await scorer.ascore_batch(_requests())
    assert time.perf_counter() - start < 0.05 * N / 2


@pytest.mark.parametrize("kind", KINDS)
async def test_empty_batch(kind) -> None:
    assert await kind().ascore_batch([]) == []
    assert kind().score_batch([]) == []


def test_async_only_scorer_gets_sync_forms() -> None:
    scorer = AsyncScorer()
    assert scorer.score(_requests()[2]).trustworthiness_score == _expected(2)
    assert [r.trustworthiness_score for r in scorer.score_batch(_requests(3))] == [_expected(i) for i in range(3)]


async def test_async_only_scorer_sync_form_inside_running_loop() -> None:
    scorer = AsyncScorer()
    assert scorer.score(_requests()[5]).trustworthiness_score == _expected(5)
    assert len(scorer.score_batch(_requests(4))) == 4


async def test_sync_only_scorer_gets_async_forms_off_the_loop() -> None:
    threads = []

    class Recording(SyncScorer):
        def score(self, request):
            threads.append(threading.get_ident())
            return super().score(request)

    scorer = Recording()
    assert (await scorer.ascore(_requests()[4])).trustworthiness_score == _expected(4)
    assert threads[0] != threading.get_ident()  # ran in a worker thread, not on the loop
    assert [r.trustworthiness_score for r in await scorer.ascore_batch(_requests(3))] == [
        _expected(i) for i in range(3)
    ]


class Neither(BaseScorer):
    pass


async def test_scorer_with_neither_method_raises_naming_its_class() -> None:
    scorer = Neither()
    request = _requests(1)[0]
    with pytest.raises(NotImplementedError, match="Neither"):
        scorer.score(request)
    with pytest.raises(NotImplementedError, match="Neither"):
        await scorer.ascore(request)
    with pytest.raises(NotImplementedError, match="Neither"):
        await asyncio.to_thread(scorer.score_batch, [request, request])
    with pytest.raises(NotImplementedError, match="Neither"):
        await scorer.ascore_batch([request, request])


def test_base_scorer_satisfies_protocol() -> None:
    assert isinstance(SyncScorer(), Scorer) and isinstance(AsyncScorer(), Scorer)
    assert SyncScorer().wants_logprobs is False
