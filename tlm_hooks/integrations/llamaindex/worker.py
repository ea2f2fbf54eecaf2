"""`ScoringWorker`: runs scoring jobs on a background thread so the app's thread and event loop
never wait for a score. The queue is bounded: when it is full a job is dropped (and counted,
with a warning) instead of blocking the app."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from ..._guard import unhooked

__all__ = ["ScoringWorker"]

logger = logging.getLogger("tlm_hooks")

Job = Callable[[], None]


class ScoringWorker:
    """One daemon thread (started on the first job) working through up to ``max_pending`` jobs.

    Jobs run inside :func:`~tlm_hooks.unhooked`, so LLM calls a scorer makes are neither hooked
    nor seen by the handlers. A job's exception is logged, never raised to anyone.
    """

    def __init__(self, max_pending: int = 256, name: str = "tlm-hooks-llamaindex") -> None:
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an integer >= 1, got {max_pending!r}")
        self.max_pending = max_pending
        self.name = name
        self.dropped = 0
        self._queue: queue.Queue[Job | None] = queue.Queue(max_pending)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._unfinished = 0
        self._thread: threading.Thread | None = None

    def submit(self, job: Job) -> bool:
        """Queue ``job`` without waiting; returns False (and counts a drop) when the queue is full."""
        with self._lock:
            self._start()
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self.dropped += 1
                dropped = self.dropped
            else:
                self._unfinished += 1
                return True
        if dropped == 1 or dropped % 100 == 0:
            logger.warning(
                "tlm-hooks: LlamaIndex scoring queue full (%d pending): %d event(s) dropped unscored so far",
                self.max_pending,
                dropped,
            )
        return False

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued job is done; False if ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._unfinished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return self._unfinished

    def close(self, timeout: float | None = 5.0) -> None:
        """Finish queued jobs (up to ``timeout``), then stop the thread (restarted by a later job)."""
        self.wait(timeout)
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                try:
                    self._queue.put_nowait(None)
                except queue.Full:  # still busy after the timeout: the daemon thread is left to exit with the process
                    return
        if thread is not None:
            thread.join(timeout)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with unhooked():
            while True:
                job = self._queue.get()
                if job is None:
                    return
                try:
                    job()
                except Exception as exc:
                    logger.warning("tlm-hooks: a LlamaIndex scoring job failed: %s: %s", type(exc).__name__, exc)
                finally:
                    with self._idle:
                        self._unfinished -= 1
                        self._idle.notify_all()
