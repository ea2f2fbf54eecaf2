"""Run a coroutine to completion from sync code, also when an event loop is already running."""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # asyncio and concurrent.futures load on first use: `import tlm_hooks` stays without them
    import asyncio

T = TypeVar("T")

__all__ = ["run_sync"]

# One long-lived loop in a daemon thread serves every sync-over-async call, so per-loop
# resources (HTTP connection pools of async clients) are made once and reused, and never
# outlive a closed loop.
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_pid = 0


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread, _pid
    import asyncio

    with _lock:
        if _loop is None or _pid != os.getpid() or _thread is None or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="tlm-hooks-loop", daemon=True)
            _thread.start()
            _pid = os.getpid()
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` and return its result (or raise its exception).

    It runs on tlm-hooks' own event loop in a helper thread, so this works with or without a
    running loop in the calling thread (Jupyter, FastAPI handlers) and never blocks or reuses
    the caller's loop. Context variables carry over. Called from that helper loop itself (a
    sync API used inside a coroutine it runs), the coroutine gets a fresh loop in a new thread.
    """
    import concurrent.futures

    ctx = contextvars.copy_context()
    if threading.current_thread() is _thread:
        return _run_in_new_thread(coro, ctx)
    loop = _background_loop()
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def start() -> None:
        task = ctx.run(loop.create_task, coro)

        def settle(finished: asyncio.Task[T]) -> None:
            if finished.cancelled():
                done.cancel()
            elif finished.exception() is not None:
                done.set_exception(finished.exception())  # type: ignore[arg-type]
            else:
                done.set_result(finished.result())

        task.add_done_callback(settle)

    loop.call_soon_threadsafe(start)
    return done.result()


def _run_in_new_thread(coro: Coroutine[Any, Any, T], ctx: contextvars.Context) -> T:
    import asyncio

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = ctx.run(asyncio.run, coro)
        except BaseException as exc:  # re-raised in the calling thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="tlm-hooks-run-sync", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
