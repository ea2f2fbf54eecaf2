"""One hooked call, end to end: prepare arguments, call the original once, score, apply the
policy, attach ``tlm_metadata``. SDK details come from the adapter; sync and async share all
logic except the awaits."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from .._guard import unhooked
from ..adapters.base import CallAdapter
from ..errors import TrustScoringError, UntrustworthyResponseError
from ..policy import Fallback, LowTrustEvent, arun_policy, run_policy, split_for_stream
from ..types import ScoreRequest, TrustResult
from .config import HookConfig
from .deadline import ascore_within, score_within
from .raw import RawResponseProxy
from .refusals import REFUSALS, refusal_note
from .spans import annotate_spans
from .streams import AsyncStreamProxy, StreamOutcome, SyncStreamProxy

__all__ = ["HookedCall", "call_sync", "call_async", "finish_sync", "finish_async"]

logger = logging.getLogger("tlm_hooks")

_DELIBERATE = (UntrustworthyResponseError, TrustScoringError)
_MISSING_LOGPROBS = "MissingLogprobs"

MISSING_METADATA = (
    "the backend returned no tlm_metadata: is the client's base_url a TLM backend "
    "(Cleanlab's TLM or `tlm-hooks serve`)?"
)


class HookedCall:
    """State of one intercepted call; also the ``ops`` fallbacks use (:class:`ResponseOps`)."""

    def __init__(
        self,
        config: HookConfig,
        adapter: CallAdapter,
        client: Any,
        wrapped: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        is_async: bool,
    ) -> None:
        self.config = config
        self.adapter = adapter
        self.client = client  # the client called (None when there is none, e.g. a LlamaIndex LLM)
        self.wrapped = wrapped
        self.args = args
        self.caller_kwargs = kwargs
        self.is_async = is_async
        self.model = adapter.model_of(kwargs)
        self.logprobs_refused = config.wants_logprobs and REFUSALS.refused(self.model, client)
        self.kwargs, self.added = adapter.prepare_kwargs(
            kwargs,
            client=client,
            route_body=config.route_body,
            add_logprobs=config.wants_logprobs and not self.logprobs_refused,
        )

    # -- the original call -------------------------------------------------------------------

    def _refused_added(self, exc: BaseException) -> bool:
        if "logprobs" in self.added and self.adapter.rejects(exc, "logprobs"):
            if REFUSALS.remember(self.model, self.client):  # said once per model, not on every call
                logger.warning("tlm-hooks: %s", refusal_note(self.model))
            self.logprobs_refused = True
            self.kwargs = self.adapter.without(self.kwargs, self.added)
            self.added = frozenset()
            return True
        return False

    def invoke(self) -> Any:
        """Call the original once (again only if it refused a parameter the hook added)."""
        try:
            return self.wrapped(*self.args, **self.kwargs)
        except Exception as exc:
            if self._refused_added(exc):
                return self.wrapped(*self.args, **self.kwargs)
            raise

    async def ainvoke(self) -> Any:
        try:
            return await self.wrapped(*self.args, **self.kwargs)
        except Exception as exc:
            if self._refused_added(exc):
                return await self.wrapped(*self.args, **self.kwargs)
            raise

    # -- scoring -------------------------------------------------------------------------------

    def request_for(self, response: Any) -> ScoreRequest:
        return self.adapter.score_request(self.kwargs, response, self.config.options, self.client)

    def _explained(self, result: TrustResult) -> TrustResult:
        """A missing-logprobs failure says why when the model refused them (not "ask for them")."""
        if self.logprobs_refused and result.error_type == _MISSING_LOGPROBS:
            return replace(result, error=refusal_note(self.model))
        return result

    def score(self, response: Any) -> TrustResult:
        """Score ``response`` (or read the backend's metadata); failures become failed results."""
        try:
            if self.config.mode == "route":
                return self._read_metadata(response)
            scorer = self.config.scorer
            assert scorer is not None
            request = self.request_for(response)
            with unhooked():
                return self._explained(score_within(scorer, request, self.config.policy.score_timeout))
        except Exception as exc:
            return TrustResult.failed(exc)

    async def ascore(self, response: Any) -> TrustResult:
        try:
            if self.config.mode == "route":
                return self._read_metadata(response)
            scorer = self.config.scorer
            assert scorer is not None
            request = self.request_for(response)
            with unhooked():
                return self._explained(await ascore_within(scorer, request, self.config.policy.score_timeout))
        except Exception as exc:
            return TrustResult.failed(exc)

    def _read_metadata(self, response: Any) -> TrustResult:
        data = self.adapter.read_metadata(response)
        if data is None:
            return TrustResult(None, error=MISSING_METADATA, error_type="MissingMetadata")
        return TrustResult.from_dict(data)

    # -- ResponseOps for fallbacks -----------------------------------------------------------

    def text_of(self, response: Any) -> str:
        return self.adapter.text_of(response)

    def with_text(self, response: Any, text: str) -> Any:
        return self.adapter.with_text(response, text)

    def call_model(self, **overrides: Any) -> Any:
        kwargs = self.adapter.single_call_kwargs(self.kwargs, overrides)
        with unhooked():
            return self.wrapped(*self.args, **kwargs)

    async def acall_model(self, **overrides: Any) -> Any:
        kwargs = self.adapter.single_call_kwargs(self.kwargs, overrides)
        with unhooked():
            return await self.wrapped(*self.args, **kwargs)

    def call_client(self, client: Any, **overrides: Any) -> Any:
        kwargs = self.adapter.single_call_kwargs(self.kwargs, overrides)
        with unhooked():
            return self.adapter.call_client(client, kwargs)

    async def acall_client(self, client: Any, **overrides: Any) -> Any:
        kwargs = self.adapter.single_call_kwargs(self.kwargs, overrides)
        with unhooked():
            return await self.adapter.call_client(client, kwargs)

    # -- policy + metadata ---------------------------------------------------------------------

    def _event(self, response: Any, result: TrustResult, *, is_stream: bool) -> LowTrustEvent:
        request = None
        try:
            request = self.request_for(response)
        except Exception:  # the event is still useful without it
            pass
        return LowTrustEvent(
            response=response,
            result=result,
            threshold=self.config.policy.threshold,
            kwargs=MappingProxyType(dict(self.caller_kwargs)),
            ops=self,
            request=request,
            is_stream=is_stream,
            is_async=self.is_async,
        )

    def decide(self, response: Any, result: TrustResult, *, is_stream: bool = False) -> tuple[Any, TrustResult]:
        policy = self.config.policy
        annotate_spans(result, self.config)  # ~free unless a tracer is in use
        policy.check_error(result)
        if not policy.is_low(result) or not policy.handlers:
            return response, result
        event = self._event(response, result, is_stream=is_stream)
        with unhooked():  # calls a fallback makes (even on hooked clients) are not hooked again
            final = run_policy(policy, event)
        annotate_spans(final[1], self.config)  # the result after the fallbacks
        return final

    async def adecide(self, response: Any, result: TrustResult, *, is_stream: bool = False) -> tuple[Any, TrustResult]:
        policy = self.config.policy
        annotate_spans(result, self.config)
        policy.check_error(result)
        if not policy.is_low(result) or not policy.handlers:
            return response, result
        event = self._event(response, result, is_stream=is_stream)
        with unhooked():
            final = await arun_policy(policy, event)
        annotate_spans(final[1], self.config)
        return final

    def _attach(self, response: Any, result: TrustResult) -> Any:
        return self.adapter.attach(response, result)

    def _our_failure(self, response: Any, exc: BaseException) -> Any:
        """Fail-open for bugs or surprises in the hook itself: log, report, return the response."""
        logger.warning(
            "tlm-hooks: could not score this call (%s: %s); response returned as is", type(exc).__name__, exc
        )
        if self.config.policy.on_error == "raise":
            raise TrustScoringError(f"tlm-hooks failed while handling the response: {exc}") from exc
        try:
            failed = TrustResult.failed(exc)
            annotate_spans(failed, self.config)
            return self.adapter.attach(response, failed)
        except Exception:
            return response

    def complete(self, response: Any) -> Any:
        """Score a full response, run the policy, attach metadata; returns the final response."""
        try:
            final, result = self.decide(response, self.score(response))
            return self._attach(final, result)
        except _DELIBERATE:
            raise
        except Exception as exc:
            return self._our_failure(response, exc)

    async def acomplete(self, response: Any) -> Any:
        try:
            final, result = await self.adecide(response, await self.ascore(response))
            return self._attach(final, result)
        except _DELIBERATE:
            raise
        except Exception as exc:
            return self._our_failure(response, exc)

    # -- streams ----------------------------------------------------------------------------------

    def stream_outcome(
        self, chunks: Sequence[Any], *, finished: bool, error: BaseException | None = None
    ) -> StreamOutcome:
        """Score a stream's chunks once it ended (``finished``), was closed early, or failed
        with ``error`` (then what was received is scored and marked partial, never acted on)."""
        if not chunks and error is not None:
            return StreamOutcome(_nothing_received(error), None, None)
        response = self.adapter.accumulate(chunks)
        result = self.score(response)
        if not finished:
            return self._partial(result, response, len(chunks), error)
        event, before, after = self._stream_plan(response, result)
        if event is None:
            return StreamOutcome(result, response, None)
        with unhooked():  # calls a fallback makes (even on hooked clients) are not hooked again
            final, result = run_policy(self.config.policy, event, before)
        annotate_spans(result, self.config)
        outcome = self._stream_outcome(chunks, response, final, result)
        if after:
            outcome.later = lambda: self._after_end(event, after, outcome.response)
        return outcome

    async def astream_outcome(
        self, chunks: Sequence[Any], *, finished: bool, error: BaseException | None = None
    ) -> StreamOutcome:
        if not chunks and error is not None:
            return StreamOutcome(_nothing_received(error), None, None)
        response = self.adapter.accumulate(chunks)
        result = await self.ascore(response)
        if not finished:
            return self._partial(result, response, len(chunks), error)
        event, before, after = self._stream_plan(response, result)
        if event is None:
            return StreamOutcome(result, response, None)
        with unhooked():
            final, result = await arun_policy(self.config.policy, event, before)
        annotate_spans(result, self.config)
        outcome = self._stream_outcome(chunks, response, final, result)
        if after:
            outcome.later = lambda: self._aafter_end(event, after, outcome.response)
        return outcome

    def _stream_plan(
        self, response: Any, result: TrustResult
    ) -> tuple[LowTrustEvent | None, tuple[Fallback, ...], tuple[Fallback, ...]]:
        """The policy on a finished stream: ``(event, before, after)`` (no event when nothing acts).
        ``before`` runs before the stream ends; ``after`` once it has ended (see
        :func:`~tlm_hooks.policy.split_for_stream`)."""
        policy = self.config.policy
        annotate_spans(result, self.config)  # ~free unless a tracer is in use
        policy.check_error(result)
        if not policy.is_low(result) or not policy.handlers:
            return None, (), ()
        before, after = split_for_stream(policy.handlers)
        return self._event(response, result, is_stream=True), before, after

    def _after_end(self, event: LowTrustEvent, handlers: Sequence[Fallback], sent: Any) -> tuple[TrustResult, Any]:
        """Run the fallbacks that wait for the stream's end; ``(result, replacement or None)``."""
        with unhooked():
            final, result = run_policy(self.config.policy, event, handlers)
        return result, (None if final is sent else self.adapter.attach(final, result))

    async def _aafter_end(
        self, event: LowTrustEvent, handlers: Sequence[Fallback], sent: Any
    ) -> tuple[TrustResult, Any]:
        with unhooked():
            final, result = await arun_policy(self.config.policy, event, handlers)
        return result, (None if final is sent else self.adapter.attach(final, result))

    def _partial(self, result: TrustResult, response: Any, received: int, error: BaseException | None) -> StreamOutcome:
        """A stream that stopped early: its partial answer is scored, said so, and not acted on."""
        how = "was closed" if error is None else f"failed ({type(error).__name__}: {error})"
        note = f"partial: the stream {how} after {received} chunk(s); only the answer received so far was scored"
        result = replace(result, warnings=(*result.warnings, note))
        annotate_spans(result, self.config, partial=True)
        return StreamOutcome(result, response, None)

    def _stream_outcome(self, chunks: Sequence[Any], sent: Any, final: Any, result: TrustResult) -> StreamOutcome:
        if final is sent:
            return StreamOutcome(result, sent, None)
        sent_text, final_text = self.adapter.text_of(sent), self.adapter.text_of(final)
        if final_text.startswith(sent_text) and chunks:  # e.g. AppendWarning: send the rest
            tail = self.adapter.text_chunk(chunks[-1], final_text[len(sent_text) :])
            return StreamOutcome(result, final, tail)
        return StreamOutcome(result, sent, None, fallback_response=self.adapter.attach(final, result))


def _nothing_received(error: BaseException) -> TrustResult:
    return TrustResult(
        None,
        error=f"the stream failed before its first chunk ({type(error).__name__}); there was nothing to score",
        error_type="StreamFailed",
    )


def call_sync(
    config: HookConfig,
    adapter: CallAdapter,
    client: Any,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run a hooked sync call of ``client``."""
    try:
        call = HookedCall(config, adapter, client, wrapped, args, kwargs, is_async=False)
    except Exception as exc:  # our own bug: the app's call goes through unhooked
        logger.warning("tlm-hooks: could not prepare the call (%s); calling unhooked", exc)
        return wrapped(*args, **kwargs)
    result = call.invoke()
    return finish_sync(call, result)


def finish_sync(call: HookedCall, result: Any) -> Any:
    """What the app gets back for ``result`` (the original call's return value)."""
    kind = call.adapter.kind(result)
    if kind == "completion":
        return call.complete(result)
    if kind == "stream":
        return SyncStreamProxy(result, call)
    if kind == "raw":
        return RawResponseProxy(result, lambda parsed: finish_sync(call, parsed))
    return result


async def call_async(
    config: HookConfig,
    adapter: CallAdapter,
    client: Any,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run a hooked async call of ``client``."""
    try:
        call = HookedCall(config, adapter, client, wrapped, args, kwargs, is_async=True)
    except Exception as exc:
        logger.warning("tlm-hooks: could not prepare the call (%s); calling unhooked", exc)
        return await wrapped(*args, **kwargs)
    result = await call.ainvoke()
    return await finish_async(call, result)


async def finish_async(call: HookedCall, result: Any) -> Any:
    """What the app gets back for ``result`` (the original call's return value)."""
    kind = call.adapter.kind(result)
    if kind == "completion":
        return await call.acomplete(result)
    if kind == "async_stream":
        return AsyncStreamProxy(result, call)
    if kind == "raw":
        parsed = call.adapter.parse_raw(result)
        if call.adapter.kind(parsed) == "completion":
            done = await call.acomplete(parsed)
            return RawResponseProxy(result, lambda _parsed: done)
        if call.adapter.kind(parsed) == "async_stream":
            stream = AsyncStreamProxy(parsed, call)
            return RawResponseProxy(result, lambda _parsed: stream)
        return result
    return result
