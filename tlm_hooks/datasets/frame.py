"""`score_dataframe`: the dataset scorer on a pandas DataFrame (pandas is the caller's; not imported here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..progress import Progress, counting_rows
from ..scorers.base import Scorer
from .columns import Columns
from .errors import DatasetError
from .loop import OnBadRow, check_loop_args, score_windows
from .rows import Record
from .scorer_choice import as_scorer
from .sync import run_to_end
from .writer import ERROR_COLUMN, EXPLANATION_COLUMN, SCORE_COLUMN

__all__ = ["score_dataframe", "ascore_dataframe"]


def score_dataframe(
    df: Any,
    *,
    prompt_col: str | None = None,
    response_col: str | None = None,
    messages_col: str | None = None,
    system_col: str | None = None,
    context_col: str | None = None,
    logprobs_col: str | None = None,
    scorer: Scorer | Callable[..., Any] | None = None,
    batch_size: int = 32,
    on_bad_row: OnBadRow = "skip",
    progress: bool = False,
) -> Any:
    """A copy of ``df`` with ``trustworthiness_score``, ``explanation`` and ``scoring_error``
    columns added (``df`` itself is not changed). Columns and scorer as in
    :func:`~tlm_hooks.datasets.score_file`; a row with a missing or wrong value gets the reason in
    ``scoring_error`` (or raises :class:`BadRowError` with ``on_bad_row="stop"``; ``row N`` is its
    position). Works inside a running event loop (Jupyter); from async code use
    :func:`ascore_dataframe`.
    """
    return run_to_end(
        lambda: ascore_dataframe(
            df,
            prompt_col=prompt_col,
            response_col=response_col,
            messages_col=messages_col,
            system_col=system_col,
            context_col=context_col,
            logprobs_col=logprobs_col,
            scorer=scorer,
            batch_size=batch_size,
            on_bad_row=on_bad_row,
            progress=progress,
        )
    )


async def ascore_dataframe(
    df: Any,
    *,
    prompt_col: str | None = None,
    response_col: str | None = None,
    messages_col: str | None = None,
    system_col: str | None = None,
    context_col: str | None = None,
    logprobs_col: str | None = None,
    scorer: Scorer | Callable[..., Any] | None = None,
    batch_size: int = 32,
    on_bad_row: OnBadRow = "skip",
    progress: bool = False,
) -> Any:
    """Async form of :func:`score_dataframe`."""
    if not (hasattr(df, "columns") and hasattr(df, "iloc") and hasattr(df, "copy")):
        raise DatasetError(f"score_dataframe needs a pandas DataFrame, got {type(df).__name__}")
    check_loop_args(batch_size, on_bad_row)
    available = [str(c) for c in df.columns]
    columns = Columns(prompt_col, response_col, messages_col, system_col, context_col, logprobs_col)
    columns = columns.resolve(available, "the DataFrame")
    chosen = as_scorer(scorer)
    reporter = Progress("scoring DataFrame", len(df)) if progress else None
    scores: list[float | None] = []
    explanations: list[str | None] = []
    errors: list[str | None] = []
    if reporter is not None:
        reporter.start()
    try:
        records = _records(df, batch_size)
        with counting_rows(reporter) as counter:  # rows advance the display as they finish
            async for window in score_windows(
                records, columns, chosen, batch_size=batch_size, on_bad_row=on_bad_row
            ):
                for item in window:
                    scores.append(item.outcome.score)
                    explanations.append(item.outcome.explanation)
                    errors.append(item.outcome.error)
                failed = sum(1 for item in window if item.outcome.score is None and not item.outcome.is_bad_row)
                counter.settle(len(window), failed=failed, bad=sum(item.outcome.is_bad_row for item in window))
    finally:
        if reporter is not None:
            reporter.finish()
    out = df.copy()
    out[SCORE_COLUMN] = [float("nan") if s is None else s for s in scores]
    out[EXPLANATION_COLUMN] = explanations
    out[ERROR_COLUMN] = errors
    return out


def _records(df: Any, chunk: int) -> Iterator[Record]:
    """The frame's rows as records, converted ``chunk`` rows at a time."""
    names = [str(c) for c in df.columns]
    labels = list(df.index)
    for start in range(0, len(df), chunk):
        block = df.iloc[start : start + chunk]
        for offset, row in enumerate(block.itertuples(index=False, name=None)):
            position = start + offset
            label = labels[position]
            where = f"row {position}" if str(label) == str(position) else f"row {position} (index {label!r})"
            yield Record(position, dict(zip(names, row, strict=False)), label=where)
