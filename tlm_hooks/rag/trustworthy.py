"""`TrustworthyRAG`: trustworthiness plus RAG evals for (query, context, response), or generate then score."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from .._run import run_sync
from ..llm.base import ChatBackend, Generation
from ..llm.resolve import resolve_backend
from ..options import TLMOptions
from ..progress import row_reporter
from ..scorers.base import Scorer
from ..scorers.signals.presets import Plan, plan_for
from ..scorers.tlm import TLMScorer
from ..types import ScoreRequest, TrustResult
from .evals import Eval, coerce_evals
from .inputs import RagItem, check_item, check_items
from .judging import EvalOutcome, run_eval
from .result import RAGResult

__all__ = ["TrustworthyRAG"]

logger = logging.getLogger("tlm_hooks")


class TrustworthyRAG:
    """Score a RAG answer's trustworthiness and evals, or generate an answer and score it.

    ``quality_preset`` and ``options`` are TLM's (validated here): trustworthiness comes from
    :class:`~tlm_hooks.TLMScorer` with them (or from ``scorer``, when given), and each eval asks
    the judge as many differently-worded questions as the preset has self-reflections (at least
    one). ``evals=None`` uses :data:`DEFAULT_EVALS`; ``[]`` computes trustworthiness only. The
    judge is resolved as in ``TLMScorer``: ``options.model``/``model_provider``, ``judge``, the
    embedded local model. Up to ``max_concurrency`` judge calls per item, and items per batch,
    run at once. Scoring failures come back inside the result (``"score": None`` and
    ``"error"``); bad input raises :class:`~tlm_hooks.InvalidOptionError` before any model call.
    """

    def __init__(
        self,
        quality_preset: str = "medium",
        options: Mapping[str, Any] | None = None,
        evals: Sequence[Eval | Mapping[str, Any] | str] | None = None,
        *,
        judge: ChatBackend | None = None,
        max_concurrency: int = 8,
        scorer: Scorer | None = None,
    ) -> None:
        self.tlm_options = TLMOptions(quality_preset, "default", dict(options or {}))  # type: ignore[arg-type]
        self.evals: tuple[Eval, ...] = coerce_evals(evals)
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be an integer >= 1, got {max_concurrency!r}")
        self.judge = judge
        self.max_concurrency = max_concurrency
        self.scorer: Scorer = scorer or TLMScorer(
            quality_preset, "default", dict(options or {}), judge=judge, max_concurrency=max_concurrency
        )
        self._judge: ChatBackend | None = None  # resolved at the first judge call

    def __repr__(self) -> str:
        names = [ev.name for ev in self.evals]
        return (
            f"TrustworthyRAG(quality_preset={self.tlm_options.quality_preset!r}, evals={names!r}, judge={self.judge!r})"
        )

    # -- sync -------------------------------------------------------------------------------------

    def score(self, query: str, context: str | Sequence[str], response: str, prompt: str | None = None) -> RAGResult:
        """Trustworthiness and evals of ``response`` (``context`` may be a list of passages;
        ``prompt`` defaults to one built from query and context)."""
        return run_sync(self.ascore(query, context, response, prompt))

    def generate(self, query: str, context: str | Sequence[str], prompt: str | None = None) -> RAGResult:
        """Answer ``prompt`` with the judge model and score the answer: :meth:`score`'s result plus
        ``"response"``. Raises what the judge raised if the answer itself cannot be generated."""
        return run_sync(self.agenerate(query, context, prompt))

    def score_batch(self, items: Sequence[Mapping[str, Any]]) -> list[RAGResult]:
        """Score many ``{"query", "context", "response", "prompt"?}`` dicts; results in input order."""
        return run_sync(self.ascore_batch(items))

    # -- async ------------------------------------------------------------------------------------

    async def ascore(
        self, query: str, context: str | Sequence[str], response: str, prompt: str | None = None
    ) -> RAGResult:
        """Async form of :meth:`score`."""
        item = check_item(query, context, response, prompt, needs_response=True)
        return await self._score_item(item)

    async def agenerate(self, query: str, context: str | Sequence[str], prompt: str | None = None) -> RAGResult:
        """Async form of :meth:`generate`. Evals that need no response run while the answer is generated."""
        item = check_item(query, context, None, prompt, needs_response=False)
        options = self.tlm_options
        plan = plan_for(options.quality_preset, options.options)
        call = self._caller(options, asyncio.Semaphore(self.max_concurrency))
        early = {
            ev.name: asyncio.ensure_future(self._eval(call, ev, item, None, plan))
            for ev in self.evals
            if not ev.needs_response
        }
        try:
            text, trust = await self._generate(item, options, plan, call)
            later = [ev for ev in self.evals if ev.needs_response]
            trust_result, late = await asyncio.gather(
                trust, asyncio.gather(*(self._eval(call, ev, item, text, plan) for ev in later))
            )
            outcomes = dict(zip((ev.name for ev in later), late, strict=True))
            for name, task in early.items():
                outcomes[name] = await task
        finally:  # on failure or cancellation, stop the evals still running
            pending = [task for task in early.values() if not task.done()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        result = self._result(trust_result, [outcomes[ev.name] for ev in self.evals], options)
        return RAGResult({"response": text, **result})

    async def ascore_batch(self, items: Sequence[Mapping[str, Any]]) -> list[RAGResult]:
        """Async form of :meth:`score_batch` (every item is checked before any model call)."""
        checked = check_items(items, needs_response=True)
        limit = asyncio.Semaphore(self.max_concurrency)

        async def one(item: RagItem) -> RAGResult:
            rows = row_reporter()  # a progress display advances as each item finishes
            async with limit:
                try:
                    result = await self._score_item(item)
                except Exception as exc:  # a bug, not a judge failure: still only this item's
                    logger.warning("tlm-hooks: TrustworthyRAG failed on one batch item: %s", exc)
                    result = self._failed(exc)
            if rows is not None:
                rows.finished(result.trustworthiness_score is not None)
            return result

        return list(await asyncio.gather(*(one(item) for item in checked)))

    # -- internals -----------------------------------------------------------------------------

    async def _score_item(self, item: RagItem) -> RAGResult:
        assert item.response is not None
        options = self.tlm_options
        plan = plan_for(options.quality_preset, options.options)
        call = self._caller(options, asyncio.Semaphore(self.max_concurrency))
        trust, outcomes = await asyncio.gather(
            self._trust(_request(item, item.response, None, options)),
            asyncio.gather(*(self._eval(call, ev, item, item.response, plan) for ev in self.evals)),
        )
        return self._result(trust, outcomes, options)

    async def _generate(
        self, item: RagItem, options: TLMOptions, plan: Plan, call: Any
    ) -> tuple[str, Awaitable[TrustResult]]:
        """``(text, its TrustResult to await)``: several candidates go through the engine's
        own ``agenerate`` (which scores them); one answer is generated here, scored by the caller."""
        agenerate = getattr(self.scorer, "agenerate", None)
        if plan.candidates > 1 and agenerate is not None:
            text, result = await agenerate(item.prompt, options=options)
            return text, _ready(result)
        max_tokens = options.options.get("max_tokens", 256)
        messages = [{"role": "user", "content": item.prompt}]
        generations = await call(messages, temperature=0.0, max_tokens=max_tokens, logprobs=True)
        if not generations:
            raise RuntimeError("the judge model returned no answer")
        first: Generation = generations[0]
        return first.text, self._trust(_request(item, first.text, first.logprobs, options))

    async def _trust(self, request: ScoreRequest) -> TrustResult:
        try:
            return await self.scorer.ascore(request)
        except Exception as exc:  # a Scorer should not raise; fail open if it does
            logger.warning("tlm-hooks: TrustworthyRAG trustworthiness failed: %s", exc)
            return TrustResult.failed(exc)

    async def _eval(self, call: Any, ev: Eval, item: RagItem, response: str | None, plan: Plan) -> EvalOutcome:
        try:
            return await run_eval(call, ev, plan.reflections, query=item.query, context=item.context, response=response)
        except Exception as exc:
            logger.warning("tlm-hooks: RAG eval %s failed: %s", ev.name, exc)
            return EvalOutcome(ev.name, None, error=exc)

    def _caller(self, options: TLMOptions, limit: asyncio.Semaphore) -> Any:
        """A judge call bounded by ``limit``; the judge is resolved at the first call."""

        async def call(messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[Generation]:
            judge = self._judge_for(options)
            async with limit:
                return await judge.acomplete(messages, **kwargs)

        return call

    def _judge_for(self, options: TLMOptions) -> ChatBackend:
        """The judge, resolved once (the options are fixed per instance)."""
        if self._judge is None:
            self._judge = resolve_backend(options, self.judge)
        return self._judge

    def _result(self, trust: TrustResult, outcomes: Sequence[EvalOutcome], options: TLMOptions) -> RAGResult:
        wanted = options.options.get("log", ())
        out = RAGResult({"trustworthiness": _trust_part(trust, wanted)})
        for outcome in outcomes:
            part: dict[str, Any] = {"score": outcome.score}
            if outcome.error is not None:
                part["error"] = _error(outcome.error)
            elif "explanation" in wanted:
                part["log"] = {"explanation": outcome.explanation()}
            out[outcome.name] = part
        return out

    def _failed(self, exc: BaseException) -> RAGResult:
        out = RAGResult({"trustworthiness": {"score": None, "error": _error(exc)}})
        for ev in self.evals:
            out[ev.name] = {"score": None, "error": _error(exc)}
        return out


def _request(item: RagItem, response: str, logprobs: Any, options: TLMOptions) -> ScoreRequest:
    # the prompt already holds the context (it is the prompt the answer was written for)
    return ScoreRequest(response=response, prompt=item.prompt, response_logprobs=logprobs, options=options)


async def _ready(result: TrustResult) -> TrustResult:
    return result


def _error(exc: BaseException) -> dict[str, str]:
    return {"message": str(exc) or type(exc).__name__, "type": type(exc).__name__}


def _trust_part(result: TrustResult, wanted: Sequence[str]) -> dict[str, Any]:
    part: dict[str, Any] = {"score": result.trustworthiness_score}
    log: dict[str, Any] = {}
    if result.explanation is not None:  # the engine explains only when options.log asks
        log["explanation"] = result.explanation
    if "per_component_score" in wanted and result.components:
        log["per_component_score"] = dict(result.components)
    if result.warnings:  # a score made with less than asked says so, whatever log asked
        log["warnings"] = list(result.warnings)
    if log:
        part["log"] = log
    if result.error is not None:
        part["error"] = {"message": result.error, "type": result.error_type or "ScoringError"}
    return part
