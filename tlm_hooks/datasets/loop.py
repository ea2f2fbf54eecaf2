"""The streaming scoring loop: records in, windows of scored records out, in input order.

Records are taken ``batch_size`` at a time; the well-formed ones of a window are scored together
with the scorer's ``ascore_batch`` (its own concurrency limit, and the judge's adaptive limit,
apply); malformed ones get a bad-row outcome, or stop the run. Only one window is in memory.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Literal

from ..scorers.base import Scorer
from ..types import ScoreRequest, TrustResult
from .columns import Columns, RowProblem, preview
from .errors import BadRowError, DatasetError
from .rows import Record
from .writer import Outcome

__all__ = ["Scored", "OnBadRow", "ON_BAD_ROW", "score_windows", "outcome_of"]

logger = logging.getLogger("tlm_hooks")

OnBadRow = Literal["skip", "stop"]
ON_BAD_ROW: tuple[str, ...] = ("skip", "stop")


@dataclass(frozen=True)
class Scored:
    """One record with its outcome, for the summary its prompt and response text, and the
    scorer's result (``None`` for a malformed row)."""

    record: Record
    outcome: Outcome
    prompt: str = ""
    response: str = ""
    result: TrustResult | None = None


def outcome_of(result: TrustResult) -> Outcome:
    """The result columns for a scorer's result (a failure keeps its error kind and message)."""
    if result.ok:
        return Outcome(result.trustworthiness_score, result.explanation)
    kind = result.error_type or "error"
    return Outcome(None, None, f"scoring failed ({kind}): {result.error or 'no score returned'}")


def check_loop_args(batch_size: int, on_bad_row: str) -> None:
    """Validate the loop's settings (before anything is read or scored)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DatasetError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if on_bad_row not in ON_BAD_ROW:
        raise DatasetError(f"on_bad_row must be one of {', '.join(ON_BAD_ROW)}; got {on_bad_row!r}")


async def score_windows(
    records: Iterable[Record],
    columns: Columns,
    scorer: Scorer,
    *,
    batch_size: int = 32,
    on_bad_row: OnBadRow = "skip",
) -> AsyncIterator[list[Scored]]:
    """Yield the records, scored, a window at a time. With ``on_bad_row="stop"`` the rows before
    a malformed one are yielded first, then :class:`BadRowError` is raised."""
    check_loop_args(batch_size, on_bad_row)
    window: list[tuple[Record, ScoreRequest | None, str | None]] = []
    for record in records:
        request, problem = _prepare(record, columns)
        if problem is not None and on_bad_row == "stop":
            if window:
                yield await _score(window, scorer)
            raise BadRowError(record.where, record.line, problem)
        window.append((record, request, problem))
        if len(window) >= batch_size:
            yield await _score(window, scorer)
            window = []
    if window:
        yield await _score(window, scorer)


def _prepare(record: Record, columns: Columns) -> tuple[ScoreRequest | None, str | None]:
    if record.problem is not None or record.values is None:
        return None, record.problem or "unreadable row"
    try:
        return columns.request(record.values), None
    except RowProblem as exc:
        return None, str(exc)


async def _score(window: list[tuple[Record, ScoreRequest | None, str | None]], scorer: Scorer) -> list[Scored]:
    requests = [request for _, request, _ in window if request is not None]
    results: list[TrustResult] = []
    if requests:
        try:
            results = list(await scorer.ascore_batch(requests))
        except Exception as exc:  # a scorer that raises instead of failing per item: fail open
            logger.warning("tlm-hooks: scoring a batch of %d rows failed: %s", len(requests), exc)
            results = [TrustResult.failed(exc)] * len(requests)
        if len(results) != len(requests):
            wrong = TrustResult.failed(f"the scorer returned {len(results)} results for {len(requests)} rows")
            results = [wrong] * len(requests)
    out: list[Scored] = []
    answers = iter(results)
    for record, request, problem in window:
        if request is None:
            out.append(Scored(record, Outcome.bad_row(record, problem or "unreadable row")))
        else:
            result = next(answers)
            out.append(Scored(record, outcome_of(result), preview(request), request.response, result))
    return out
