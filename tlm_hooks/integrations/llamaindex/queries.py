"""A patched LLM's score on the query engine answer it produced.

When ``tlm_hooks.patch(llm)`` hooks a LlamaIndex LLM, each of its calls is scored as it
returns. Inside a query engine the app reads the engine's ``Response``, not the LLM's
``ChatResponse``, so :class:`QueryListener` (added to LlamaIndex's root dispatcher on the first
patch) ties the two together:

- ``QueryStartEvent`` opens a query in a context variable (the query engine's ``query`` /
  ``aquery`` runs every step of the query in that context, or in tasks copied from it);
- each hooked LLM call made inside takes a :class:`CallSlot` in the innermost open query;
- ``QueryEndEvent`` closes the query: the score of its LAST LLM call (the call whose answer the
  engine returns: the final refine step, the tree-summarize root) goes on the ``Response``
  (see :mod:`.responses`) and, as span attributes, on the query's OpenTelemetry span when one
  is recording.
- A streamed answer's LLM call starts only when the app iterates the ``StreamingResponse``,
  after the query returned; that call is matched to its query by the query text its prompt
  quotes, and its score is put on the ``StreamingResponse`` when the stream ends (the query's
  span has ended by then, so no span attributes).

No scoring happens here; the listener only moves results that the hook computed anyway.
"""

from __future__ import annotations

import threading
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.query import QueryEndEvent, QueryStartEvent
from llama_index.core.instrumentation.events.span import SpanDropEvent

from ...types import TrustResult
from .reading import answer_of, query_text
from .responses import put_on_response
from .spans import record_on_current_span

__all__ = ["CallSlot", "QueryListener", "open_call", "listen"]

MAX_CALLS = 256  # per query: only the last one is used, older slots are forgotten


@dataclass
class _Query:
    span_id: str
    text: str = ""
    calls: list[CallSlot] = field(default_factory=list)
    response: Any = None  # set when the query has returned
    lock: threading.Lock = field(default_factory=threading.Lock)


_OPEN: ContextVar[tuple[_Query, ...]] = ContextVar("tlm_hooks_llamaindex_queries", default=())
# queries that returned a stream not started yet, newest last (bounded: abandoned streams age out)
_AWAITING: deque[_Query] = deque(maxlen=64)
_AWAITING_LOCK = threading.Lock()


class CallSlot:
    """Where one hooked LLM call made inside a query puts its result."""

    def __init__(self, query: _Query, threshold: float | None, mode: str | None) -> None:
        self.query = query
        self.threshold = threshold
        self.mode = mode
        self.result: TrustResult | None = None

    def fill(self, result: TrustResult) -> None:
        """Record the call's final result; put it on the query's response if the query has
        already returned and this is its last call (a streamed answer)."""
        query = self.query
        with query.lock:
            self.result = result
            late = query.response is not None and query.calls and query.calls[-1] is self
            target = query.response if late else None
        if target is not None:
            put_on_response(target, result)


def open_call(threshold: float | None = None, mode: str | None = None, prompt: str = "") -> CallSlot | None:
    """A slot in the innermost query open in this context, else in the streamed query whose
    text ``prompt`` quotes, else ``None``."""
    stack = _OPEN.get()
    query = stack[-1] if stack else _claim_streamed(prompt)
    if query is None:
        return None
    slot = CallSlot(query, threshold, mode)
    with query.lock:
        query.calls.append(slot)
        if len(query.calls) > MAX_CALLS:
            del query.calls[0]
    return slot


class QueryListener(BaseEventHandler):  # type: ignore[misc]
    """Opens and closes queries for :func:`open_call` (see the module docstring)."""

    @classmethod
    def class_name(cls) -> str:
        return "TLMHooksQueryListener"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        span_id = event.span_id
        if span_id is None:
            return
        if isinstance(event, QueryStartEvent):
            _OPEN.set((*_OPEN.get(), _Query(span_id, query_text(event.query))))
        elif isinstance(event, QueryEndEvent):
            query = _close(span_id)
            if query is not None:
                _finish(query, event.response)
        elif isinstance(event, SpanDropEvent):  # the query raised: nothing to put anywhere
            _close(span_id)


def _claim_streamed(prompt: str) -> _Query | None:
    if not prompt:
        return None
    with _AWAITING_LOCK:
        for query in reversed(_AWAITING):
            if query.text and query.text in prompt:
                _AWAITING.remove(query)
                return query
    return None


def _close(span_id: str) -> _Query | None:
    stack = _OPEN.get()
    for index in range(len(stack) - 1, -1, -1):
        if stack[index].span_id == span_id:
            _OPEN.set(stack[:index])  # inner queries left open by an exception go too
            return stack[index]
    return None


def _finish(query: _Query, response: Any) -> None:
    with query.lock:
        query.response = response
        last = query.calls[-1] if query.calls else None
        result = last.result if last is not None else None
    if last is None and answer_of(response) is None:  # a stream whose LLM call starts when it is read
        with _AWAITING_LOCK:
            _AWAITING.append(query)
        return
    if last is None or result is None:  # no hooked call, or a stream still running
        return
    put_on_response(response, result)
    record_on_current_span(result, threshold=last.threshold, mode=last.mode)  # the query's span


_LISTENER: QueryListener | None = None
_LOCK = threading.Lock()


def listen() -> None:
    """Add the listener to LlamaIndex's root dispatcher (once; idempotent)."""
    global _LISTENER
    with _LOCK:
        root = get_dispatcher()
        if _LISTENER is None:
            _LISTENER = QueryListener()
        if not any(h is _LISTENER for h in root.event_handlers):
            root.add_event_handler(_LISTENER)
