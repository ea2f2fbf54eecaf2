"""`QueryTracker`: which query an event belongs to, and the context retrieved for it.

Both handlers feed it ids and parent ids (instrumentation spans, or legacy callback events)
and query boundaries. An event belongs to the nearest open query above it in that tree. All
state is bounded: the parent map and the open queries are LRU-limited, so queries that never
end (an exception, an abandoned stream) cannot grow it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["QueryTracker", "OpenQuery"]

MAX_DEPTH = 64
MAX_PASSAGES = 64
STALE_AFTER = 300.0  # seconds: an LLM call with no end event after this is not waited for


@dataclass
class OpenQuery:
    """A query that started and has not been scored yet, with the passages seen inside it."""

    id: str
    query: str
    retrieved: list[str] = field(default_factory=list)  # from retrieval events
    synthesized: list[str] = field(default_factory=list)  # text chunks handed to the synthesizer
    answered_from: list[str] = field(default_factory=list)  # the answer's own source nodes
    awaiting_stream: bool = False  # ended with a streamed answer that is still being produced
    source: object = None  # the response object a streamed query returned
    span: object = None  # the OpenTelemetry span context of a streamed query (its span ends before the score)

    @property
    def context(self) -> list[str]:
        """What the answer is judged against: its source nodes, else the retrieved passages,
        else the synthesizer's text chunks."""
        return self.answered_from or self.retrieved or self.synthesized

    def set_answer_context(self, passages: list[str]) -> None:
        self.answered_from = _bounded(passages)

    def add_passages(self, passages: list[str], *, synthesis: bool = False) -> None:
        kept = self.synthesized if synthesis else self.retrieved
        for text in passages:
            if len(kept) >= MAX_PASSAGES:
                return
            if text and text not in kept:
                kept.append(text)


def _bounded(passages: list[str]) -> list[str]:
    out: list[str] = []
    for text in passages:
        if text and text not in out:
            out.append(text)
            if len(out) >= MAX_PASSAGES:
                break
    return out


class QueryTracker:
    """Thread-safe map of ids to their parents, and of open queries."""

    def __init__(self, max_spans: int = 4096, max_queries: int = 256) -> None:
        self._lock = threading.Lock()
        self._llm_ended = threading.Condition(self._lock)
        self._parents: OrderedDict[str, str | None] = OrderedDict()
        self._queries: OrderedDict[str, OpenQuery] = OrderedDict()
        self._llm_calls: OrderedDict[str, float] = OrderedDict()  # LLM calls started, not ended: start time
        self.max_spans = max_spans
        self.max_queries = max_queries

    def enter(self, id_: str, parent_id: str | None) -> None:
        """``id_`` started inside ``parent_id``."""
        with self._lock:
            self._parents[id_] = parent_id
            self._parents.move_to_end(id_)
            while len(self._parents) > self.max_spans:
                self._parents.popitem(last=False)

    def start_query(self, id_: str, query: str) -> None:
        with self._lock:
            self._queries[id_] = OpenQuery(id_, query)
            while len(self._queries) > self.max_queries:
                self._queries.popitem(last=False)

    def query_of(self, id_: str | None) -> OpenQuery | None:
        """The nearest open query at or above ``id_``."""
        with self._lock:
            for _ in range(MAX_DEPTH):
                if id_ is None:
                    return None
                found = self._queries.get(id_)
                if found is not None:
                    return found
                id_ = self._parents.get(id_)
        return None

    def add_passages(self, id_: str | None, passages: list[str], *, synthesis: bool = False) -> None:
        """Context retrieved (or handed to the synthesizer) inside ``id_``, kept on its query."""
        query = self.query_of(id_)
        if query is not None:
            with self._lock:
                query.add_passages(passages, synthesis=synthesis)

    def finish(self, id_: str) -> OpenQuery | None:
        """Remove and return the query ``id_``."""
        with self._lock:
            return self._queries.pop(id_, None)

    def streamed_query_for(self, prompt: str) -> OpenQuery | None:
        """The most recent query awaiting a streamed answer whose text appears in ``prompt``.

        A streamed answer's LLM call starts while the app iterates the stream, after the query's
        span ended, so no span links the two; the synthesis prompt quotes the query instead."""
        with self._lock:
            for query in reversed(self._queries.values()):
                if query.awaiting_stream and query.query and query.query in prompt:
                    return query
        return None

    def start_llm(self, id_: str) -> None:
        with self._lock:
            self._llm_calls[id_] = time.monotonic()
            while len(self._llm_calls) > self.max_queries:
                self._llm_calls.popitem(last=False)

    def end_llm(self, id_: str) -> bool:
        """``id_``'s LLM call ended; returns True when it ran inside another LLM call that is
        still open (e.g. ``CustomLLM.chat`` calling ``self.complete``): that one covers it."""
        with self._lock:
            self._llm_calls.pop(id_, None)
            self._llm_ended.notify_all()
            parent = self._parents.get(id_)
            for _ in range(MAX_DEPTH):
                if parent is None:
                    return False
                if parent in self._llm_calls:
                    return True
                parent = self._parents.get(parent)
        return False

    def app_llm_calls(self, stale_after: float = STALE_AFTER) -> int:
        """The app's LLM calls in flight now (a call started over ``stale_after`` seconds ago
        without an end event, e.g. a stream the app abandoned, no longer counts)."""
        with self._lock:
            return self._in_flight(stale_after)

    def wait_app_idle(self, timeout: float, stale_after: float = STALE_AFTER) -> bool:
        """Block until the app has no LLM call in flight; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._llm_ended:
            while self._in_flight(stale_after):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._llm_ended.wait(min(remaining, 1.0))  # wakes for stale calls too
        return True

    def _in_flight(self, stale_after: float) -> int:
        oldest = time.monotonic() - stale_after
        return sum(1 for started in self._llm_calls.values() if started >= oldest)

    def get(self, id_: str) -> OpenQuery | None:
        with self._lock:
            return self._queries.get(id_)

    def __len__(self) -> int:
        with self._lock:
            return len(self._queries)
