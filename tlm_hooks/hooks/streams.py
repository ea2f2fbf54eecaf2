"""Stream proxies: chunks pass through as they arrive; scoring runs once when the stream ends.

The score is then on the proxy as ``tlm_metadata`` (dict) and ``tlm_result``. A stream ends
exactly once, whichever comes first: exhausted (scored, then the policy acts), closed or its
``with`` block left early (what was received is scored and marked partial), or an exception
from the SDK mid-stream (the same, then the SDK's exception is raised unchanged). A stream
dropped without any of these is not scored: nothing runs from a finaliser.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import wrapt

from ..adapters.base import CallAdapter
from ..errors import TrustScoringError, UntrustworthyResponseError
from ..types import TrustResult

__all__ = ["SyncStreamProxy", "AsyncStreamProxy", "StreamOutcome", "StreamCall"]

logger = logging.getLogger("tlm_hooks")
_DELIBERATE = (UntrustworthyResponseError, TrustScoringError)
_RUNNING: set[asyncio.Task[None]] = set()  # after-end fallbacks of async streams still running


class StreamOutcome:
    """What ending a stream produced: the result, the accumulated response, an optional extra
    chunk to send, a replacement response that could not be streamed, and ``later``: the
    fallbacks that run once the stream has ended (a function returning ``(result, replacement)``,
    or for async streams one returning an awaitable of it)."""

    __slots__ = ("result", "response", "extra_chunk", "fallback_response", "later")

    def __init__(self, result: TrustResult, response: Any, extra_chunk: Any, fallback_response: Any = None) -> None:
        self.result = result
        self.response = response
        self.extra_chunk = extra_chunk
        self.fallback_response = fallback_response
        self.later: Callable[[], Any] | None = None


class StreamCall(Protocol):
    """What a stream proxy needs from its hooked call (:class:`~tlm_hooks.hooks.pipeline.HookedCall`)."""

    @property
    def adapter(self) -> CallAdapter: ...  # read-only here, so a call may hold a narrower adapter

    def stream_outcome(
        self, chunks: Sequence[Any], *, finished: bool, error: BaseException | None = None
    ) -> StreamOutcome: ...

    async def astream_outcome(
        self, chunks: Sequence[Any], *, finished: bool, error: BaseException | None = None
    ) -> StreamOutcome: ...


class _StreamState(wrapt.ObjectProxy):  # type: ignore[misc]
    """Shared bookkeeping; state lives in ``_self_*`` attributes so it never leaks to the stream."""

    def __init__(self, wrapped: Any, call: StreamCall) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_chunks: list[Any] = []
        self._self_outcome: StreamOutcome | None = None
        self._self_pending: Any = None  # an extra chunk still to send
        # after an answer-ending event (Responses' `response.completed`): the scored event still
        # to send, and later events pass through unscored
        self._self_closing: Any = None
        self._self_answered = False

    @property
    def tlm_result(self) -> TrustResult | None:
        """The trust result, once the stream has ended or been closed (else ``None``). With
        fallbacks that run after the stream's end (``Regenerate``, ``Escalate``), a sync stream's
        ``tlm_result``/``tlm_metadata``/``tlm_fallback_response`` wait for them; on an async
        stream, ``await stream.wait_fallbacks()`` first (until then they hold the score alone)."""
        self._settled()
        return None if self._self_outcome is None else self._self_outcome.result

    def _settled(self) -> None:
        """Wait for the after-end fallbacks where waiting is possible (sync streams)."""

    @property
    def tlm_metadata(self) -> dict[str, Any] | None:
        """``tlm_result`` as the ``tlm_metadata`` dict."""
        result = self.tlm_result
        return None if result is None else result.to_dict()

    @property
    def tlm_response(self) -> Any:
        """The whole answer assembled from the chunks (with ``tlm_metadata``), after the end."""
        return None if self._self_outcome is None else self._self_outcome.response

    @property
    def tlm_fallback_response(self) -> Any:
        """A replacement a fallback produced that could not be streamed (else ``None``). From a
        fallback that runs after the stream's end (``Regenerate``, ``Escalate``), it is set once
        that fallback is done: see ``wait_fallbacks``."""
        self._settled()
        return None if self._self_outcome is None else self._self_outcome.fallback_response

    def _later_done(self, outcome: StreamOutcome, done: tuple[TrustResult, Any]) -> None:
        result, replacement = done
        outcome.result = result
        if replacement is not None:
            outcome.fallback_response = replacement

    @staticmethod
    def _later_failed(exc: BaseException) -> None:
        logger.warning("tlm-hooks: a fallback run after the stream ended failed: %s: %s", type(exc).__name__, exc)

    def _settle(self, outcome: StreamOutcome) -> None:
        try:
            outcome.response = self._self_call.adapter.attach(outcome.response, outcome.result)
        except Exception:
            pass
        self._self_outcome = outcome
        self._self_pending = outcome.extra_chunk

    def _after_answer(self, chunk: Any) -> Any:
        """What to send once the answer-ending ``chunk`` was scored: the extra chunk a fallback
        added (if any), then ``chunk`` carrying the scored response."""
        self._self_answered = True
        pending, self._self_pending = self._self_pending, None
        outcome = self._self_outcome
        closing = chunk
        if outcome is not None and outcome.response is not None:
            try:
                closing = self._self_call.adapter.closing_chunk(chunk, outcome.response, after_extra=pending is not None)
            except Exception as exc:
                logger.warning("tlm-hooks: could not put the score on the stream's last event: %s", exc)
        if pending is None:
            return closing
        self._self_closing = closing
        return pending

    def _failed(self, exc: Exception) -> None:
        logger.warning("tlm-hooks: could not score this stream (%s: %s)", type(exc).__name__, exc)
        self._self_outcome = StreamOutcome(TrustResult.failed(exc), None, None)


class SyncStreamProxy(_StreamState):
    """Proxy for a sync stream (iterator + context manager)."""

    def __init__(self, wrapped: Any, call: StreamCall) -> None:
        super().__init__(wrapped, call)
        self._self_iter = iter(wrapped)
        self._self_later: threading.Thread | None = None

    def wait_fallbacks(self, timeout: float | None = None) -> bool:
        """Block until the fallbacks that run after the stream's end are done (at once when there
        are none); False if ``timeout`` seconds passed first."""
        thread = self._self_later
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _settled(self) -> None:
        self.wait_fallbacks()

    def _start_later(self, outcome: StreamOutcome) -> None:
        later = outcome.later
        if later is None:
            return

        def run() -> None:
            try:
                self._later_done(outcome, later())
            except Exception as exc:  # logged, never raised: the stream has ended
                self._later_failed(exc)

        context = contextvars.copy_context()
        self._self_later = threading.Thread(target=context.run, args=(run,), name="tlm-hooks-fallbacks", daemon=True)
        self._self_later.start()

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        if self._self_closing is not None:
            closing, self._self_closing = self._self_closing, None
            return closing
        if self._self_outcome is not None and not self._self_answered:
            return self._emit_pending()
        try:
            chunk = next(self._self_iter)
        except StopIteration:
            self._end(finished=True)
            return self._emit_pending()
        except Exception as exc:  # the SDK's error: score what came, then raise it unchanged
            self._end(finished=False, error=exc)
            raise
        if self._self_answered:
            return chunk
        self._self_chunks.append(chunk)
        if self._self_call.adapter.ends_answer(chunk):
            try:
                self._end(finished=True)
            except _DELIBERATE:  # e.g. Raise: nothing more will be read, so release the connection
                self.__wrapped__.close()
                raise
            return self._after_answer(chunk)
        return chunk

    def _emit_pending(self) -> Any:
        pending, self._self_pending = self._self_pending, None
        if pending is None:
            raise StopIteration
        return pending

    def _end(self, *, finished: bool, error: BaseException | None = None) -> None:
        if self._self_outcome is not None:
            return
        try:
            self._settle(self._self_call.stream_outcome(self._self_chunks, finished=finished, error=error))
            self._start_later(self._self_outcome)  # type: ignore[arg-type]
        except _DELIBERATE:
            self._self_outcome = StreamOutcome(TrustResult(None), None, None)
            raise
        except Exception as exc:
            self._failed(exc)

    def close(self) -> None:
        """Close the underlying stream, then score what was received (once)."""
        try:
            self.__wrapped__.close()
        finally:
            self._end(finished=False)

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._end(finished=False)


class AsyncStreamProxy(_StreamState):
    """Proxy for an async stream (async iterator + async context manager)."""

    def __init__(self, wrapped: Any, call: StreamCall) -> None:
        super().__init__(wrapped, call)
        self._self_iter = wrapped.__aiter__()
        self._self_later: asyncio.Task[None] | None = None

    async def wait_fallbacks(self, timeout: float | None = None) -> bool:
        """Wait until the fallbacks that run after the stream's end are done (at once when there
        are none); False if ``timeout`` seconds passed first (they go on running)."""
        task = self._self_later
        if task is None:
            return True
        done, _ = await asyncio.wait({task}, timeout=timeout)
        return bool(done)

    def _start_later(self, outcome: StreamOutcome) -> None:
        later = outcome.later
        if later is None:
            return

        async def run() -> None:
            try:
                self._later_done(outcome, await later())
            except Exception as exc:  # logged, never raised: the stream has ended
                self._later_failed(exc)

        task = asyncio.get_running_loop().create_task(run())
        _RUNNING.add(task)  # the loop keeps only a weak reference: the stream may be dropped first
        task.add_done_callback(_RUNNING.discard)
        self._self_later = task

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        if self._self_closing is not None:
            closing, self._self_closing = self._self_closing, None
            return closing
        if self._self_outcome is not None and not self._self_answered:
            return self._emit_pending()
        try:
            chunk = await self._self_iter.__anext__()
        except StopAsyncIteration:
            await self._end(finished=True)
            return self._emit_pending()
        except Exception as exc:  # the SDK's error: score what came, then raise it unchanged
            await self._end(finished=False, error=exc)
            raise
        if self._self_answered:
            return chunk
        self._self_chunks.append(chunk)
        if self._self_call.adapter.ends_answer(chunk):
            try:
                await self._end(finished=True)
            except _DELIBERATE:
                await self.__wrapped__.close()
                raise
            return self._after_answer(chunk)
        return chunk

    def _emit_pending(self) -> Any:
        pending, self._self_pending = self._self_pending, None
        if pending is None:
            raise StopAsyncIteration
        return pending

    async def _end(self, *, finished: bool, error: BaseException | None = None) -> None:
        if self._self_outcome is not None:
            return
        try:
            self._settle(await self._self_call.astream_outcome(self._self_chunks, finished=finished, error=error))
            self._start_later(self._self_outcome)  # type: ignore[arg-type]
        except _DELIBERATE:
            self._self_outcome = StreamOutcome(TrustResult(None), None, None)
            raise
        except Exception as exc:
            self._failed(exc)

    async def close(self) -> None:
        """Close the underlying stream, then score what was received (once)."""
        try:
            await self.__wrapped__.close()
        finally:
            await self._end(finished=False)

    async def aclose(self) -> None:
        """Close the underlying stream (its ``aclose``, else ``close``; azure's has only ``aclose``),
        then score what was received (once)."""
        closer = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
        try:
            await closer()
        finally:
            await self._end(finished=False)

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            await self._end(finished=False)
