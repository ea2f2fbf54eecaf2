"""`TrustPolicy`: what a low score (or a scoring failure) means, and the fallback chain.

The policy knows nothing about SDK types: everything SDK-specific a fallback may need
(read or rewrite the answer, call the model again, score another answer) reaches it through
the :class:`LowTrustEvent`'s ``ops``.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from .errors import InvalidOptionError, TrustScoringError, UntrustworthyResponseError
from .types import ScoreRequest, TrustResult

__all__ = [
    "TrustPolicy",
    "LowTrustEvent",
    "ResponseOps",
    "Fallback",
    "FallbackLike",
    "OnError",
    "DEFAULT_SCORE_TIMEOUT",
    "check_score_timeout",
    "run_policy",
    "arun_policy",
    "split_for_stream",
]

logger = logging.getLogger("tlm_hooks")

OnError = Literal["warn", "ignore", "raise"]
DEFAULT_SCORE_TIMEOUT = 120.0  # as long as `tlm-hooks serve` gives one request, by default
_ON_ERROR: tuple[str, ...] = ("warn", "ignore", "raise")


class ResponseOps(Protocol):
    """SDK-specific actions on one hooked call, provided by the hook to fallbacks."""

    def text_of(self, response: Any) -> str: ...

    def with_text(self, response: Any, text: str) -> Any: ...

    def call_model(self, **overrides: Any) -> Any: ...

    async def acall_model(self, **overrides: Any) -> Any: ...

    def call_client(self, client: Any, **overrides: Any) -> Any: ...

    async def acall_client(self, client: Any, **overrides: Any) -> Any: ...

    def score(self, response: Any) -> TrustResult: ...

    async def ascore(self, response: Any) -> TrustResult: ...


@dataclass
class LowTrustEvent:
    """Handed to each fallback when a response scores below the threshold.

    ``response`` and ``result`` are the current answer and its score (a fallback that replaces
    the answer updates both). ``kwargs`` are the call's arguments (read-only). ``is_stream`` is
    true when the answer was already streamed to the caller: it can no longer be un-sent.
    """

    response: Any
    result: TrustResult
    threshold: float
    kwargs: Mapping[str, Any]
    ops: ResponseOps
    request: ScoreRequest | None = None
    is_stream: bool = False
    is_async: bool = False
    actions: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The current answer's text."""
        return self.ops.text_of(self.response)

    @property
    def score(self) -> float | None:
        return self.result.trustworthiness_score

    def with_text(self, text: str) -> Any:
        """A copy of the current response whose answer text is ``text``."""
        return self.ops.with_text(self.response, text)

    def call_model(self, **overrides: Any) -> Any:
        """Call the original model again (not hooked, never streamed), with ``overrides``."""
        return self.ops.call_model(**overrides)

    async def acall_model(self, **overrides: Any) -> Any:
        return await self.ops.acall_model(**overrides)

    def score_response(self, response: Any) -> TrustResult:
        """Score another response to the same request the way this call is scored."""
        return self.ops.score(response)

    async def ascore_response(self, response: Any) -> TrustResult:
        return await self.ops.ascore(response)


@runtime_checkable
class Fallback(Protocol):
    """A handler for low-trust responses: return a replacement response, or ``None`` to keep it."""

    name: str

    def handle(self, event: LowTrustEvent) -> Any | None: ...

    async def ahandle(self, event: LowTrustEvent) -> Any | None: ...


FallbackLike = Fallback | Callable[[LowTrustEvent], Any]


class _FunctionFallback:
    """A plain function ``fn(event) -> response | None`` (sync or async) used as a fallback."""

    def __init__(self, fn: Callable[[LowTrustEvent], Any]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__name__", "custom")
        self.stream_stage = getattr(fn, "stream_stage", "before")  # a function may say it can wait

    def handle(self, event: LowTrustEvent) -> Any | None:
        out = self.fn(event)
        if inspect.isawaitable(out):
            from ._run import run_sync

            out = run_sync(_await(out))
        return out

    async def ahandle(self, event: LowTrustEvent) -> Any | None:
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(event)
        import asyncio  # loaded by the running loop already; not at `import tlm_hooks`

        out = await asyncio.to_thread(self.fn, event)
        if inspect.isawaitable(out):
            out = await out
        return out


async def _await(value: Awaitable[Any]) -> Any:
    return await value


def _as_fallback(handler: FallbackLike, index: int) -> Fallback:
    if isinstance(handler, type):  # e.g. on_low_trust=[Raise] instead of [Raise()]
        raise InvalidOptionError(
            f"on_low_trust[{index}]", handler, f"a fallback instance, e.g. {handler.__name__}(), or a function(event)"
        )
    if isinstance(handler, Fallback):
        return handler
    if callable(handler):
        return _FunctionFallback(handler)
    raise InvalidOptionError(
        f"on_low_trust[{index}]", handler, "a fallback (tlm_hooks.fallbacks.*) or a function(event) -> response | None"
    )


def check_score_timeout(timeout: float | None) -> float | None:
    """``timeout`` if it is a valid ``score_timeout`` (seconds > 0, or ``None``), else raise."""
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (0 < timeout < math.inf)
    ):
        raise InvalidOptionError("score_timeout", timeout, "a number of seconds > 0, or None for no limit")
    return timeout


@dataclass(frozen=True)
class TrustPolicy:
    """When is a response untrustworthy, and what happens then.

    - ``threshold``: responses scoring below it (in [0, 1]) are low-trust.
    - ``on_low_trust``: fallbacks run in order while the response is still below the threshold;
      each may replace it. A fallback that fails is logged and skipped (``Raise`` raises on purpose).
    - ``on_error``: when scoring itself fails: ``"warn"`` (default, fail-open: the response is
      returned with the error in ``tlm_metadata`` and a warning logged), ``"ignore"`` (same, logged
      at debug level) or ``"raise"`` (fail-closed: :class:`TrustScoringError`).
    - ``score_timeout``: seconds one score may take (default 120); past it the scorer is
      abandoned and the call is handled as a scoring failure (``on_error``) whose error type is
      ``ScoringTimeout``. ``None`` waits as long as the scorer takes.
    """

    threshold: float = 0.5
    on_low_trust: Sequence[FallbackLike] = ()
    on_error: OnError = "warn"
    score_timeout: float | None = DEFAULT_SCORE_TIMEOUT
    handlers: tuple[Fallback, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or math.isnan(t) or not 0.0 <= t <= 1.0:
            raise InvalidOptionError("threshold", t, "a number from 0 to 1")
        check_score_timeout(self.score_timeout)
        if self.on_error not in _ON_ERROR:
            raise InvalidOptionError("on_error", self.on_error, "one of " + ", ".join(map(repr, _ON_ERROR)))
        items = self.on_low_trust
        if not isinstance(items, Sequence) or isinstance(items, (str, bytes)):
            items = [items]  # type: ignore[list-item]
        object.__setattr__(self, "on_low_trust", tuple(items))
        object.__setattr__(self, "handlers", tuple(_as_fallback(h, i) for i, h in enumerate(items)))

    def is_low(self, result: TrustResult) -> bool:
        """True when ``result`` has a score and it is below the threshold."""
        score = result.trustworthiness_score
        return score is not None and result.error is None and score < self.threshold

    def check_error(self, result: TrustResult) -> None:
        """Apply ``on_error`` to a failed result (log it, or raise when fail-closed); a result
        deliberately not scored (``result.skipped``) is no failure."""
        if result.ok or (result.skipped is not None and result.error is None):
            return
        message = f"tlm-hooks: scoring failed ({result.error_type or 'error'}): {result.error}"
        if self.on_error == "raise":
            raise TrustScoringError(message, result)
        if self.on_error == "warn":
            logger.warning(message)
        else:
            logger.debug(message)


def _finish(event: LowTrustEvent) -> tuple[Any, TrustResult]:
    if event.actions:
        return event.response, replace(event.result, fallbacks=tuple(event.actions))
    return event.response, event.result


def _log_handler_failure(handler: Fallback, exc: BaseException) -> None:
    logger.warning("tlm-hooks: fallback %s failed, skipped: %s: %s", handler.name, type(exc).__name__, exc)


_DELIBERATE = (UntrustworthyResponseError, TrustScoringError)


def run_policy(
    policy: TrustPolicy, event: LowTrustEvent, handlers: Sequence[Fallback] | None = None
) -> tuple[Any, TrustResult]:
    """Run the fallback chain (``handlers``, default the policy's) on a low-trust event; returns
    the final (response, result)."""
    for handler in policy.handlers if handlers is None else handlers:
        if not policy.is_low(event.result):
            break
        try:
            out = handler.handle(event)
        except _DELIBERATE:
            raise
        except Exception as exc:
            _log_handler_failure(handler, exc)
            continue
        if out is not None:
            event.response = out
        event.actions.append(handler.name)
    return _finish(event)


async def arun_policy(
    policy: TrustPolicy, event: LowTrustEvent, handlers: Sequence[Fallback] | None = None
) -> tuple[Any, TrustResult]:
    """Async form of :func:`run_policy` (fallbacks' ``ahandle`` is awaited)."""
    for handler in policy.handlers if handlers is None else handlers:
        if not policy.is_low(event.result):
            break
        try:
            out = await handler.ahandle(event)
        except _DELIBERATE:
            raise
        except Exception as exc:
            _log_handler_failure(handler, exc)
            continue
        if out is not None:
            event.response = out
        event.actions.append(handler.name)
    return _finish(event)


def split_for_stream(handlers: Sequence[Fallback]) -> tuple[tuple[Fallback, ...], tuple[Fallback, ...]]:
    """``(before_end, after_end)``: on a stream, the handlers to run before the stream ends and
    those that can run once it has ended.

    Each built-in fallback says where it belongs on a stream (``stream_stage``): ``"after"`` for
    those that call a model (``Regenerate``, ``Escalate``: their new answer cannot be streamed
    anyway), ``"either"`` for cheap ones whose effect needs no open stream (``AppendWarning``,
    ``ReplaceResponse``, ``HumanReview``), ``"before"`` for ``Raise`` (it must reach the loop
    reading the stream) and for any fallback that does not say (your own functions). The
    chain is cut at its first ``"after"`` handler when nothing from there on must run before
    the end; otherwise all of it runs before the end, in order, as on a non-streamed call.
    """
    stages = [getattr(h, "stream_stage", "before") for h in handlers]
    if "after" not in stages:
        return tuple(handlers), ()
    cut = stages.index("after")
    if any(stage == "before" for stage in stages[cut:]):
        return tuple(handlers), ()
    return tuple(handlers[:cut]), tuple(handlers[cut:])
