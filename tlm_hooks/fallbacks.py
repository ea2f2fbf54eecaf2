"""Built-in fallbacks for low-trust responses.

Each one works on sync and async calls. On a streamed call the answer has already reached the
caller when the score arrives, so:

- ``AppendWarning`` sends its warning as one extra chunk at the end of the stream;
- ``ReplaceResponse``, ``Regenerate``, ``Escalate`` and ``HumanReview`` cannot un-send the text:
  their replacement is kept on the stream as ``stream.tlm_fallback_response`` (a full completion)
  and recorded in ``tlm_metadata["fallbacks"]``;
- ``Raise`` raises when the stream ends (after the last chunk was delivered).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .errors import InvalidOptionError, UntrustworthyResponseError
from .policy import LowTrustEvent

__all__ = ["AppendWarning", "ReplaceResponse", "Regenerate", "Escalate", "HumanReview", "Raise"]

DEFAULT_WARNING = "\n\n[tlm-hooks warning: this answer may be unreliable (trust score {score:.2f}).]"
DEFAULT_HOLDING = "A person will review this answer and get back to you."


_PLACEHOLDER = re.compile(r"\{(score|threshold)(?::([^{}]*))?\}")


def _format(template: str, event: LowTrustEvent) -> str:
    """Fill ``{score}`` / ``{threshold}`` (with an optional format spec, e.g. ``{score:.2f}``);
    every other brace is literal text, so JSON answers pass through unchanged."""
    values = {"score": event.result.trustworthiness_score, "threshold": event.threshold}

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        if value is None:
            return "n/a"
        return format(value, match.group(2) or "")

    return _PLACEHOLDER.sub(fill, template)


class AppendWarning:
    """Append a warning to the answer. ``text`` may use ``{score}`` and ``{threshold}``."""

    name = "append_warning"
    stream_stage = "either"  # where it runs on a stream: see policy.split_for_stream

    def __init__(self, text: str = DEFAULT_WARNING) -> None:
        if not isinstance(text, str):
            raise InvalidOptionError("AppendWarning.text", text, "a string (may contain {score}, {threshold})")
        self.text = text

    def handle(self, event: LowTrustEvent) -> Any:
        return event.with_text(event.text + _format(self.text, event))

    async def ahandle(self, event: LowTrustEvent) -> Any:
        return self.handle(event)


class ReplaceResponse:
    """Replace the answer with a fixed text, or with ``fn(event) -> str``."""

    name = "replace_response"
    stream_stage = "either"  # where it runs on a stream: see policy.split_for_stream

    def __init__(self, text: str | Callable[[LowTrustEvent], str] = "I'm not confident enough to answer that.") -> None:
        if not isinstance(text, str) and not callable(text):
            raise InvalidOptionError("ReplaceResponse.text", text, "a string or a function(event) -> str")
        self.text = text

    def handle(self, event: LowTrustEvent) -> Any:
        if not callable(self.text):
            return event.with_text(_format(self.text, event))
        text = self.text(event)
        if inspect.isawaitable(text):
            from ._run import run_sync

            text = run_sync(_await(text))
        return event.with_text(str(text))

    async def ahandle(self, event: LowTrustEvent) -> Any:
        if not callable(self.text):
            return event.with_text(_format(self.text, event))
        if inspect.iscoroutinefunction(self.text):
            text = await self.text(event)
        else:
            import asyncio  # loaded by the running loop already; not at `import tlm_hooks`

            text = await asyncio.to_thread(self.text, event)
            if inspect.isawaitable(text):
                text = await text
        return event.with_text(str(text))


def _check_attempts(name: str, attempts: Any) -> int:
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 10:
        raise InvalidOptionError(f"{name}.attempts", attempts, "an integer from 1 to 10")
    return attempts


class Regenerate:
    """Ask the model again up to ``attempts`` times; keep the most trustworthy answer.

    Stops early once an answer reaches the threshold. ``overrides`` (e.g. ``temperature=1.0``)
    are applied to the repeated calls. The original answer stays if nothing scores higher.
    """

    name = "regenerate"
    stream_stage = "after"  # where it runs on a stream: see policy.split_for_stream

    def __init__(self, attempts: int = 2, **overrides: Any) -> None:
        self.attempts = _check_attempts("Regenerate", attempts)
        self.overrides = overrides

    def _better(self, event: LowTrustEvent, best: tuple[Any, Any], new: tuple[Any, Any]) -> tuple[Any, Any]:
        new_score = new[1].trustworthiness_score
        best_score = best[1].trustworthiness_score
        if new_score is not None and (best_score is None or new_score > best_score):
            return new
        return best

    def handle(self, event: LowTrustEvent) -> Any | None:
        best = (event.response, event.result)
        for _ in range(self.attempts):
            response = event.call_model(**self.overrides)
            best = self._better(event, best, (response, event.score_response(response)))
            if (best[1].trustworthiness_score or 0.0) >= event.threshold:
                break
        return self._keep(event, best)

    async def ahandle(self, event: LowTrustEvent) -> Any | None:
        best = (event.response, event.result)
        for _ in range(self.attempts):
            response = await event.acall_model(**self.overrides)
            best = self._better(event, best, (response, await event.ascore_response(response)))
            if (best[1].trustworthiness_score or 0.0) >= event.threshold:
                break
        return self._keep(event, best)

    @staticmethod
    def _keep(event: LowTrustEvent, best: tuple[Any, Any]) -> Any | None:
        if best[0] is event.response:
            return None
        event.result = best[1]
        return best[0]


class Escalate:
    """Answer again with a stronger model: another ``client`` and/or another ``model``.

    The new answer replaces the old one (and is scored, so ``tlm_metadata`` describes it).
    ``client`` must be of the same kind as the hooked one (e.g. an ``OpenAI`` client for an
    ``OpenAI`` call; an async client for an async call).
    """

    name = "escalate"
    stream_stage = "after"  # where it runs on a stream: see policy.split_for_stream

    def __init__(self, *, client: Any = None, model: str | None = None, **overrides: Any) -> None:
        if client is None and model is None:
            raise InvalidOptionError("Escalate", None, "client=… and/or model=…")
        self.client = client
        self.overrides = dict(overrides, **({"model": model} if model is not None else {}))

    def handle(self, event: LowTrustEvent) -> Any:
        if self.client is not None:
            response = event.ops.call_client(self.client, **self.overrides)
        else:
            response = event.call_model(**self.overrides)
        event.result = event.score_response(response)
        return response

    async def ahandle(self, event: LowTrustEvent) -> Any:
        if self.client is not None:
            response = await event.ops.acall_client(self.client, **self.overrides)
        else:
            response = await event.acall_model(**self.overrides)
        event.result = await event.ascore_response(response)
        return response


class HumanReview:
    """Hand the event to a person: ``callback(event)`` or ``queue.put(event)``, then answer
    with ``holding_text`` until they reply. Async callbacks are awaited on async calls;
    a queue with ``put_nowait`` (e.g. ``asyncio.Queue``) is fed without blocking."""

    name = "human_review"
    stream_stage = "either"  # where it runs on a stream: see policy.split_for_stream

    def __init__(
        self,
        callback: Callable[[LowTrustEvent], Any] | None = None,
        *,
        queue: Any = None,
        holding_text: str = DEFAULT_HOLDING,
    ) -> None:
        if (callback is None) == (queue is None):
            raise InvalidOptionError("HumanReview", (callback, queue), "exactly one of callback=… or queue=…")
        if callback is not None and not callable(callback):
            raise InvalidOptionError("HumanReview.callback", callback, "a function(event)")
        if queue is not None and not (hasattr(queue, "put_nowait") or hasattr(queue, "put")):
            raise InvalidOptionError("HumanReview.queue", queue, "an object with put_nowait() or put()")
        self.callback = callback
        self.queue = queue
        self.holding_text = holding_text

    def _enqueue(self, event: LowTrustEvent) -> None:
        put = getattr(self.queue, "put_nowait", None) or self.queue.put
        put(event)

    @staticmethod
    def _snapshot(event: LowTrustEvent) -> LowTrustEvent:
        # the policy goes on to update the live event (its response becomes the holding text):
        # the reviewer must keep the answer that was judged untrustworthy
        return replace(event, actions=list(event.actions))

    def handle(self, event: LowTrustEvent) -> Any:
        review = self._snapshot(event)
        if self.callback is not None:
            out = self.callback(review)
            if inspect.isawaitable(out):
                from ._run import run_sync

                run_sync(_await(out))
        else:
            self._enqueue(review)
        return event.with_text(_format(self.holding_text, event))

    async def ahandle(self, event: LowTrustEvent) -> Any:
        review = self._snapshot(event)
        if self.callback is not None:
            if inspect.iscoroutinefunction(self.callback):
                await self.callback(review)
            else:
                import asyncio

                out = await asyncio.to_thread(self.callback, review)
                if inspect.isawaitable(out):
                    await out
        else:
            self._enqueue(review)
        return event.with_text(_format(self.holding_text, event))


async def _await(value: Any) -> Any:
    return await value


class Raise:
    """Raise :class:`~tlm_hooks.errors.UntrustworthyResponseError` carrying the result."""

    name = "raise"
    stream_stage = "before"  # where it runs on a stream: see policy.split_for_stream

    def handle(self, event: LowTrustEvent) -> Any:
        raise UntrustworthyResponseError(event.result, event.response, event.threshold)

    async def ahandle(self, event: LowTrustEvent) -> Any:
        self.handle(event)
