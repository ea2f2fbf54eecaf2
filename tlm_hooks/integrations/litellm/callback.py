"""`TLMCallback`: a litellm callback (``CustomLogger``) that scores every successful chat call.

For apps and the litellm proxy that configure callbacks rather than patch. It scores in
litellm's logging hooks, which litellm runs off the call path (its logging thread for sync
calls, a background task for async ones), and records the score where litellm users look:
``response.tlm_metadata``, ``response._hidden_params["tlm_metadata"]``, and the standard
logging payload's ``metadata["tlm_metadata"]``, which every logger after it in
``litellm.callbacks`` receives. ``wait=True`` scores async calls (``acompletion``, the
proxy) before litellm returns them instead; on the proxy its clients then get the score as
``tlm_metadata`` in the JSON body (on a stream's last chunk), as from ``tlm-hooks serve``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger
from litellm.types.utils import ModelResponse, ModelResponseStream

from ...adapters.litellm import ASYNC, SYNC
from ...errors import InvalidOptionError
from ...hooks.api import _options, _scorer_for
from ...hooks.deadline import ascore_within, score_within
from ...hooks.guard import is_unhooked, unhooked
from ...options import QualityPreset, Task, TLMOptions, deep_merge
from ...policy import check_score_timeout
from ...scorers.base import Scorer
from ...types import TrustResult

__all__ = ["TLMCallback", "PAYLOAD_KEY", "SCORE_HEADER"]

logger = logging.getLogger("tlm_hooks")

PAYLOAD_KEY = "tlm_metadata"
"""The key of the score in the standard logging payload's ``metadata`` (and in ``_hidden_params``)."""
SCORE_HEADER = "x-tlm-trustworthiness-score"
"""With ``wait=True``: the score in ``_hidden_params["additional_headers"]``, which the litellm
proxy sends to its clients as an HTTP header."""
_CALL_TYPES = frozenset({"completion", "acompletion"})
_TLM_KEYS = ("quality_preset", "task", "options")  # what a TLM client sends in ``extra_body``
_REMEMBERED = 4096  # call ids kept (judge calls to skip, calls already scored)


class TLMCallback(CustomLogger):  # type: ignore[misc]
    """Score each successful ``completion``/``acompletion`` (module functions, Routers, proxy).

    ``scorer``, ``quality_preset``, ``task`` and ``options`` are those of
    :func:`tlm_hooks.patch` (validated now). The default :class:`LogprobScorer` needs the
    app to ask for ``logprobs=True`` (a callback cannot add it); otherwise each score says
    the logprobs were missing, or pass ``TLMScorer(...)``. ``wait=False`` (default) never
    delays a call; ``wait=True`` scores async non-streamed calls before they return (litellm
    has no such hook for sync calls or SDK streams: those are scored in the background), and puts
    the score in the response's ``_hidden_params["additional_headers"]`` as
    ``x-tlm-trustworthiness-score``, which the litellm proxy sends to its clients as a header.
    On the proxy, ``wait=True`` also puts ``tlm_metadata`` in the reply's JSON body, and a
    streamed reply's last chunk carries it (the chunks before pass through as they arrive).
    ``score_timeout`` bounds one score (seconds, ``None``: no limit).
    Calls litellm makes while tlm-hooks scores (a judge through litellm) are not scored.

    On the proxy, TLM keys a client sends (``extra_body={"quality_preset": ..., "task": ...,
    "options": {...}}``) are taken out of the request before it goes upstream and score that call,
    on top of this callback's options; invalid ones get a 400 naming the key, before any model
    call. ``options.model_provider`` from a client (an endpoint for the judge to call) is refused
    unless ``allow_model_provider=True``.
    """

    def __init__(
        self,
        scorer: Scorer | Callable[..., Any] | None = None,
        *,
        quality_preset: QualityPreset | None = None,
        task: Task | None = None,
        options: TLMOptions | Mapping[str, Any] | None = None,
        wait: bool = False,
        score_timeout: float | None = 120.0,
        allow_model_provider: bool = False,
    ) -> None:
        super().__init__()
        for name, flag in (("wait", wait), ("allow_model_provider", allow_model_provider)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        self.options = _options(options, quality_preset, task)
        self.scorer = _scorer_for(scorer, self.options)
        self.allow_model_provider = allow_model_provider
        self._given_scorer = scorer
        # proxy calls whose client sent TLM keys: call id -> (options, scorer) to score it with
        self._asked: OrderedDict[str, tuple[TLMOptions, Scorer]] = OrderedDict()
        self._scorers: OrderedDict[str, Scorer] = OrderedDict()
        self.score_timeout = check_score_timeout(score_timeout)
        self.wait = wait
        self._lock = threading.Lock()
        self._judge_calls: OrderedDict[str, None] = OrderedDict()
        self._scored: OrderedDict[str, dict[str, Any]] = OrderedDict()
        # proxy streams being scored (wait=True): the logging hook waits for their score
        self._streaming: dict[str, asyncio.Future[dict[str, Any] | None]] = {}

    # -- which calls ------------------------------------------------------------------------

    @staticmethod
    def _remember(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
        memory[key] = value
        while len(memory) > _REMEMBERED:
            memory.popitem(last=False)

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        """Runs in the caller's context: a call made while tlm-hooks scores is a judge's, skipped."""
        call_id = kwargs.get("litellm_call_id") if isinstance(kwargs, Mapping) else None
        if call_id and is_unhooked():
            with self._lock:
                self._remember(self._judge_calls, call_id, None)

    def _should_score(self, kwargs: Mapping[str, Any], result: Any, call_type: Any) -> bool:
        if str(call_type) not in _CALL_TYPES and getattr(call_type, "value", None) not in _CALL_TYPES:
            return False
        if type(result) is not ModelResponse or not result.choices or is_unhooked():
            return False
        call_id = kwargs.get("litellm_call_id")
        with self._lock:
            return call_id not in self._judge_calls

    # -- scoring and recording --------------------------------------------------------------

    def _done(self, kwargs: Mapping[str, Any], result: Any) -> dict[str, Any] | None:
        """The score this call already has (from ``wait=True``, or a second logging hook)."""
        call_id = kwargs.get("litellm_call_id")
        if isinstance(call_id, str):
            with self._lock:
                if call_id in self._scored:
                    return self._scored[call_id]
        hidden = getattr(result, "_hidden_params", None) or {}
        data = hidden.get(PAYLOAD_KEY)
        return data if isinstance(data, dict) else None

    def _record(self, kwargs: dict[str, Any], result: Any, data: dict[str, Any] | TrustResult) -> dict[str, Any]:
        trust = data if isinstance(data, TrustResult) else TrustResult.from_dict(data)
        try:
            SYNC.attach(result, trust)
            metadata = result.tlm_metadata
        except Exception as exc:  # a response litellm redacted or froze: the payload still gets it
            logger.debug("tlm-hooks: could not attach the score to the litellm response: %s", exc)
            metadata = trust.to_dict()
        payload = kwargs.get("standard_logging_object")
        if isinstance(payload, dict):
            if not isinstance(payload.get("metadata"), dict):
                payload["metadata"] = {}
            payload["metadata"][PAYLOAD_KEY] = metadata
        call_id = kwargs.get("litellm_call_id")
        if call_id:
            with self._lock:
                self._remember(self._scored, call_id, metadata)
        return metadata  # type: ignore[no-any-return]

    def _for_call(self, kwargs: Mapping[str, Any]) -> tuple[TLMOptions, Scorer]:
        """The options and scorer for this call: the client's TLM keys on the proxy, else ours."""
        call_id = kwargs.get("litellm_call_id")
        if isinstance(call_id, str):
            with self._lock:
                asked = self._asked.get(call_id)
            if asked is not None:
                return asked
        return self.options, self.scorer

    def _score(self, kwargs: Mapping[str, Any], result: Any) -> TrustResult:
        try:
            options, scorer = self._for_call(kwargs)
            request = SYNC.score_request(kwargs, result, options)
            with unhooked():
                return score_within(scorer, request, self.score_timeout)
        except Exception as exc:  # never break litellm's logging
            return TrustResult.failed(exc)

    async def _ascore(self, kwargs: Mapping[str, Any], result: Any) -> TrustResult:
        try:
            options, scorer = self._for_call(kwargs)
            request = SYNC.score_request(kwargs, result, options)
            with unhooked():
                return await ascore_within(scorer, request, self.score_timeout)
        except Exception as exc:
            return TrustResult.failed(exc)

    def _asked_for(self, given: Mapping[str, Any]) -> tuple[TLMOptions, Scorer]:
        """This callback's options with a client's TLM keys on top, and the scorer for them.
        Raises :class:`InvalidOptionError` for keys that are invalid or not allowed here."""
        asked = TLMOptions.coerce({key: value for key, value in given.items() if value is not None})
        if "model_provider" in asked.options and not self.allow_model_provider:
            # a client naming an endpoint would make this proxy's judge call any URL it picks
            raise InvalidOptionError(
                "options.model_provider",
                "***",
                "nothing from a client of this proxy (set it in TLMCallback(options=...), or pass "
                "TLMCallback(allow_model_provider=True))",
            )
        base = self.options
        merged = TLMOptions(
            asked.quality_preset or base.quality_preset,
            asked.task or base.task,
            deep_merge(base.options, asked.options),
        )
        key = json.dumps(merged.to_body(), sort_keys=True, default=str)
        with self._lock:
            scorer = self._scorers.get(key)
        if scorer is None:
            scorer = _scorer_for(self._given_scorer, merged)  # refuses what the scorer cannot honour
            with self._lock:
                self._remember(self._scorers, key, scorer)
        return merged, scorer

    # -- litellm's hooks --------------------------------------------------------------------

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> Any:
        """The litellm proxy: take a client's TLM keys out of a chat request (they are not for the
        upstream model) and remember them to score this call with; refuse invalid ones (400)."""
        if str(call_type) not in _CALL_TYPES and getattr(call_type, "value", None) not in _CALL_TYPES:
            return None
        given = {key: data.pop(key) for key in _TLM_KEYS if key in data}
        if not given:
            return None
        try:
            chosen = self._asked_for(given)
        except InvalidOptionError as exc:
            raise _bad_request(exc) from None
        call_id = data.get("litellm_call_id")
        if isinstance(call_id, str):
            with self._lock:
                self._remember(self._asked, call_id, chosen)
        else:
            logger.warning(
                "tlm-hooks: a proxy request without a litellm_call_id: its TLM keys %s are not used", sorted(given)
            )
        return None

    def logging_hook(self, kwargs: dict[str, Any], result: Any, call_type: str) -> tuple[dict[str, Any], Any]:
        """Sync calls: score in litellm's logging thread, before the loggers after this one run."""
        if self._should_score(kwargs, result, call_type):
            done = self._done(kwargs, result)
            self._record(kwargs, result, done if done is not None else self._score(kwargs, result))
        return kwargs, result

    async def async_logging_hook(
        self, kwargs: dict[str, Any], result: Any, call_type: str
    ) -> tuple[dict[str, Any], Any]:
        """Async calls (and the proxy): score in litellm's background logging task."""
        if self._should_score(kwargs, result, call_type):
            done = await self._streamed_score(kwargs) or self._done(kwargs, result)
            self._record(kwargs, result, done if done is not None else await self._ascore(kwargs, result))
        return kwargs, result

    async def async_post_call_success_deployment_hook(
        self, request_data: dict[str, Any], response: Any, call_type: Any
    ) -> Any:
        """``wait=True``: score an async call's answer before litellm returns it."""
        if self.wait and self._should_score(request_data, response, call_type):
            result = await self._ascore(request_data, response)
            self._record(request_data, response, result)
            _add_score_header(response, result.trustworthiness_score)
        return None  # the response itself is returned, with its score attached

    async def async_post_call_success_hook(self, data: dict[str, Any], user_api_key_dict: Any, response: Any) -> Any:
        """The litellm proxy, ``wait=True``: put the call's score in the headers the proxy sends.
        The header set by the deployment hook does not reach the proxy's reply (tested), so it is
        set again here, on the response the proxy builds its headers from."""
        if self.wait:
            done = self._done(data, response)
            if done is not None:
                _add_score_header(response, done.get("trustworthiness_score"))
                _put_in_body(response)
        return None

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: Any, response: AsyncIterator[Any], request_data: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        """The litellm proxy, ``wait=True``: a streamed chat reply's last chunk carries
        ``tlm_metadata``. Chunks with text pass through as they arrive; chunks without text and
        the finish chunk are held until more text comes or the stream ends, so that the score
        can ride on the last chunk the client receives."""
        call_id = request_data.get("litellm_call_id")
        if not self.wait or not isinstance(call_id, str) or is_unhooked():
            async for item in response:
                yield item
            return
        waiting: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._streaming[call_id] = waiting  # set now: litellm may log the call before the stream ends
        chunks: list[ModelResponseStream] = []
        held: list[ModelResponseStream] = []
        chat = True  # every item a chat chunk (other routes' streams pass through unscored)
        metadata: dict[str, Any] | None = None
        try:
            async for item in response:
                if not isinstance(item, ModelResponseStream):
                    chat = False
                elif chat:
                    chunks.append(item)
                if chat and _may_be_last(item):
                    held.append(item)
                    continue
                for chunk in held:
                    yield chunk
                held.clear()
                yield item
        except Exception:  # the upstream's error, untouched, after what had arrived before it
            for chunk in held:
                yield chunk
            raise
        else:
            if chat and chunks:
                metadata = await self._score_stream(request_data, chunks)
                # the proxy drops the usage chunk it asked for itself; the score must not go with it
                stripped = bool(request_data.get("_litellm_strip_stream_usage"))
                carriers = [c for c in held if not stripped or _has_choice_content(c)]
                carrier = carriers[-1] if carriers else _empty_chunk(chunks[-1])
                setattr(carrier, PAYLOAD_KEY, metadata)  # an extra field: the proxy sends it in the JSON
                if not carriers:
                    held.append(carrier)
            for chunk in held:
                yield chunk
        finally:
            self._streaming.pop(call_id, None)
            if not waiting.done():
                waiting.set_result(metadata)

    async def _score_stream(self, request_data: dict[str, Any], chunks: list[ModelResponseStream]) -> dict[str, Any]:
        try:
            assembled = ASYNC.accumulate(chunks)
        except Exception as exc:  # never break the stream
            return TrustResult.failed(exc).to_dict()
        result = await self._ascore(request_data, assembled)
        return self._record(request_data, assembled, result)

    async def _streamed_score(self, kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        """The score a proxy stream of this call got (``wait=True``), once it is made; ``None``
        when this call is not such a stream or the stream ended without one."""
        call_id = kwargs.get("litellm_call_id")
        waiting = self._streaming.get(call_id) if isinstance(call_id, str) else None
        if waiting is None:
            return None
        try:  # the stream resolves it when it ends or is closed; scoring has its own deadline
            return await asyncio.shield(waiting)
        except RuntimeError:  # a future of another event loop: score here instead
            return None


def _may_be_last(chunk: ModelResponseStream) -> bool:
    """A chunk held back in case it is the stream's last: one that ends its choice, or carries no
    part of the answer (no text, tool call or logprobs; a role-only or usage chunk)."""
    for choice in chunk.choices or ():
        if choice.finish_reason is not None:
            return True
        delta = getattr(choice, "delta", None)
        if delta is not None and (getattr(delta, "content", None) or getattr(delta, "tool_calls", None)):
            return False
        if getattr(choice, "logprobs", None) is not None:
            return False
    return True


def _has_choice_content(chunk: ModelResponseStream) -> bool:
    """Whether a chunk has a choice with a finish reason or text (the proxy never drops it)."""
    return any(
        c.finish_reason is not None or getattr(getattr(c, "delta", None), "content", None) for c in chunk.choices or ()
    )


def _empty_chunk(template: ModelResponseStream) -> ModelResponseStream:
    """A chunk with no choices (like a usage chunk), to carry the score when the stream's last
    chunk had text and has already gone out. (litellm ends its streams with a finish chunk; a
    proxy that strips the usage chunk it asked for would strip this one too.)"""
    return ModelResponseStream(
        id=template.id, created=template.created, model=template.model, object=template.object, choices=[]
    )


def _put_in_body(response: Any) -> None:
    """Move ``tlm_metadata`` into the response's extra fields, which the proxy serialises as the
    JSON body: its clients read ``completion.tlm_metadata`` as from ``tlm-hooks serve``."""
    extra = getattr(response, "__pydantic_extra__", None)
    if isinstance(extra, dict) and PAYLOAD_KEY in vars(response):
        extra[PAYLOAD_KEY] = vars(response).pop(PAYLOAD_KEY)


def _bad_request(error: InvalidOptionError) -> Exception:
    """What the proxy answers as HTTP 400 with ``error``'s message (FastAPI is there on the proxy)."""
    try:
        from fastapi import HTTPException
    except ImportError:  # not on the proxy: the error itself
        return error
    return HTTPException(status_code=400, detail={"error": str(error), "param": error.key})


def _add_score_header(response: Any, score: float | None) -> None:
    """The score as a header the litellm proxy forwards (nothing for a failed score: its reason
    is in ``tlm_metadata``)."""
    hidden = getattr(response, "_hidden_params", None)
    if score is None or not isinstance(hidden, dict):
        return
    headers = hidden.get("additional_headers")
    if not isinstance(headers, dict):
        headers = hidden["additional_headers"] = {}
    headers[SCORE_HEADER] = f"{score:.6g}"
