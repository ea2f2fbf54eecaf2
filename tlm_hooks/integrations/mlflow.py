"""MLflow: score the traces of an experiment and write the scores back; a scorer for
``mlflow.genai.evaluate`` and a metric for the classic ``mlflow.evaluate``.

    from tlm_hooks.integrations.mlflow import score_mlflow_traces
    summary = score_mlflow_traces(experiment_name="my-app", tracking_uri="http://127.0.0.1:5000")

Needs the ``[mlflow]`` extra (MLflow 3). MLflow is imported when a function here is called.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from .._run import run_sync
from ..errors import InvalidOptionError, MissingDependencyError
from ..scorers.base import Scorer
from ..types import ScoreRequest, TrustResult
from ._backlog import Record, ScoringSummary, annotator_kind, as_scorer, check_count, score_backlog
from ._payloads import load_json, request_from_payload

if TYPE_CHECKING:
    from mlflow.entities import Trace

__all__ = [
    "score_mlflow_traces",
    "request_from_trace",
    "trustworthiness_scorer",
    "trustworthiness_metric",
    "ScoringSummary",
]

logger = logging.getLogger("tlm_hooks")

LLM_SPAN_TYPES = ("CHAT_MODEL", "LLM")
MAX_TAG_VALUE = 8000  # MLflow's limit for a trace tag value
_MLFLOW_GRACE = 10.0  # seconds MLflow's per-scorer limit is set above ours
SpanChoice = Literal["auto", "root"]


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError as exc:
        raise MissingDependencyError("the MLflow integration needs MLflow 3: pip install 'tlm-hooks[mlflow]'") from exc
    return mlflow


# -- reading a trace ------------------------------------------------------------------------------


def request_from_trace(trace: Trace, *, span: SpanChoice = "auto") -> ScoreRequest | None:
    """The scored call of an MLflow trace, or ``None`` when it holds no prompt and answer.

    ``span="auto"``: the last LLM/chat-model span that finished (its full request, system
    messages and tool results included, and its answer), else the root span. ``"root"``: the
    trace's own request and response.
    """
    found = _find_call(trace, span)
    return None if found is None else found[0]


def _find_call(trace: Any, span: SpanChoice) -> tuple[ScoreRequest, str | None] | None:
    spans = list(getattr(getattr(trace, "data", None), "spans", None) or ())
    if span == "auto":
        llm_spans = [s for s in spans if getattr(s, "span_type", None) in LLM_SPAN_TYPES]
        for candidate in sorted(llm_spans, key=lambda s: getattr(s, "end_time_ns", 0) or 0, reverse=True):
            request = request_from_payload(candidate.inputs, candidate.outputs)
            if request is not None:
                return request, candidate.span_id
    roots = [s for s in spans if getattr(s, "parent_id", None) is None]
    if roots:
        request = request_from_payload(roots[0].inputs, roots[0].outputs)
        return None if request is None else (request, roots[0].span_id)
    data = getattr(trace, "data", None)  # no spans loaded: the trace-level request/response
    request = request_from_payload(
        load_json(getattr(data, "request", None)), load_json(getattr(data, "response", None))
    )
    return None if request is None else (request, None)


# -- scoring an experiment's traces -------------------------------------------------------------------


def score_mlflow_traces(
    experiment_id: str | int | None = None,
    *,
    experiment_name: str | None = None,
    tracking_uri: str | None = None,
    scorer: Scorer | Callable[[ScoreRequest], Any] | None = None,
    filter_string: str | None = None,
    max_results: int | None = None,
    page_size: int = 100,
    batch_size: int = 16,
    overwrite: bool = False,
    span: SpanChoice = "auto",
    score_tag: str = "trust_score",
    explanation_tag: str = "explanation",
    feedback_name: str | None = "trust_score",
    progress: Callable[[ScoringSummary], Any] | None = None,
    show_progress: bool | None = None,
) -> ScoringSummary:
    """Score the traces of one experiment and write each score back onto its trace.

    Pass ``experiment_id`` or ``experiment_name``. Traces are read ``page_size`` at a time
    (oldest first, optionally narrowed by MLflow's ``filter_string``, at most ``max_results``)
    and scored ``batch_size`` at a time with ``scorer`` (default: the engine on the embedded
    local model, with explanations). Each score is written as trace tags ``score_tag`` (the
    score as text) and ``explanation_tag``, and as an MLflow feedback assessment named
    ``feedback_name`` (value = score, rationale = explanation; ``None`` skips it). Traces that
    already carry ``score_tag`` are skipped unless ``overwrite`` (a rescore replaces the earlier
    feedback). Traces whose scoring fails get nothing written and are retried next run.
    Returns a :class:`ScoringSummary`.
    """
    if (experiment_id is None) == (experiment_name is None):
        raise InvalidOptionError(
            "experiment_id/experiment_name", (experiment_id, experiment_name), "exactly one of them"
        )
    if experiment_id is not None and (isinstance(experiment_id, bool) or not isinstance(experiment_id, (str, int))):
        raise InvalidOptionError("experiment_id", experiment_id, "an experiment id (str or int)")
    if experiment_name is not None and (not isinstance(experiment_name, str) or not experiment_name):
        raise InvalidOptionError("experiment_name", experiment_name, "a non-empty experiment name")
    if filter_string is not None and not isinstance(filter_string, str):
        raise InvalidOptionError("filter_string", filter_string, "an MLflow trace search filter (str) or None")
    check_count("max_results", max_results, allow_none=True)
    check_count("page_size", page_size)
    check_count("batch_size", batch_size)
    if span not in ("auto", "root"):
        raise InvalidOptionError("span", span, "'auto' or 'root'")
    for key, value in (("score_tag", score_tag), ("explanation_tag", explanation_tag)):
        if not isinstance(value, str) or not value:
            raise InvalidOptionError(key, value, "a non-empty tag name")
    if feedback_name is not None and (not isinstance(feedback_name, str) or not feedback_name):
        raise InvalidOptionError("feedback_name", feedback_name, "a non-empty assessment name or None")
    engine = as_scorer(scorer)

    mlflow = _mlflow()
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    exp_id = _experiment_id(client, experiment_id, experiment_name)
    feedback = _FeedbackWriter.create(tracking_uri, feedback_name, engine) if feedback_name else None
    summary = ScoringSummary()
    records = _records(
        client, exp_id, summary,
        filter_string=filter_string, max_results=max_results, page_size=page_size, overwrite=overwrite,
        span=span, score_tag=score_tag, feedback_name=feedback_name,
    )  # fmt: skip

    def write(batch: list[tuple[Record, TrustResult]]) -> list[tuple[Record, BaseException]]:
        failed: list[tuple[Record, BaseException]] = []
        for record, result in batch:
            try:
                _write_one(client, feedback, record, result, score_tag, explanation_tag)
            except Exception as exc:
                logger.warning("tlm-hooks: writing the score of trace %s failed: %s", record.key, exc)
                failed.append((record, exc))
        return failed

    return score_backlog(
        records, engine, batch_size=batch_size, write=write, summary=summary, progress=progress,
        show_progress=show_progress,
    )


def _experiment_id(client: Any, experiment_id: str | int | None, name: str | None) -> str:
    if experiment_id is not None:
        return str(experiment_id)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        raise InvalidOptionError(
            "experiment_name", name, f"the name of an existing experiment at {client.tracking_uri}"
        )
    return str(experiment.experiment_id)


def _records(
    client: Any,
    experiment_id: str,
    summary: ScoringSummary,
    *,
    filter_string: str | None,
    max_results: int | None,
    page_size: int,
    overwrite: bool,
    span: SpanChoice,
    score_tag: str,
    feedback_name: str | None,
) -> Iterator[Record]:
    """Records of the experiment's traces, one page in memory at a time (oldest first, so traces
    logged while this runs are appended after the pages already read)."""
    # MLflow 3.x renamed `experiment_ids` to `locations` (the old name warns, then goes away)
    parameters = inspect.signature(client.search_traces).parameters
    where: dict[str, Any] = (
        {"locations": [experiment_id]} if "locations" in parameters else {"experiment_ids": [experiment_id]}
    )
    if "flush" in parameters:  # traces this process logged a moment ago are still being sent
        where["flush"] = True
    token: str | None = None
    left = max_results
    while left is None or left > 0:
        size = page_size if left is None else min(page_size, left)
        page = client.search_traces(
            **where, filter_string=filter_string, max_results=size, order_by=["timestamp_ms ASC"], page_token=token
        )
        where.pop("flush", None)
        for trace in page:
            summary.seen += 1
            info = trace.info
            if not overwrite and score_tag in (info.tags or {}):
                summary.already_scored += 1
                continue
            found = _find_call(trace, span)
            if found is None:
                summary.add_unreadable(info.trace_id)
                continue
            previous = _Previous(_feedback_id(info, feedback_name), set(info.tags or {}))
            yield Record(info.trace_id, found[0], span_id=found[1], previous=previous)
        if left is not None:
            left -= len(page)
        token = page.token
        if not token or not len(page):
            return


class _Previous:
    """What a trace carried before this run: an earlier feedback to replace, its tag names."""

    __slots__ = ("feedback_id", "tags")

    def __init__(self, feedback_id: str | None, tags: set[str]) -> None:
        self.feedback_id = feedback_id
        self.tags = tags


def _feedback_id(info: Any, name: str | None) -> str | None:
    if name is None:
        return None
    for assessment in getattr(info, "assessments", None) or ():
        if getattr(assessment, "name", None) == name and getattr(assessment, "valid", True) is not False:
            return getattr(assessment, "assessment_id", None)
    return None


def _write_one(
    client: Any,
    feedback: _FeedbackWriter | None,
    record: Record,
    result: TrustResult,
    score_tag: str,
    explanation_tag: str,
) -> None:
    # the score tag is written last: it marks the trace as done, so a partial write is redone
    if feedback is not None:
        feedback.log(record, result)
    previous: _Previous = record.previous
    if result.explanation:
        client.set_trace_tag(record.key, explanation_tag, result.explanation[:MAX_TAG_VALUE])
    elif explanation_tag in previous.tags:  # a rescore without explanation: drop the stale one
        client.delete_trace_tag(record.key, explanation_tag)
    client.set_trace_tag(record.key, score_tag, repr(result.trustworthiness_score))


class _FeedbackWriter:
    """Logs scores as MLflow feedback assessments (MLflow 3's assessment API)."""

    def __init__(self, tracing_client: Any, name: str, feedback_cls: Any, source: Any) -> None:
        self.client = tracing_client
        self.name = name
        self.feedback_cls = feedback_cls
        self.source = source

    @classmethod
    def create(cls, tracking_uri: str | None, name: str, scorer: Scorer) -> _FeedbackWriter | None:
        try:
            from mlflow.entities import AssessmentSource, Feedback
            from mlflow.tracing.client import TracingClient
        except ImportError:
            logger.info("tlm-hooks: this MLflow has no assessment API; scores are written as trace tags only")
            return None
        source_type = "LLM_JUDGE" if annotator_kind(scorer) == "LLM" else "CODE"
        source = AssessmentSource(source_type=source_type, source_id=f"tlm-hooks/{type(scorer).__name__}")
        return cls(TracingClient(tracking_uri), name, Feedback, source)

    def log(self, record: Record, result: TrustResult) -> None:
        feedback = self.feedback_cls(
            name=self.name,
            value=result.trustworthiness_score,
            rationale=result.explanation,
            source=self.source,
            span_id=record.span_id,
            metadata=_metadata(result),
            overrides=record.previous.feedback_id,
        )
        self.client.log_assessment(record.key, feedback)


# -- evaluation ---------------------------------------------------------------------------------------


def trustworthiness_scorer(
    scorer: Scorer | Callable[[ScoreRequest], Any] | None = None,
    *,
    name: str = "trustworthiness",
    timeout: float | None = None,
) -> Any:
    """A scorer for ``mlflow.genai.evaluate(data, scorers=[...])`` (MLflow 3's GenAI evaluation).

    Each row is scored from its trace's LLM call when the trace has one (so system prompts
    count), else from the row's ``inputs`` and ``outputs``. It returns an MLflow ``Feedback``:
    value = trustworthiness score, rationale = explanation, or an error when scoring failed.

    ``timeout`` is the seconds one row's scoring may take; a row over it gets an error
    ``Feedback`` (code ``ScoringTimeout``) and the other rows keep their scores. ``0``: no limit
    (MLflow's own per-scorer limit is lifted too); ``None``: MLflow's own limit (300 s in recent
    MLflow 3). MLflow scores ``MLFLOW_GENAI_EVAL_MAX_WORKERS`` rows at once (10 by default), all
    waiting on the same judge: with a local judge model, lower that or raise ``timeout``.
    """
    _mlflow()
    from mlflow.entities import AssessmentError, AssessmentSource, Feedback
    from mlflow.genai.scorers import scorer as make_scorer

    if not isinstance(name, str) or not name:
        raise InvalidOptionError("name", name, "a non-empty scorer name")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout < 0
    ):
        raise InvalidOptionError("timeout", timeout, "seconds (a number >= 0; 0 for no limit) or None")
    engine = as_scorer(scorer)
    source_type = "LLM_JUDGE" if annotator_kind(engine) == "LLM" else "CODE"
    source = AssessmentSource(source_type=source_type, source_id=f"tlm-hooks/{type(engine).__name__}")

    def trustworthiness(inputs: Any = None, outputs: Any = None, trace: Any = None) -> Any:
        request = request_from_trace(trace) if trace is not None else None
        if request is None:
            request = request_from_payload(inputs, outputs)
        if request is None:
            error = AssessmentError(
                error_code="Unreadable", error_message="no prompt and response to score in this row"
            )
            return Feedback(name=name, error=error, source=source)
        result = _score_within(engine, request, timeout or None)
        if result.trustworthiness_score is None:
            error = AssessmentError(
                error_code=result.error_type or "ScoringError", error_message=result.error or "no score"
            )
            return Feedback(name=name, error=error, source=source)
        return Feedback(
            name=name,
            value=result.trustworthiness_score,
            rationale=result.explanation,
            source=source,
            metadata=_metadata(result),
        )

    limit: dict[str, Any] = {}
    if timeout is not None and "timeout" in inspect.signature(make_scorer).parameters:
        # MLflow's own limit stays above ours, so a slow row ends with our error, not MLflow's
        limit["timeout"] = 0 if timeout == 0 else timeout + _MLFLOW_GRACE
    return make_scorer(trustworthiness, name=name, **limit)


def _metadata(result: TrustResult) -> dict[str, str] | None:
    """Feedback metadata: the signal scores, and what the score was made without (if anything)."""
    metadata = {"tlm_hooks.components": json.dumps(dict(result.components))} if result.components else {}
    if result.warnings:
        metadata["tlm_hooks.warnings"] = json.dumps(list(result.warnings))
    return metadata or None


def _score_within(engine: Scorer, request: ScoreRequest, timeout: float | None) -> TrustResult:
    """``engine``'s result for ``request``, or a ``ScoringTimeout`` failure after ``timeout`` seconds."""
    if timeout is None:
        return engine.score(request)
    try:
        return run_sync(asyncio.wait_for(engine.ascore(request), timeout))
    except (asyncio.TimeoutError, TimeoutError):
        message = (
            f"scoring took longer than timeout={timeout:g} s; rows are scored MLFLOW_GENAI_EVAL_MAX_WORKERS "
            "at a time and share the judge: lower that variable or raise timeout="
        )
        return TrustResult(None, error=message, error_type="ScoringTimeout")


def trustworthiness_metric(
    scorer: Scorer | Callable[[ScoreRequest], Any] | None = None,
    *,
    name: str = "trustworthiness",
    batch_size: int = 16,
) -> Any:
    """A metric for the classic ``mlflow.evaluate(..., extra_metrics=[...])``
    (``mlflow.metrics.make_metric``).

    It reads the ``inputs`` column (a prompt string, a list of chat messages or a request
    dict; map another column with ``evaluator_config={"col_mapping": {"inputs": ...}}``) and
    the predictions, scores them ``batch_size`` at a time, and reports per-row scores with the
    explanations as justifications, plus ``mean``/``min``/``max``. A row that cannot be scored
    gets ``None``. (MLflow calls the metric once on a one-row sample first.)
    """
    _mlflow()
    from mlflow.metrics import MetricValue, make_metric

    if not isinstance(name, str) or not name:
        raise InvalidOptionError("name", name, "a non-empty metric name")
    check_count("batch_size", batch_size)
    engine = as_scorer(scorer)

    def eval_fn(predictions: Any, inputs: Any) -> Any:
        prompts, answers = _as_list(inputs), _as_list(predictions)
        if len(prompts) != len(answers):
            raise ValueError(f"{name}: {len(prompts)} inputs but {len(answers)} predictions")
        pairs = list(zip(prompts, answers, strict=True))
        scores: list[Any] = []  # float, or None for a row that could not be scored
        justifications: list[str] = []
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            requests = [request_from_payload(prompt, answer) for prompt, answer in chunk]
            readable = [r for r in requests if r is not None]
            results = iter(engine.score_batch(readable))
            for request in requests:
                result = next(results) if request is not None else TrustResult.failed("no prompt and response to score")
                scores.append(result.trustworthiness_score)
                justifications.append((result.explanation or "") if result.ok else f"error: {result.error}")
        valid = [s for s in scores if s is not None]
        aggregates = {"mean": sum(valid) / len(valid), "min": min(valid), "max": max(valid)} if valid else {}
        return MetricValue(scores=scores, justifications=justifications, aggregate_results=aggregates)

    return make_metric(eval_fn=eval_fn, greater_is_better=True, name=name)


def _as_list(column: Any) -> list[Any]:
    if hasattr(column, "tolist"):
        return list(column.tolist())
    if isinstance(column, Sequence) and not isinstance(column, str):
        return list(column)
    return [column]
