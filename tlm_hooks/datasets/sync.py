"""Run a dataset coroutine to the end from sync code, so that Ctrl-C stops it cleanly."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run_to_end"]

T = TypeVar("T")


def run_to_end(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to the end from sync code. Without a running loop in this thread it runs
    here (Ctrl-C cancels it cleanly); inside one (Jupyter) it runs on a helper thread, and Ctrl-C
    cancels it there before being re-raised."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_here(make)
    box: dict[str, Any] = {}
    ready = threading.Event()

    async def main() -> T:
        box["loop"], box["task"] = asyncio.get_running_loop(), asyncio.current_task()
        ready.set()
        return await make()

    def target() -> None:
        try:
            box["value"] = asyncio.run(main())
        except BaseException as exc:  # handed to the calling thread
            box["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=target, name="tlm-hooks-score-file", daemon=True)
    thread.start()
    try:
        thread.join()
    except KeyboardInterrupt:
        ready.wait()
        if "task" in box:
            box["loop"].call_soon_threadsafe(box["task"].cancel)
        thread.join()
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _run_here(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(make())``. A KeyboardInterrupt or SystemExit raised inside the coroutine (a
    scorer's thread, not the SIGINT handler) leaves the exception on the main task as well as
    raising it here: it is marked retrieved, so it is not logged again at garbage collection."""
    holder: list[asyncio.Task[Any]] = []

    async def main() -> T:
        task = asyncio.current_task()
        if task is not None:
            holder.append(task)
        return await make()

    try:
        return asyncio.run(main())
    except BaseException:
        if holder and holder[0].done() and not holder[0].cancelled():
            holder[0].exception()
        raise
