"""Phoenix: score the LLM spans of a project and log the scores back as span annotations
(shown in Phoenix as the evaluation ``Trustworthiness``).

    from tlm_hooks.integrations.phoenix import score_phoenix_spans
    summary = score_phoenix_spans("my-app", endpoint="http://127.0.0.1:6006")

Needs the ``[phoenix]`` extra (``arize-phoenix-client``), imported when a function here is called.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ..errors import InvalidOptionError, MissingDependencyError
from ..scorers.base import Scorer
from ..types import ScoreRequest, TrustResult
from ._backlog import Record, ScoringSummary, annotator_kind, as_scorer, check_count, score_backlog
from ._openinference import request_from_attributes

__all__ = ["score_phoenix_spans", "request_from_span", "ScoringSummary"]

logger = logging.getLogger("tlm_hooks")

TRUSTWORTHY = "trustworthy"
UNTRUSTWORTHY = "untrustworthy"


def request_from_span(span: Mapping[str, Any]) -> ScoreRequest | None:
    """The LLM call recorded on a Phoenix span (a REST ``v1`` span dict, or a mapping of its
    attributes), or ``None`` when it holds no prompt and answer."""
    nested = span.get("attributes")
    return request_from_attributes(nested if isinstance(nested, Mapping) else span)


def score_phoenix_spans(
    project_name: str = "default",
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    scorer: Scorer | Callable[[ScoreRequest], Any] | None = None,
    span_kind: str | Sequence[str] | None = "LLM",
    span_name: str | Sequence[str] | None = None,
    span_filter: Callable[[Mapping[str, Any]], bool] | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    max_results: int | None = None,
    page_size: int = 100,
    batch_size: int = 16,
    threshold: float = 0.5,
    annotation_name: str = "Trustworthiness",
    overwrite: bool = False,
    progress: Callable[[ScoringSummary], Any] | None = None,
    timeout: float = 60.0,
    show_progress: bool | None = None,
) -> ScoringSummary:
    """Score the spans of a Phoenix project and log each score as a span annotation.

    Spans are read ``page_size`` at a time from the server at ``endpoint`` (default: Phoenix's
    own environment settings, e.g. ``PHOENIX_COLLECTOR_ENDPOINT``), newest first, narrowed by
    ``span_kind`` (default ``LLM``; ``None`` for all), ``span_name``, the time range, and an
    optional ``span_filter(span) -> bool`` on the REST span dict; at most ``max_results`` are
    read. The prompt is rebuilt from the OpenInference attributes (``llm.input_messages.*``,
    system messages included, else ``input.value``); ``scorer`` (default: the engine on the
    embedded local model, with explanations) scores ``batch_size`` spans at a time. Each score
    is logged as annotation ``annotation_name`` with the score, the explanation and the label
    ``trustworthy``/``untrustworthy`` (score >= ``threshold`` or not). Spans that already have
    that annotation are skipped unless ``overwrite`` (which replaces it). A progress display
    runs on a terminal (``show_progress``: True also in logs, False never; see
    :mod:`tlm_hooks.progress`). Returns a :class:`ScoringSummary`.
    """
    if not isinstance(project_name, str) or not project_name:
        raise InvalidOptionError("project_name", project_name, "a non-empty project name")
    kinds = _names("span_kind", span_kind)
    names = _names("span_name", span_name)
    if span_filter is not None and not callable(span_filter):
        raise InvalidOptionError("span_filter", span_filter, "a function(span) -> bool or None")
    check_count("max_results", max_results, allow_none=True)
    check_count("page_size", page_size)
    check_count("batch_size", batch_size)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise InvalidOptionError("threshold", threshold, "a number from 0 to 1")
    if not isinstance(annotation_name, str) or not annotation_name.strip():
        raise InvalidOptionError("annotation_name", annotation_name, "a non-empty annotation name")
    for key, when in (("start_time", start_time), ("end_time", end_time)):
        if when is not None and not isinstance(when, datetime):
            raise InvalidOptionError(key, when, "a datetime or None")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 or math.isinf(timeout):
        raise InvalidOptionError("timeout", timeout, "a positive number of seconds")
    engine = as_scorer(scorer)

    client = _client(endpoint, api_key)
    query = _SpanQuery(project_name, kinds, names, start_time, end_time, span_filter, timeout)
    summary = ScoringSummary()
    records = _records(client, query, summary, max_results, page_size, overwrite, annotation_name)
    kind = annotator_kind(engine)
    source = type(engine).__name__

    def write(batch: list[tuple[Record, TrustResult]]) -> list[tuple[Record, BaseException]]:
        annotations = [
            _annotation(record, result, annotation_name, kind, threshold, source) for record, result in batch
        ]
        try:
            client.spans.log_span_annotations(span_annotations=annotations, sync=True)
        except Exception as exc:
            logger.warning("tlm-hooks: logging %d Phoenix annotations failed: %s", len(batch), exc)
            return [(record, exc) for record, _ in batch]
        return []

    return score_backlog(
        records, engine, batch_size=batch_size, write=write, summary=summary, progress=progress,
        show_progress=show_progress, label=f"scoring spans of {project_name}",
    )


def _names(key: str, value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else None
    if not items or not all(isinstance(v, str) and v for v in items):
        raise InvalidOptionError(key, value, "a non-empty string, a list of them, or None")
    return items


def _client(endpoint: str | None, api_key: str | None) -> Any:
    try:
        from phoenix.client import Client
    except ImportError as exc:
        raise MissingDependencyError(
            "the Phoenix integration needs arize-phoenix-client: pip install 'tlm-hooks[phoenix]'"
        ) from exc
    return Client(base_url=endpoint, api_key=api_key)


class _SpanQuery:
    """Which spans to read (the filters of Phoenix's ``GET /v1/projects/{project}/spans``)."""

    def __init__(
        self,
        project: str,
        kinds: list[str],
        names: list[str],
        start_time: datetime | None,
        end_time: datetime | None,
        keep: Callable[[Mapping[str, Any]], bool] | None,
        timeout: float,
    ) -> None:
        self.project = project
        self.keep = keep
        self.timeout = timeout
        self.params: dict[str, Any] = {}
        if kinds:
            self.params["span_kind"] = kinds
        if names:
            self.params["name"] = names
        if start_time is not None:
            self.params["start_time"] = start_time.isoformat()
        if end_time is not None:
            self.params["end_time"] = end_time.isoformat()

    def page(self, client: Any, size: int, cursor: str | None) -> tuple[list[Mapping[str, Any]], str | None]:
        """One page of spans and the cursor of the next (``None`` after the last)."""
        # The client's get_spans() gathers every page in memory; its HTTP client pages by cursor.
        http = client._client
        params = {**self.params, "limit": size, **({"cursor": cursor} if cursor else {})}
        response = http.get(
            f"v1/projects/{quote(self.project, safe='')}/spans",
            params=params,
            headers={"accept": "application/json"},
            timeout=self.timeout,
        )
        if response.status_code == 404:
            raise InvalidOptionError(
                "project_name", self.project, f"the name of an existing project at {http.base_url}"
            )
        response.raise_for_status()
        payload = response.json()
        return list(payload.get("data") or ()), payload.get("next_cursor") or None


def _records(
    client: Any,
    query: _SpanQuery,
    summary: ScoringSummary,
    max_results: int | None,
    page_size: int,
    overwrite: bool,
    annotation_name: str,
) -> Iterator[Record]:
    cursor: str | None = None
    left = max_results
    while left is None or left > 0:
        spans, cursor = query.page(client, page_size if left is None else min(page_size, left), cursor)
        fetched = len(spans)
        if left is not None:
            left -= fetched
        if query.keep is not None:
            spans = [s for s in spans if query.keep(s)]
        ids = [s["context"]["span_id"] for s in spans]
        done = set() if overwrite or not ids else _annotated(client, query, ids, annotation_name)
        for span, span_id in zip(spans, ids, strict=True):
            summary.seen += 1
            if span_id in done:
                summary.already_scored += 1
                continue
            request = request_from_span(span)
            if request is None:
                summary.add_unreadable(span_id)
                continue
            yield Record(span_id, request, span_id=span_id)
        if cursor is None or not fetched:
            return


def _annotated(client: Any, query: _SpanQuery, span_ids: list[str], name: str) -> set[str]:
    found = client.spans.get_span_annotations(
        span_ids=span_ids, project_identifier=query.project, include_annotation_names=[name], timeout=int(query.timeout)
    )
    return {a["span_id"] for a in found if a.get("name") == name}


def _annotation(
    record: Record, result: TrustResult, name: str, kind: str, threshold: float, source: str
) -> dict[str, Any]:
    score = result.trustworthiness_score
    assert score is not None
    outcome: dict[str, Any] = {"score": score, "label": TRUSTWORTHY if score >= threshold else UNTRUSTWORTHY}
    if result.explanation and result.explanation.strip():
        outcome["explanation"] = result.explanation.strip()
    metadata: dict[str, Any] = {"scorer": source, "threshold": threshold}
    if result.components:
        metadata["components"] = dict(result.components)
    return {
        "name": name.strip(),
        "annotator_kind": kind,
        "span_id": record.key,
        "result": outcome,
        "metadata": metadata,
    }
