"""Work that stops when nobody waits for it: a request's work is cancelled when its client
disconnects or when the server's shutdown grace runs out (then it answers 503 ``shutting_down``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from .errors import ApiError

__all__ = ["ClientGone", "Draining", "run_watched"]

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its reply was ready (its work was cancelled)."""


class Draining:
    """The server's shutdown state: once ``begin`` is called, new requests are refused and
    requests in flight have ``grace`` seconds left to finish."""

    retry_after = 1

    def __init__(self) -> None:
        self.deadline: float | None = None  # time.monotonic() when in-flight work is cut off
        self.refusals = 0  # 503 shutting_down replies made (for metrics)
        # one future per waiting request, each on its own loop (a TestClient runs one loop per call)
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    @property
    def active(self) -> bool:
        """True once shutdown has begun."""
        return self.deadline is not None

    def begin(self, grace: float) -> None:
        """Start draining (safe to call from a signal handler or another thread)."""
        if self.deadline is None:
            self.deadline = time.monotonic() + max(0.0, grace)
        for loop, waiter in list(self._waiters):  # no lock: a signal handler may run this on any thread
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(_set_done, waiter)

    def error(self) -> ApiError:
        """The 503 a request gets when the server shuts down under it (counted in ``refusals``)."""
        self.refusals += 1
        return ApiError(
            503,
            f"the server is shutting down; retry after {self.retry_after}s (on another replica if there is one)",
            kind="server_error",
            code="shutting_down",
            headers={"Retry-After": str(self.retry_after), "Connection": "close"},
        )

    async def expired(self) -> None:
        """Return when shutdown has begun and its grace has run out."""
        if self.deadline is None:
            loop = asyncio.get_running_loop()
            entry = (loop, loop.create_future())
            self._waiters.add(entry)
            try:
                if self.deadline is None:  # checked again: `begin` may have run meanwhile
                    await entry[1]
            finally:
                self._waiters.discard(entry)
        assert self.deadline is not None
        await asyncio.sleep(max(0.0, self.deadline - time.monotonic()))


def _set_done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _disconnected(request: Request) -> None:
    """Return when the client closes the connection (call only once the body is read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def run_watched(work: Awaitable[T], request: Request, draining: Draining) -> T:
    """``await work``, but cancel it when the client disconnects (raising ``ClientGone``) or the
    shutdown grace runs out (raising the 503 ``shutting_down`` ``ApiError``)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    stopping = asyncio.ensure_future(draining.expired())
    try:
        await asyncio.wait({task, gone, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for watcher in (gone, stopping):
            watcher.cancel()
    if task.cancelled():
        if _finished(gone):
            raise ClientGone
        if _finished(stopping):
            raise draining.error()
    return task.result()  # also raises CancelledError when the handler itself was cancelled


def _finished(watcher: asyncio.Future[None]) -> bool:
    return watcher.done() and not watcher.cancelled() and watcher.exception() is None
