"""Get ``n`` generations from servers that may not honour ``n``: one request, else parallel seeds."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from typing import Literal

from .base import Generation
from .failures import is_context_overflow, status_of

__all__ = ["NSupport", "distinct_seeds", "complete_n"]

logger = logging.getLogger("tlm_hooks")

Request = Callable[[int, int | None], Awaitable[list[Generation]]]  # (n, seed) -> generations
Mode = Literal["probe", "n", "seeds"]


def distinct_seeds(count: int, seed: int | None) -> list[int]:
    """``count`` different seeds, starting at ``seed`` (random when ``None``)."""
    start = random.randrange(2**30) if seed is None else seed
    return [start + i for i in range(count)]


class NSupport:
    """What one backend learned about ``n>1``: unknown (``None``), honoured, or not.

    While it is unknown, one request at a time asks with ``n>1`` (the probe) and every other
    request waits for its outcome, so concurrent requests never each have to learn (or fail on)
    a refusal. Safe to share between threads and event loops.
    """

    def __init__(self) -> None:
        self.honoured: bool | None = None
        self._lock = threading.Lock()
        self._probing = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    async def claim(self) -> Mode:
        """How the caller asks: ``"probe"`` (it finds out, then must call `settle`), ``"n"``
        (honoured) or ``"seeds"`` (refused). Waits while another request is probing."""
        while True:
            with self._lock:
                if self.honoured is not None:
                    return "n" if self.honoured else "seeds"
                if not self._probing:
                    self._probing = True
                    return "probe"
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append((asyncio.get_running_loop(), waiter))
            await waiter  # the probe's outcome (still unknown if it failed: then probe again)

    def settle(self, honoured: bool | None) -> None:
        """Record a probe's outcome (``None``: it failed without telling) and wake the waiters."""
        with self._lock:
            if honoured is not None:
                self.honoured = honoured
            self._probing = False
            waiters, self._waiters = self._waiters, []
        for loop, waiter in waiters:
            try:
                loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # that loop is closed: nobody is waiting there any more
                pass


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _refuses_n(exc: BaseException) -> bool:
    """A 400/422 that is about the request, not about the prompt's size."""
    return status_of(exc) in (400, 422) and not is_context_overflow(exc)


async def complete_n(request: Request, n: int, seed: int | None, support: NSupport) -> list[Generation]:
    """``n`` generations: one request asking for ``n`` unless the server is known not to honour
    it; after a short answer or a 400/422 rejecting ``n`` (remembered in ``support``) the rest
    come from parallel requests with distinct seeds. If some of those fail, the others' answers
    are returned (fewer than ``n``); if all fail, the first error is raised."""
    if n <= 1:
        return await request(1, seed)
    seeds = distinct_seeds(n, seed)
    got: list[Generation] = []
    mode = await support.claim()
    if mode != "seeds":
        learned: bool | None = None
        try:
            got = await request(n, seeds[0])
        except Exception as exc:
            if mode != "probe" or not _refuses_n(exc):
                raise
            learned = False
            logger.info("tlm-hooks: the judge refused n=%d (%s); asking once per sample", n, type(exc).__name__)
        else:
            learned = len(got) >= n
        finally:
            if mode == "probe" or learned is False:
                support.settle(learned)
        if learned:
            return got[:n]
    outcomes = await asyncio.gather(*(request(1, s) for s in seeds[len(got) :]), return_exceptions=True)
    more: list[Generation] = []
    failures: list[BaseException] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like
            failures.append(outcome)
        else:
            more.extend(outcome[:1])
    if failures and not got and not more:
        raise failures[0]
    return got + more
