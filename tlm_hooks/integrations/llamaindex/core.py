"""What both LlamaIndex handlers share: the scorers, the background worker, the result store,
the query tracker, and the read-back API (:class:`ReadbackMixin`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..._run import run_sync
from ...options import TLMOptions
from ...scorers.base import Scorer
from ...scorers.function import FunctionScorer
from ...types import ScoreRequest, TrustResult
from .results import ResultStore, ScoredCall
from .tracking import QueryTracker
from .worker import ScoringWorker

__all__ = ["ScoringCore", "ReadbackMixin", "OnResult"]

logger = logging.getLogger("tlm_hooks")

OnResult = Callable[[ScoredCall], Any]


class ScoringCore:
    """Turns captured calls into scoring jobs, runs them on the worker, keeps and forwards results.

    ``scorer`` scores LLM calls (default: :class:`~tlm_hooks.TLMScorer` with ``quality_preset``,
    ``options`` and ``judge``); ``rag`` scores query answers with their context (default:
    :class:`~tlm_hooks.rag.TrustworthyRAG` with the same settings, ``evals`` and ``scorer``).
    Both are built on first use, on the worker thread.
    """

    def __init__(
        self,
        *,
        scorer: Scorer | Callable[..., Any] | None,
        rag: Any,
        quality_preset: str,
        options: Mapping[str, Any] | None,
        evals: Sequence[Any] | None,
        judge: Any,
        on_result: OnResult | None,
        max_pending: int,
        max_results: int,
    ) -> None:
        TLMOptions(quality_preset, None, dict(options or {}))  # type: ignore[arg-type]  # bad options fail here, now
        if scorer is not None and not isinstance(scorer, Scorer):
            if not callable(scorer):
                raise TypeError(f"scorer must be a Scorer or a function(request) -> score, got {type(scorer).__name__}")
            scorer = FunctionScorer(scorer)
        if rag is not None and not callable(getattr(rag, "ascore", None)):
            raise TypeError(
                f"rag must have ascore(query=, context=, response=) (e.g. TrustworthyRAG), got {type(rag).__name__}"
            )
        if on_result is not None and not callable(on_result):
            raise TypeError(f"on_result must be a function(ScoredCall), got {type(on_result).__name__}")
        self._scorer = scorer
        self._rag = rag
        self.quality_preset = quality_preset
        self.options = dict(options or {})
        self.evals = evals
        self.judge = judge
        self.on_result = on_result
        self.worker = ScoringWorker(max_pending)
        self.store = ResultStore(max_results)
        self.tracker = QueryTracker()

    # -- scorers, built lazily -------------------------------------------------------------------

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            from ...scorers.tlm import TLMScorer

            self._scorer = TLMScorer(self.quality_preset, "default", self.options, judge=self.judge)
        return self._scorer

    @property
    def rag(self) -> Any:
        if self._rag is None:
            from ...rag import TrustworthyRAG

            self._rag = TrustworthyRAG(
                self.quality_preset, self.options, self.evals, judge=self.judge, scorer=self.scorer
            )
        return self._rag

    # -- jobs ---------------------------------------------------------------------------------------

    def score_llm_call(
        self,
        call_id: str,
        query_id: str | None,
        messages: Sequence[Mapping[str, Any]] | None,
        prompt: str | None,
        answer: str,
    ) -> bool:
        """Queue the score of one LLM call (chat ``messages`` or a completion ``prompt``)."""

        def job() -> None:
            try:
                request = ScoreRequest(
                    response=answer, messages=tuple(messages) if messages is not None else None, prompt=prompt
                )
                shown = request.prompt_text()
                result = self.scorer.score(request)
            except Exception as exc:
                shown, result = prompt or "", TrustResult.failed(exc)
            self._done(ScoredCall(call_id, "llm", query_id, shown, answer, result))

        return self.worker.submit(job)

    def score_query(self, query_id: str, query: str, context: Sequence[str], answer: str, source: Any = None) -> bool:
        """Queue the RAG score of one query answer against its retrieved ``context``."""
        passages = tuple(context)

        def job() -> None:
            try:
                scored = run_sync(self.rag.ascore(query=query, context=list(passages), response=answer))
                to_result = getattr(scored, "to_trust_result", None)  # a RAGResult keeps its explanation
                result = to_result() if callable(to_result) else TrustResult.from_dict(scored)
            except Exception as exc:
                result = TrustResult.failed(exc)
            self._done(ScoredCall(query_id, "query", query_id, query, answer, result, passages), source)

        return self.worker.submit(job)

    def _done(self, item: ScoredCall, source: Any = None) -> None:
        self.store.add(item, source)
        if self.on_result is not None:
            try:
                self.on_result(item)
            except Exception as exc:
                logger.warning("tlm-hooks: the on_result callback failed: %s: %s", type(exc).__name__, exc)


class ReadbackMixin:
    """Reading scores back from a handler (``self._core`` is its :class:`ScoringCore`)."""

    _core: ScoringCore

    def results(self, kind: str | None = None) -> list[ScoredCall]:
        """Scored calls, oldest first; ``kind="llm"`` or ``"query"`` to keep one kind."""
        items = self._core.store.all()
        return items if kind is None else [item for item in items if item.kind == kind]

    def result_for(self, key: Any) -> ScoredCall | None:
        """The score of a query or LLM call by its id, or of the ``Response`` object a query
        returned; ``None`` if not scored (yet: see :meth:`wait`) or no longer kept."""
        if isinstance(key, str):
            return self._core.store.get(key)
        return self._core.store.for_object(key)

    def query_results(self, query_id: str) -> list[ScoredCall]:
        """The query's own score and those of the LLM calls made inside it."""
        return [item for item in self._core.store.all() if item.query_id == query_id]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every captured call is scored; False if ``timeout`` seconds passed first.
        (For tests and scripts: the app itself never waits for scores.)"""
        return self._core.worker.wait(timeout)

    def flush(self, timeout: float | None = None) -> bool:
        """Same as :meth:`wait`."""
        return self.wait(timeout)

    @property
    def dropped(self) -> int:
        """Calls left unscored because the scoring queue was full."""
        return self._core.worker.dropped

    @property
    def pending(self) -> int:
        """Calls captured and not scored yet."""
        return self._core.worker.pending

    def clear(self) -> None:
        """Forget every kept result."""
        self._core.store.clear()
