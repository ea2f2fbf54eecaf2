"""`TLMCallbackHandler`: the same scoring as :class:`TrustEventHandler`, for apps still on
LlamaIndex's legacy ``CallbackManager`` (``CBEventType.LLM`` / ``QUERY`` / ``RETRIEVE``)."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.callbacks.base_handler import BaseCallbackHandler

from ..._guard import is_unhooked
from ...scorers.base import Scorer
from .budget import DEFAULT_JUDGE_CONCURRENCY, DEFAULT_MAX_WAIT
from .core import OnResult, ReadbackMixin, ScoringCore
from .reading import answer_of, chat_messages, node_texts, query_text, source_passages
from .reading import prompt_text as _prompt_text
from .spans import current_span_context

__all__ = ["TLMCallbackHandler"]

logger = logging.getLogger("tlm_hooks")

# LLM events are "leaf" events for the callback manager (they get no children), so an LLM call
# made inside another (CustomLLM.chat -> self.complete) is recognised by the LLM calls still
# open in the same context instead.
_OPEN_LLM: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("tlm_hooks_open_llm_events", default=())
_MAX_OPEN = 1024


class TLMCallbackHandler(ReadbackMixin, BaseCallbackHandler):
    """Scores LLM calls and query answers reported to a legacy ``CallbackManager``, without
    changing them. Same arguments, background scoring, bounds and read-back as
    :class:`~tlm_hooks.integrations.llamaindex.TrustEventHandler`; ids are callback event ids
    (a query's id is its ``CBEventType.QUERY`` event id).

    ``handler.register()`` adds it to ``Settings.callback_manager`` (which components built
    afterwards use), or to the ``callback_manager`` given.
    """

    def __init__(
        self,
        scorer: Scorer | Callable[..., Any] | None = None,
        rag: Any = None,
        *,
        quality_preset: str = "medium",
        options: Mapping[str, Any] | None = None,
        evals: Sequence[Any] | None = None,
        judge: Any = None,
        score_llm_calls: bool = True,
        score_queries: bool = True,
        on_result: OnResult | None = None,
        max_pending: int = 256,
        max_results: int = 1000,
        judge_concurrency: int = DEFAULT_JUDGE_CONCURRENCY,
        max_wait: float = DEFAULT_MAX_WAIT,
        tracer_provider: Any = None,
    ) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        self._core = ScoringCore(
            scorer=scorer, rag=rag, quality_preset=quality_preset, options=options, evals=evals, judge=judge,
            on_result=on_result, max_pending=max_pending, max_results=max_results,
            judge_concurrency=judge_concurrency, max_wait=max_wait, tracer_provider=tracer_provider,
        )  # fmt: skip
        self._score_llm_calls = bool(score_llm_calls)
        self._score_queries = bool(score_queries)
        self._manager: CallbackManager | None = None
        self._lock = threading.Lock()
        self._open_llm: dict[str, bool] = {}  # open LLM event id -> runs inside another LLM call

    # -- registration ------------------------------------------------------------------------------

    def register(self, callback_manager: CallbackManager | None = None) -> TLMCallbackHandler:
        """Add the handler to ``callback_manager`` (default ``Settings.callback_manager``); again is
        a no-op, another manager moves it."""
        if callback_manager is None:
            from llama_index.core import Settings

            callback_manager = Settings.callback_manager
        if self._manager is not None and self._manager is not callback_manager:
            self.unregister()
        if not any(h is self for h in callback_manager.handlers):
            callback_manager.add_handler(self)
        self._manager = callback_manager
        return self

    def unregister(self) -> bool:
        """Remove the handler from its manager; returns whether it was registered."""
        manager, self._manager = self._manager, None
        if manager is None:
            return False
        manager.set_handlers([h for h in manager.handlers if h is not self])
        return True

    @property
    def registered(self) -> bool:
        return self._manager is not None

    def close(self, timeout: float | None = 5.0) -> None:
        """Unregister, finish the queued scores (up to ``timeout``) and stop the worker thread."""
        self.unregister()
        self._core.worker.close(timeout)

    # -- callbacks -----------------------------------------------------------------------------------

    def start_trace(self, trace_id: str | None = None) -> None:
        return None

    def end_trace(self, trace_id: str | None = None, trace_map: dict[str, list[str]] | None = None) -> None:
        return None

    def on_event_start(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        parent_id: str = "",
        **kwargs: Any,
    ) -> str:
        if is_unhooked():
            return event_id
        try:
            self._core.tracker.enter(event_id, parent_id or None)
            if event_type == CBEventType.QUERY and self._score_queries:
                self._core.tracker.start_query(event_id, query_text((payload or {}).get(EventPayload.QUERY_STR, "")))
            elif event_type == CBEventType.LLM:
                self._llm_start(event_id)
        except Exception as exc:
            logger.warning("tlm-hooks: could not read a LlamaIndex %s start: %s", event_type, exc)
        return event_id

    def on_event_end(
        self, event_type: CBEventType, payload: dict[str, Any] | None = None, event_id: str = "", **kwargs: Any
    ) -> None:
        if is_unhooked():
            return
        payload = payload or {}
        try:
            if event_type == CBEventType.RETRIEVE:
                self._core.tracker.add_passages(event_id, node_texts(payload.get(EventPayload.NODES)))
            elif event_type == CBEventType.LLM:
                self._llm_end(event_id, payload)
            elif event_type == CBEventType.QUERY:
                self._query_end(event_id, payload)
        except Exception as exc:
            logger.warning("tlm-hooks: could not read a LlamaIndex %s end: %s", event_type, exc)

    def _llm_start(self, event_id: str) -> None:
        with self._lock:
            around = [i for i in _OPEN_LLM.get() if i in self._open_llm]
            self._open_llm[event_id] = bool(around)
            while len(self._open_llm) > _MAX_OPEN:
                self._open_llm.pop(next(iter(self._open_llm)))
        _OPEN_LLM.set((*around, event_id))
        self._core.tracker.start_llm(event_id)  # the app's model is busy until it ends

    def _llm_end(self, event_id: str, payload: Mapping[str, Any]) -> None:
        with self._lock:
            nested = self._open_llm.pop(event_id, False)
        self._core.tracker.end_llm(event_id)
        if nested or EventPayload.EXCEPTION in payload:
            return
        if EventPayload.MESSAGES in payload:
            response = payload.get(EventPayload.RESPONSE)
            if response is None:
                return
            message = getattr(response, "message", None)
            answer = (getattr(message, "content", None) if message is not None else str(response)) or ""
            messages, prompt = chat_messages(payload[EventPayload.MESSAGES]), None
        else:
            completion = payload.get(EventPayload.COMPLETION)
            if completion is None:
                return
            answer = getattr(completion, "text", None) or str(completion)
            messages, prompt = None, str(payload.get(EventPayload.PROMPT, ""))
        tracker = self._core.tracker
        query = tracker.query_of(event_id) or tracker.streamed_query_for(_prompt_text(messages, prompt))
        if self._score_llm_calls:
            span = current_span_context()
            self._core.score_llm_call(event_id, query.id if query else None, messages, prompt, answer, span)
        if query is not None and query.awaiting_stream and tracker.finish(query.id) is not None:
            self._core.score_query(query.id, query.query, query.context, answer, query.source, query.span)

    def _query_end(self, event_id: str, payload: Mapping[str, Any]) -> None:
        tracker = self._core.tracker
        query = tracker.get(event_id)
        if query is None:
            return
        if EventPayload.EXCEPTION in payload:
            tracker.finish(event_id)
            return
        response = payload.get(EventPayload.RESPONSE)
        if response is None:
            tracker.finish(event_id)
            return
        query.set_answer_context(source_passages(response))
        answer = answer_of(response)
        span = current_span_context()
        if answer is None:  # a streamed answer: scored when its LLM stream ends
            query.awaiting_stream = True
            query.source = response
            query.span = span
            return
        tracker.finish(event_id)
        self._core.score_query(query.id, query.query, query.context, answer, response, span)
