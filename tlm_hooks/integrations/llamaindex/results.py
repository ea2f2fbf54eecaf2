"""What the LlamaIndex handlers produce: one :class:`ScoredCall` per scored LLM call or query
answer, kept in a bounded store (oldest dropped first)."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ...types import TrustResult

__all__ = ["ScoredCall", "ResultStore"]

Kind = Literal["llm", "query"]


@dataclass(frozen=True)
class ScoredCall:
    """The score of one LLM call (``kind="llm"``) or one query-engine answer (``kind="query"``).

    ``id`` is the LlamaIndex span (or callback event) id of the call or query; ``query_id`` the
    query it ran in (a query's own id for ``kind="query"``, ``None`` outside queries).
    ``prompt`` is the query text or the LLM's prompt (chat messages as ``role: content`` lines),
    ``context`` the retrieved passages the answer was scored against (queries only).
    ``result.evals`` holds the RAG evals (``response_groundedness``, ...) of a query answer.
    """

    id: str
    kind: Kind
    query_id: str | None
    prompt: str
    response: str
    result: TrustResult
    context: tuple[str, ...] = ()

    @property
    def score(self) -> float | None:
        """The trustworthiness score (``None`` when scoring failed)."""
        return self.result.trustworthiness_score

    @property
    def metadata(self) -> dict[str, Any]:
        """The result as a ``tlm_metadata`` dict."""
        return self.result.to_dict()


class ResultStore:
    """Thread-safe, bounded (LRU) store of :class:`ScoredCall` by id, plus a look-up by the
    LlamaIndex response object a query returned (held weakly)."""

    def __init__(self, max_results: int) -> None:
        if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
            raise ValueError(f"max_results must be an integer >= 1, got {max_results!r}")
        self.max_results = max_results
        self._lock = threading.Lock()
        self._items: OrderedDict[str, ScoredCall] = OrderedDict()
        self._by_object: dict[int, tuple[Callable[[], Any], str]] = {}

    def add(self, item: ScoredCall, source: Any = None) -> None:
        """Keep ``item`` (replacing one with the same id); ``source`` is the response object it
        scored, so :meth:`for_object` finds it."""
        ref = _weak(source) if source is not None else None
        with self._lock:
            self._items.pop(item.id, None)
            self._items[item.id] = item
            if ref is not None:
                self._by_object[id(source)] = (ref, item.id)
            while len(self._items) > self.max_results:
                self._items.popitem(last=False)
            if len(self._by_object) > self.max_results:
                self._by_object = {
                    k: v for k, v in self._by_object.items() if v[1] in self._items and v[0]() is not None
                }

    def get(self, key: str) -> ScoredCall | None:
        with self._lock:
            return self._items.get(key)

    def for_object(self, obj: Any) -> ScoredCall | None:
        with self._lock:
            entry = self._by_object.get(id(obj))
            if entry is None or entry[0]() is not obj:
                return None
            return self._items.get(entry[1])

    def all(self) -> list[ScoredCall]:
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._by_object.clear()


def _weak(obj: Any) -> Callable[[], Any] | None:
    try:
        return weakref.ref(obj)
    except TypeError:
        return None
