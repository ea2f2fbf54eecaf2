"""`score_file`: score a CSV/JSONL file into a new file, streaming, resumable, with a summary."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator, Mapping
from itertools import chain
from pathlib import Path
from typing import Any

from ..progress import Progress, counting_rows
from ..scorers.base import Scorer
from .columns import Columns, preview
from .errors import DatasetError, ResumeError
from .histogram import require_matplotlib, write_histogram
from .loop import OnBadRow, check_loop_args, score_windows
from .rows import Record, RowReader, count_records, detect_format
from .scorer_choice import as_scorer, describe_scorer
from .summary import Summary, Tally
from .sync import run_to_end
from .writer import Codec, PartialOutput, check_output_path, default_output_path

__all__ = ["score_file", "ascore_file", "warm_up"]

_SHOW_BAD_ROWS = 10  # bad rows named on stderr as they are met (all are in the output and the summary)


def score_file(
    path: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    prompt_col: str | None = None,
    response_col: str | None = None,
    messages_col: str | None = None,
    system_col: str | None = None,
    context_col: str | None = None,
    logprobs_col: str | None = None,
    scorer: Scorer | Callable[..., Any] | None = None,
    format: str | None = None,
    encoding: str = "utf-8",
    batch_size: int = 32,
    on_bad_row: OnBadRow = "skip",
    resume: bool = True,
    histogram: str | os.PathLike[str] | None = None,
    lowest: int = 5,
    progress: bool | Progress = False,
    settings: Mapping[str, Any] | None = None,
) -> Summary:
    """Score every row of a CSV or JSONL file and write ``out`` (default ``<name>.scored.<ext>``):
    all input columns plus ``trustworthiness_score``, ``explanation`` and ``scoring_error``, in
    input order. Returns the :class:`Summary`.

    Columns: see :class:`Columns` (``prompt``/``response``, or ``messages``; optional
    ``system``, ``context``, ``logprobs``). ``scorer`` defaults to the open engine
    (``TLMScorer``, preset ``medium``) on the embedded local model; a plain function of a
    ``ScoreRequest`` is accepted too. Rows are read, scored ``batch_size`` at a time with the
    scorer's batch API, and appended to ``out + ".partial"`` (renamed to ``out`` at the end), so
    memory does not grow with the file. A row whose scoring fails gets the error in
    ``scoring_error``; a malformed row is written with the reason (``on_bad_row="skip"``) or
    raises :class:`BadRowError` after saving the rows before it (``"stop"``).

    An interrupted run (Ctrl-C, a killed process) continues where it stopped when called again
    with ``resume=True``: finished rows are kept, a half-written last row is redone. ``resume=False``
    starts over (and replaces ``out``). ``histogram`` writes a PNG of the scores (needs
    matplotlib). ``progress=True`` shows progress on stderr. ``settings`` are extra values that
    must match for a run to be resumed.

    Works inside a running event loop (Jupyter); from async code use :func:`ascore_file`.
    """
    return run_to_end(
        lambda: ascore_file(
            path,
            out=out,
            prompt_col=prompt_col,
            response_col=response_col,
            messages_col=messages_col,
            system_col=system_col,
            context_col=context_col,
            logprobs_col=logprobs_col,
            scorer=scorer,
            format=format,
            encoding=encoding,
            batch_size=batch_size,
            on_bad_row=on_bad_row,
            resume=resume,
            histogram=histogram,
            lowest=lowest,
            progress=progress,
            settings=settings,
        )
    )


async def ascore_file(
    path: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    prompt_col: str | None = None,
    response_col: str | None = None,
    messages_col: str | None = None,
    system_col: str | None = None,
    context_col: str | None = None,
    logprobs_col: str | None = None,
    scorer: Scorer | Callable[..., Any] | None = None,
    format: str | None = None,
    encoding: str = "utf-8",
    batch_size: int = 32,
    on_bad_row: OnBadRow = "skip",
    resume: bool = True,
    histogram: str | os.PathLike[str] | None = None,
    lowest: int = 5,
    progress: bool | Progress = False,
    settings: Mapping[str, Any] | None = None,
) -> Summary:
    """Async form of :func:`score_file`."""
    started = time.monotonic()
    source = Path(path)
    fmt = detect_format(source, format)
    target = Path(out) if out is not None else default_output_path(source)
    check_loop_args(batch_size, on_bad_row)
    if isinstance(lowest, bool) or not isinstance(lowest, int) or lowest < 0:
        raise DatasetError(f"lowest must be an integer >= 0, got {lowest!r}")
    if not source.is_file():
        raise DatasetError(f"no such file: {os.fspath(path)!r}")
    check_output_path(source, target, fmt)
    if histogram is not None:
        require_matplotlib()
    wanted = Columns(prompt_col, response_col, messages_col, system_col, context_col, logprobs_col)
    chosen_scorer = as_scorer(scorer)

    with RowReader(source, fmt, encoding=encoding) as reader:
        columns = wanted.resolve(reader.columns, source.name)
        codec = Codec(fmt, reader.columns)
        run_settings = {
            "input": str(source.resolve()),
            "format": fmt,
            "columns": columns.as_dict(),
            "scorer": describe_scorer(chosen_scorer),
            **dict(settings or {}),
        }
        output = PartialOutput(target, codec, run_settings)
        if resume and output.has_earlier_run():
            output.check_earlier_run()
        elif resume and target.exists():
            raise ResumeError(
                f"{target} already exists (a finished run): pass --restart (resume=False) to score "
                "again and replace it, or choose another --out"
            )
        await warm_up(chosen_scorer)

        tally = Tally(keep_lowest=lowest)
        records: Iterator[Record] = iter(reader)
        if resume and output.has_earlier_run():
            records = _keep_earlier_rows(output, records, columns, tally)
        else:
            output.start_fresh()
        reporter = _reporter(progress, source, fmt, encoding)
        shown_bad = 0
        try:
            if reporter is not None:
                reporter.start(tally.rows)
            with counting_rows(reporter) as counter:  # rows advance the display as they finish
                async for window in score_windows(
                    records, columns, chosen_scorer, batch_size=batch_size, on_bad_row=on_bad_row
                ):
                    failed = bad = 0
                    for item in window:
                        output.append(item.record, item.outcome)
                        tally.add(item.record.line, item.record.where, item.outcome, item.prompt, item.response)
                        bad += item.outcome.is_bad_row
                        failed += item.outcome.score is None and not item.outcome.is_bad_row
                    output.commit()
                    if reporter is not None:
                        for item in window:
                            if item.outcome.is_bad_row and shown_bad < _SHOW_BAD_ROWS:
                                shown_bad += 1
                                more = " (further bad rows are only counted)" if shown_bad == _SHOW_BAD_ROWS else ""
                                reporter.note(f"skipped {item.outcome.error}{more}")
                    counter.settle(len(window), failed=failed, bad=bad)
            output.finish()
        finally:
            output.close()
            if reporter is not None:
                reporter.finish()
    image = write_histogram(tally.summary(source), histogram) if histogram is not None else None
    return tally.summary(source, target, seconds=time.monotonic() - started, histogram_path=image)


def _keep_earlier_rows(
    output: PartialOutput, records: Iterator[Record], columns: Columns, tally: Tally
) -> Iterator[Record]:
    """Walk the earlier run's output next to the input; keep what matches, cut the rest; return
    the input positioned at the first row still to score."""
    kept_offset = 0
    pending: Record | None = None
    backlog = output.read_back()
    for end, data, outcome in backlog:
        record = next(records, None)
        if record is None:
            break  # the output is longer than the input: cut the surplus
        if not output.codec.matches(record, data, outcome):
            pending = record
            break
        prompt = response = ""
        if outcome.score is not None and record.values is not None:
            try:
                request = columns.request(record.values)
            except ValueError:
                pass
            else:
                prompt, response = preview(request), request.response
        tally.add(record.line, record.where, outcome, prompt, response)
        kept_offset = end
    backlog.close()  # closes the file it reads
    tally.resumed = tally.rows
    output.continue_at(kept_offset)
    return chain([pending], records) if pending is not None else records


async def warm_up(scorer: Scorer) -> None:
    """Load a local judge model now, so a missing model fails the run before any row is scored."""
    judge = getattr(scorer, "judge", None)
    load = getattr(judge, "model", None)
    if judge is not None and callable(load) and asyncio.iscoroutinefunction(load):
        await load()


def _reporter(progress: bool | Progress, source: Path, fmt: Any, encoding: str) -> Progress | None:
    if isinstance(progress, Progress):
        if progress.total is None:
            progress.total = count_records(source, fmt, encoding=encoding)
        return progress
    if progress:
        return Progress(f"scoring {source.name}", count_records(source, fmt, encoding=encoding))
    return None
