"""`TrustEventHandler`: scores what LlamaIndex's instrumentation dispatcher reports, observe-only.

Spans tie the events of one query together: ``register()`` adds the handler and a small span
handler that records each span's parent, so a ``RetrievalEndEvent`` or an LLM call deep inside
a query engine is attributed to the nearest enclosing query (the span of
``BaseQueryEngine.query``, whose id is the query id).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llama_index.core.instrumentation import Dispatcher, get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.events.query import QueryEndEvent, QueryStartEvent
from llama_index.core.instrumentation.events.retrieval import RetrievalEndEvent
from llama_index.core.instrumentation.events.span import SpanDropEvent
from llama_index.core.instrumentation.events.synthesis import GetResponseStartEvent
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from pydantic import PrivateAttr

from ..._guard import is_unhooked
from ...scorers.base import Scorer
from .budget import DEFAULT_JUDGE_CONCURRENCY, DEFAULT_MAX_WAIT
from .core import OnResult, ReadbackMixin, ScoringCore
from .reading import answer_of, chat_messages, node_texts, query_text, source_passages
from .reading import prompt_text as _prompt_text
from .spans import current_span_context
from .tracking import QueryTracker

__all__ = ["TrustEventHandler"]

logger = logging.getLogger("tlm_hooks")


class _SpanParents(BaseSpanHandler[Any]):
    """Records each span's parent in the tracker; keeps no spans of its own."""

    _tracker: QueryTracker = PrivateAttr()

    def __init__(self, tracker: QueryTracker) -> None:
        super().__init__()
        self._tracker = tracker

    def span_enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        parent_id: str | None = None,
        tags: Any = None,
        **kwargs: Any,
    ) -> None:
        self._tracker.enter(id_, parent_id)

    def span_exit(
        self, id_: str, bound_args: inspect.BoundArguments, instance: Any = None, result: Any = None, **kwargs: Any
    ) -> None:
        pass

    def span_drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        pass

    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None


class TrustEventHandler(ReadbackMixin, BaseEventHandler):  # type: ignore[misc]
    """Scores LLM calls and query-engine answers reported by LlamaIndex, without changing them.

    ``handler = TrustEventHandler(); handler.register()`` — then every ``LLMChatEndEvent`` /
    ``LLMCompletionEndEvent`` is scored with ``scorer``, and every query answer
    (``QueryEndEvent``) with ``rag`` against the context its query retrieved (the response's
    source nodes, else the passages of ``RetrievalEndEvent``\\ s inside the query). A streamed
    answer is scored when its LLM stream ends.

    The handler only copies text out of each event and queues a job: scoring runs on a
    background thread, never on the app's thread or event loop. At most ``max_pending`` jobs
    wait; beyond that new ones are dropped (counted in :attr:`dropped`, with a warning). The
    last ``max_results`` scores are kept (:meth:`results`, :meth:`result_for`,
    :meth:`query_results`) and each is passed to ``on_result(scored_call)`` on that thread.

    ``scorer`` defaults to :class:`~tlm_hooks.TLMScorer` and ``rag`` to
    :class:`~tlm_hooks.rag.TrustworthyRAG`, both with ``quality_preset``, ``options`` and
    ``judge`` (the embedded local model when ``None``), built when first needed. LLM calls that
    tlm-hooks already handles (a patched LLM, judge calls, fallbacks) are not scored again.
    ``score_llm_calls=False`` / ``score_queries=False`` turn one kind off.
    """

    _core: ScoringCore = PrivateAttr()
    _score_llm_calls: bool = PrivateAttr()
    _score_queries: bool = PrivateAttr()
    _spans: _SpanParents = PrivateAttr()
    _dispatcher: Dispatcher | None = PrivateAttr(default=None)

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
        super().__init__()
        self._core = ScoringCore(
            scorer=scorer, rag=rag, quality_preset=quality_preset, options=options, evals=evals, judge=judge,
            on_result=on_result, max_pending=max_pending, max_results=max_results,
            judge_concurrency=judge_concurrency, max_wait=max_wait, tracer_provider=tracer_provider,
        )  # fmt: skip
        self._score_llm_calls = bool(score_llm_calls)
        self._score_queries = bool(score_queries)
        self._spans = _SpanParents(self._core.tracker)

    @classmethod
    def class_name(cls) -> str:
        return "TrustEventHandler"

    # -- registration ------------------------------------------------------------------------------

    def register(self, dispatcher: Dispatcher | None = None) -> TrustEventHandler:
        """Listen on ``dispatcher`` (default: LlamaIndex's root dispatcher, which sees every event).
        Registering again is a no-op; registering on another dispatcher moves the handler."""
        target = dispatcher if dispatcher is not None else get_dispatcher()
        if self._dispatcher is not None and self._dispatcher is not target:
            self.unregister()
        if not any(h is self for h in target.event_handlers):
            target.add_event_handler(self)
        if not any(h is self._spans for h in target.span_handlers):
            target.add_span_handler(self._spans)
        self._dispatcher = target
        return self

    def unregister(self) -> bool:
        """Stop listening; returns whether the handler was registered. Scores kept stay readable."""
        target, self._dispatcher = self._dispatcher, None
        if target is None:
            return False
        target.event_handlers = [h for h in target.event_handlers if h is not self]
        target.span_handlers = [h for h in target.span_handlers if h is not self._spans]
        return True

    @property
    def registered(self) -> bool:
        return self._dispatcher is not None

    def close(self, timeout: float | None = 5.0) -> None:
        """Unregister, finish the queued scores (up to ``timeout``) and stop the worker thread."""
        self.unregister()
        self._core.worker.close(timeout)

    # -- events --------------------------------------------------------------------------------------

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        """Take what is needed from ``event`` and queue its scoring; never raises, never waits."""
        if is_unhooked():  # tlm-hooks' own calls (judges, fallbacks) and calls a patched LLM already scores
            return
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            try:
                handler(self, event)
            except Exception as exc:  # observe-only: a surprise in an event never reaches the app
                logger.warning(
                    "tlm-hooks: could not read a LlamaIndex %s: %s: %s", type(event).__name__, type(exc).__name__, exc
                )

    def _query_start(self, event: QueryStartEvent) -> None:
        if self._score_queries and event.span_id is not None:
            self._core.tracker.start_query(event.span_id, query_text(event.query))

    def _retrieval_end(self, event: RetrievalEndEvent) -> None:
        self._core.tracker.add_passages(event.span_id, node_texts(event.nodes))

    def _get_response_start(self, event: GetResponseStartEvent) -> None:
        self._core.tracker.add_passages(event.span_id, [str(t) for t in event.text_chunks], synthesis=True)

    def _query_end(self, event: QueryEndEvent) -> None:
        if event.span_id is None:
            return
        tracker = self._core.tracker
        query = tracker.get(event.span_id)
        if query is None:
            return
        query.set_answer_context(source_passages(event.response))
        answer = answer_of(event.response)
        span = current_span_context()  # the query's span, still open while its end event is handled
        if answer is None:  # a streamed answer: scored when its LLM stream ends
            query.awaiting_stream = True
            query.source = event.response
            query.span = span
            return
        tracker.finish(event.span_id)
        self._core.score_query(query.id, query.query, query.context, answer, event.response, span)

    def _llm_start(self, event: BaseEvent) -> None:
        if event.span_id is not None:
            self._core.tracker.start_llm(event.span_id)

    def _llm_end(self, event: LLMChatEndEvent | LLMCompletionEndEvent) -> None:
        tracker = self._core.tracker
        call_id = event.span_id or event.id_
        if tracker.end_llm(call_id) or event.response is None:
            return
        if isinstance(event, LLMChatEndEvent):
            answer, messages, prompt = event.response.message.content or "", chat_messages(event.messages), None
        else:
            answer, messages, prompt = event.response.text or "", None, event.prompt
        query = tracker.query_of(event.span_id) or tracker.streamed_query_for(_prompt_text(messages, prompt))
        if self._score_llm_calls:
            span = current_span_context()  # the LLM call's span
            self._core.score_llm_call(call_id, query.id if query else None, messages, prompt, answer, span)
        if query is not None and query.awaiting_stream and tracker.finish(query.id) is not None:
            self._core.score_query(query.id, query.query, query.context, answer, query.source, query.span)

    def _span_drop(self, event: SpanDropEvent) -> None:
        if event.span_id is not None:  # a query or LLM call that raised: nothing to score
            self._core.tracker.finish(event.span_id)
            self._core.tracker.end_llm(event.span_id)


_HANDLERS: dict[type, Callable[[TrustEventHandler, Any], None]] = {
    QueryStartEvent: TrustEventHandler._query_start,
    QueryEndEvent: TrustEventHandler._query_end,
    RetrievalEndEvent: TrustEventHandler._retrieval_end,
    GetResponseStartEvent: TrustEventHandler._get_response_start,
    LLMChatStartEvent: TrustEventHandler._llm_start,
    LLMCompletionStartEvent: TrustEventHandler._llm_start,
    LLMChatEndEvent: TrustEventHandler._llm_end,
    LLMCompletionEndEvent: TrustEventHandler._llm_end,
    SpanDropEvent: TrustEventHandler._span_drop,
}
