"""Score the labelled rows that have no scores yet, with a given scorer (components kept)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..datasets.columns import Columns, RowProblem
from ..progress import Progress, counting_rows
from ..scorers.base import Scorer
from ..types import ScoreRequest, TrustResult
from .errors import CalibrationError, name_rows

__all__ = ["request_of", "ascore_rows", "judge_name", "describe"]

BATCH = 16  # rows per batch between progress updates


def request_of(row: Any, columns: Columns | None = None) -> ScoreRequest:
    """The request that scores ``row``: a :class:`ScoreRequest`, or a mapping read with the
    ``tlm-hooks score`` column rules (``prompt``/``response`` or ``messages``...)."""
    if isinstance(row, ScoreRequest):
        return row
    if not isinstance(row, Mapping):
        raise RowProblem(f"a {type(row).__name__} has no score and is no prompt/response row")
    chosen = (columns or Columns()).resolve(list(row), "the row")
    return chosen.request(row)


async def ascore_rows(
    requests: Sequence[ScoreRequest], names: Sequence[str], scorer: Scorer, *, progress: bool | Progress = False
) -> list[TrustResult]:
    """Score ``requests`` in batches with ``scorer.ascore_batch``; a row that fails to score is
    an error naming it (a calibration must not silently lose rows)."""
    reporter = progress if isinstance(progress, Progress) else Progress("scoring", len(requests)) if progress else None
    results: list[TrustResult] = []
    if reporter is not None:
        reporter.start()
    try:
        with counting_rows(reporter) as counter:  # rows advance the display as they finish
            for start in range(0, len(requests), BATCH):
                batch = list(requests[start : start + BATCH])
                done = list(await scorer.ascore_batch(batch))
                results.extend(done)
                counter.settle(len(batch), failed=sum(not r.ok for r in done))
    finally:
        if reporter is not None:
            reporter.finish()
    failed = [f"{names[i]} ({r.error})" for i, r in enumerate(results) if not r.ok]
    if failed:
        raise CalibrationError(f"{len(failed)} row(s) failed to score: {name_rows(failed)}")
    return results


def judge_name(scorer: Any) -> str | None:
    """The judge model a scorer uses, when it says (an explicit judge or ``options.model``)."""
    options = getattr(getattr(scorer, "tlm_options", None), "options", None) or {}
    if options.get("model"):
        return str(options["model"])
    judge = getattr(scorer, "judge", None)
    name = getattr(judge, "name", None)
    return str(name) if name else None


def describe(scorer: Any) -> dict[str, str | None]:
    """What a scorer says about itself for a profile's ``valid_for``."""
    from ..datasets.scorer_choice import describe_scorer

    options = getattr(scorer, "tlm_options", None)
    return {
        "judge": judge_name(scorer),
        "quality_preset": getattr(options, "quality_preset", None),
        "task": getattr(options, "task", None),
        "scorer": describe_scorer(scorer) if isinstance(scorer, Scorer) else None,
    }
