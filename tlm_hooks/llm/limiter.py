"""`AdaptiveLimiter`: an AIMD concurrency limit for judge calls (shrinks on overload, grows on success)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

__all__ = ["AdaptiveLimiter"]


class AdaptiveLimiter:
    """Bound the number of requests in flight; adapt the bound to what the server tolerates.

    Additive increase: after ``limit`` successes in a row the limit grows by one (up to
    ``maximum``). Multiplicative decrease: a rate limit or timeout multiplies it by ``decrease``
    (down to ``minimum``), at most once per ``cooldown`` seconds so one burst of 429s counts once.
    Safe to share between threads and event loops.
    """

    def __init__(
        self,
        initial: int = 16,
        *,
        minimum: int = 1,
        maximum: int = 64,
        decrease: float = 0.5,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= minimum <= initial <= maximum:
            raise ValueError(f"need 1 <= minimum <= initial <= maximum, got {minimum}, {initial}, {maximum}")
        if not 0 < decrease < 1:
            raise ValueError(f"decrease must be in (0, 1), got {decrease}")
        self.minimum, self.maximum, self.decrease, self.cooldown = minimum, maximum, decrease, cooldown
        self._clock = clock
        self._limit = initial
        self._in_flight = 0
        self._successes = 0
        self._last_decrease = float("-inf")
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._lock = threading.Lock()

    @property
    def limit(self) -> int:
        """The current concurrency bound."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """Requests holding a slot now."""
        return self._in_flight

    def __repr__(self) -> str:
        return f"AdaptiveLimiter(limit={self._limit}, in_flight={self._in_flight})"

    async def acquire(self) -> None:
        """Wait for a free slot."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._in_flight < self._limit and not self._waiters:
                self._in_flight += 1
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                    return_slot = False
                else:  # granted: give the slot back (a pending grant releases it itself)
                    return_slot = waiter.done() and not waiter.cancelled()
            if return_slot:
                self.release()
            raise

    def release(self) -> None:
        """Free a slot taken by :meth:`acquire`."""
        with self._lock:
            self._in_flight -= 1
            self._wake_locked()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """``async with limiter.slot():`` holds one slot for the block."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def on_success(self) -> None:
        """A request succeeded: count towards growing the limit."""
        with self._lock:
            self._successes += 1
            if self._successes >= self._limit and self._limit < self.maximum:
                self._limit += 1
                self._successes = 0
                self._wake_locked()

    def on_overload(self) -> None:
        """The server pushed back (429, timeout): shrink the limit."""
        with self._lock:
            now = self._clock()
            self._successes = 0
            if now - self._last_decrease < self.cooldown:
                return
            self._last_decrease = now
            self._limit = max(self.minimum, int(self._limit * self.decrease))

    def _wake_locked(self) -> None:
        while self._waiters and self._in_flight < self._limit:
            waiter = self._waiters.popleft()
            self._in_flight += 1
            try:
                waiter.get_loop().call_soon_threadsafe(self._grant, waiter)
            except RuntimeError:  # its loop is closed: nobody is waiting any more
                self._in_flight -= 1

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():  # cancelled before the grant arrived
            self.release()
        else:
            waiter.set_result(None)
