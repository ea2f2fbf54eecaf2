"""AdaptiveLimiter: AIMD limits, bounded concurrency, cancellation without leaked slots."""

from __future__ import annotations

import asyncio

import pytest

from tlm_hooks.llm import AdaptiveLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_additive_increase_multiplicative_decrease_within_bounds() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(4, minimum=2, maximum=6, cooldown=1.0, clock=clock)
    for _ in range(4):
        limiter.on_success()
    assert limiter.limit == 5
    for _ in range(100):
        limiter.on_success()
    assert limiter.limit == 6  # capped
    limiter.on_overload()
    assert limiter.limit == 3
    limiter.on_overload()  # same burst (within the cooldown): counted once
    assert limiter.limit == 3
    clock.now = 5.0
    limiter.on_overload()
    assert limiter.limit == 2  # floored at minimum
    clock.now = 10.0
    limiter.on_overload()
    assert limiter.limit == 2


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ValueError):
        AdaptiveLimiter(0)
    with pytest.raises(ValueError):
        AdaptiveLimiter(4, maximum=2)
    with pytest.raises(ValueError):
        AdaptiveLimiter(4, decrease=1.5)


async def test_bounds_concurrency_and_follows_a_shrinking_limit() -> None:
    limiter = AdaptiveLimiter(3, cooldown=0.0)
    active = peak = 0

    async def work() -> None:
        nonlocal active, peak
        async with limiter.slot():
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1

    await asyncio.gather(*(work() for _ in range(12)))
    assert peak == 3 and limiter.in_flight == 0
    limiter.on_overload()
    assert limiter.limit == 1
    peak = 0
    await asyncio.gather(*(work() for _ in range(4)))
    assert peak == 1


async def test_cancelled_waiters_do_not_leak_slots() -> None:
    limiter = AdaptiveLimiter(1)
    await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter.release()
    assert limiter.in_flight == 0
    await asyncio.wait_for(limiter.acquire(), 1.0)
    limiter.release()


def test_shared_across_event_loops() -> None:
    limiter = AdaptiveLimiter(2)

    async def use() -> None:
        async with limiter.slot():
            await asyncio.sleep(0)

    for _ in range(3):
        asyncio.run(use())
    assert limiter.in_flight == 0
