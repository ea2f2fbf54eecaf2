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
from .budget import DEFAULT_JUDGE_CONCURRENCY, DEFAULT_MAX_WAIT, YieldingJudge, job_budget
from .responses import put_on_response
from .results import ResultStore, ScoredCall
from .spans import record_child_span
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
        judge_concurrency: int = DEFAULT_JUDGE_CONCURRENCY,
        max_wait: float = DEFAULT_MAX_WAIT,
        tracer_provider: Any = None,
    ) -> None:
        if isinstance(judge_concurrency, bool) or not isinstance(judge_concurrency, int) or judge_concurrency < 1:
            raise ValueError(f"judge_concurrency must be an integer >= 1, got {judge_concurrency!r}")
        if isinstance(max_wait, bool) or not isinstance(max_wait, (int, float)) or not max_wait > 0:
            raise ValueError(f"max_wait must be a number of seconds > 0, got {max_wait!r}")
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
        self.judge_concurrency = judge_concurrency
        self.max_wait = float(max_wait)
        self.tracer_provider = tracer_provider
        self.worker = ScoringWorker(max_pending)
        self.store = ResultStore(max_results)
        self.tracker = QueryTracker()
        self.skipped_busy = 0  # scores given up because the app kept its model busy
        self._budget_judge: YieldingJudge | None = None

    # -- scorers, built lazily -------------------------------------------------------------------

    @property
    def budget_judge(self) -> YieldingJudge:
        """The judge of the default scorers: ``judge`` (else the embedded model) inside the
        handler's traffic budget (see :mod:`.budget`)."""
        if self._budget_judge is None:
            inner = self.judge
            if inner is None:
                from ...llm.local import LocalBackend

                inner = LocalBackend()
            self._budget_judge = YieldingJudge(
                inner, self._app_idle, concurrency=self.judge_concurrency, max_wait=self.max_wait
            )
        return self._budget_judge

    def _app_idle(self, timeout: float) -> bool:
        return self.tracker.wait_app_idle(timeout)

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            from ...scorers.tlm import TLMScorer

            self._scorer = TLMScorer(
                self.quality_preset, "default", self.options, judge=self.budget_judge,
                max_concurrency=self.judge_concurrency,
            )  # fmt: skip
        return self._scorer

    @property
    def rag(self) -> Any:
        if self._rag is None:
            from ...rag import TrustworthyRAG

            self._rag = TrustworthyRAG(
                self.quality_preset, self.options, self.evals, judge=self.budget_judge, scorer=self.scorer,
                max_concurrency=self.judge_concurrency,
            )  # fmt: skip
        return self._rag

    # -- jobs ---------------------------------------------------------------------------------------

    def score_llm_call(
        self,
        call_id: str,
        query_id: str | None,
        messages: Sequence[Mapping[str, Any]] | None,
        prompt: str | None,
        answer: str,
        span: Any = None,
    ) -> bool:
        """Queue the score of one LLM call (chat ``messages`` or a completion ``prompt``);
        ``span`` is the OpenTelemetry span context of the call, if it was traced."""

        def job() -> None:
            with job_budget() as budget:
                try:
                    request = ScoreRequest(
                        response=answer, messages=tuple(messages) if messages is not None else None, prompt=prompt
                    )
                    shown = request.prompt_text()
                    result = self.scorer.score(request) if self._app_idle(self.max_wait) else None
                except Exception as exc:
                    shown, result = prompt or "", TrustResult.failed(exc)
            if result is None or budget.gave_up:
                self._skip_busy()
                return
            self._done(ScoredCall(call_id, "llm", query_id, shown, answer, result), span=span)

        return self.worker.submit(job)

    def score_query(
        self, query_id: str, query: str, context: Sequence[str], answer: str, source: Any = None, span: Any = None
    ) -> bool:
        """Queue the RAG score of one query answer against its retrieved ``context``; the result
        also goes on ``source`` (the query's ``Response``) and under ``span``."""
        passages = tuple(context)

        def job() -> None:
            with job_budget() as budget:
                try:
                    if not self._app_idle(self.max_wait):
                        result = None
                    else:
                        scored = run_sync(self.rag.ascore(query=query, context=list(passages), response=answer))
                        to_result = getattr(scored, "to_trust_result", None)  # a RAGResult keeps its explanation
                        result = to_result() if callable(to_result) else TrustResult.from_dict(scored)
                except Exception as exc:
                    result = TrustResult.failed(exc)
            if result is None or budget.gave_up:
                self._skip_busy()
                return
            if source is not None:
                put_on_response(source, result)
            self._done(ScoredCall(query_id, "query", query_id, query, answer, result, passages), source, span)

        return self.worker.submit(job)

    def _skip_busy(self) -> None:
        self.skipped_busy += 1  # only the worker thread writes it
        if self.skipped_busy == 1 or self.skipped_busy % 100 == 0:
            logger.warning(
                "tlm-hooks: the app kept its LLM busy for %g s: %d score(s) given up so far (LlamaIndex handler)",
                self.max_wait,
                self.skipped_busy,
            )

    def _done(self, item: ScoredCall, source: Any = None, span: Any = None) -> None:
        if span is not None:
            record_child_span(
                span, item.result, subject=item.kind, threshold=None, tracer_provider=self.tracer_provider
            )
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
    def skipped_busy(self) -> int:
        """Scores given up because the app kept its LLM busy longer than ``max_wait``."""
        return self._core.skipped_busy

    @property
    def pending(self) -> int:
        """Calls captured and not scored yet."""
        return self._core.worker.pending

    def clear(self) -> None:
        """Forget every kept result."""
        self._core.store.clear()
