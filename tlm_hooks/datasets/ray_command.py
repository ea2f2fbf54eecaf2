"""`tlm-hooks score INPUT --engine ray`: score a CSV/JSONL/Parquet dataset on a Ray cluster.

The rows are read and scored by Ray Data (:func:`tlm_hooks.datasets.ray.score_dataset`); the
scored rows stream back to this process in input order, where they are written to one output file,
counted for the progress line and summarised like the local engine's run. Imported only for
``--engine ray``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import TLMHooksError
from .columns import Columns, preview
from .errors import DatasetError
from .histogram import require_matplotlib, write_histogram
from .progress import Progress
from .ray import ScorerSpec, require_ray, score_dataset
from .ray_io import OutputFile, count_rows, detect_ray_format, is_uri, output_format, read_dataset
from .scorer_choice import check_logprobs_flag, scorer_flags
from .summary import Tally, format_summary
from .writer import ERROR_COLUMN, EXPLANATION_COLUMN, SCORE_COLUMN, default_output_path

__all__ = ["run"]

EXIT_OK, EXIT_USAGE, EXIT_FAILED_ROWS, EXIT_INTERRUPTED = 0, 2, 3, 130


def run(args: argparse.Namespace) -> int:
    """Score ``args.file`` on Ray as the parsed ``tlm-hooks score`` arguments say; the exit status."""
    try:
        source, fmt, target, out_fmt, spec = _check(args)
        require_ray()
    except (TLMHooksError, ValueError) as exc:
        return _fail(exc)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the machine
    import ray
    from ray.data import DataContext

    started_here = not ray.is_initialized()
    try:
        if started_here:
            try:
                ray.init(address=args.address, include_dashboard=False, logging_level=logging.WARNING)
            except Exception as exc:  # Ray raises plain exceptions for a cluster it cannot start or reach
                where = f"the Ray cluster at {args.address}" if args.address else "a local Ray cluster"
                return _fail(DatasetError(f"cannot start or reach {where}: {exc}"))
        context = DataContext.get_current()
        context.execution_options.preserve_order = True  # the output is in input order, like the local engine's
        context.enable_progress_bars = False  # our progress line instead of Ray's bars
        return _score(args, source, fmt, target, out_fmt, spec)
    finally:
        if started_here:
            ray.shutdown()


def _check(args: argparse.Namespace) -> tuple[str, Any, Path, Any, ScorerSpec]:
    """Everything that can be wrong with the arguments, found before Ray starts."""
    refused = [
        flag
        for flag, given in (
            ("--on-bad-row stop", args.on_bad_row == "stop"),
            (f"--encoding {args.encoding}", args.encoding.lower().replace("_", "-") not in ("utf-8", "utf8")),
        )
        if given
    ]
    if refused:
        raise DatasetError(
            f"{', '.join(refused)} cannot be used with --engine ray: its rows are read by Ray Data (UTF-8) and "
            "a malformed row gets its reason in scoring_error"
        )
    if args.cache is not None and args.address is not None:
        raise DatasetError(
            "--cache FILE cannot be used with --address: the actors of a cluster started elsewhere may run on other "
            "machines, each with its own file at that path; leave out --address to score on a cluster started here "
            "(its actors share the file), or keep the default in-memory cache"
        )
    source = args.file
    fmt = detect_ray_format(source, args.format)
    if not is_uri(source) and not os.path.exists(source.removeprefix("file://")):
        raise DatasetError(f"no such file or folder: {source!r}")
    if args.out:
        target = Path(args.out)
    elif is_uri(source) or os.path.isdir(source):
        raise DatasetError(f"give the output file with --out: {source!r} is not one local file to write next to")
    else:
        target = default_output_path(source)
    out_fmt = output_format(target)
    if target.exists() and args.resume:
        raise DatasetError(f"{target} already exists: pass --restart to replace it, or choose another --out")
    if target.is_dir() or not target.parent.is_dir():
        raise DatasetError(f"cannot write {target}: give a file in an existing directory with --out")
    if not is_uri(source) and os.path.isfile(source) and target.resolve() == Path(source).resolve():
        raise DatasetError(f"the output {target} is the input file: choose another --out")
    if args.histogram is not None:
        require_matplotlib()
    check_logprobs_flag(args)
    spec = ScorerSpec(**scorer_flags(args)).portable()  # a bad --calibration profile fails before Ray starts
    return source, fmt, target, out_fmt, spec


def _score(args: argparse.Namespace, source: str, fmt: Any, target: Path, out_fmt: Any, spec: ScorerSpec) -> int:
    started = time.monotonic()
    label = Path(source.rstrip("/")).name
    try:
        ds = read_dataset(source, fmt)
        scored = score_dataset(
            ds,
            scorer=spec,
            prompt_col=args.prompt_col,
            response_col=args.response_col,
            messages_col=args.messages_col,
            system_col=args.system_col,
            context_col=args.context_col,
            logprobs_col=args.logprobs_col,
            actors=args.actors,
            cpus_per_actor=args.actor_cpus,
            batch_size=args.batch_size,
        )
        columns = _columns_of(args, ds)
        total = count_rows(source, fmt)
    except (TLMHooksError, ValueError, OSError) as exc:
        return _fail(exc)
    progress = None if args.quiet else Progress(f"scoring {label} on Ray ({args.actors} actors)", total)
    tally = Tally(keep_lowest=args.lowest)
    output = OutputFile(target, out_fmt)
    try:
        if progress is not None:
            progress.start()
        for table in scored.iter_batches(batch_format="pyarrow", batch_size=None):
            table, failed, bad = _count(table, tally, columns)
            output.append(table)
            if progress is not None:
                progress.advance(table.num_rows, failed=failed, bad=bad)
        output.finish()
    except KeyboardInterrupt:
        output.discard()
        print(
            "\ntlm-hooks score: interrupted; --engine ray keeps no partial output: rerun to score again.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BaseException:
        output.discard()
        raise
    finally:
        if progress is not None:
            progress.finish()
    image = write_histogram(tally.summary(Path(label)), args.histogram) if args.histogram is not None else None
    summary = tally.summary(Path(label), target, seconds=time.monotonic() - started, histogram_path=image)
    print(format_summary(summary))
    return EXIT_FAILED_ROWS if summary.failed else EXIT_OK


def _columns_of(args: argparse.Namespace, ds: Any) -> Columns:
    wanted = Columns(
        args.prompt_col, args.response_col, args.messages_col, args.system_col, args.context_col, args.logprobs_col
    )
    return wanted.resolve([str(c) for c in ds.columns() or []], "the Dataset")


def _count(table: Any, tally: Tally, columns: Columns) -> tuple[Any, int, int]:
    """Count a batch of scored rows; name malformed rows by their position (1-based) in the error."""
    import pyarrow as pa

    from .writer import Outcome

    scores = table.column(SCORE_COLUMN).to_pylist()
    explanations = table.column(EXPLANATION_COLUMN).to_pylist()
    errors = table.column(ERROR_COLUMN).to_pylist()
    failed = bad = 0
    placed = False
    for i, (score, explanation, error) in enumerate(zip(scores, explanations, errors, strict=True)):
        row = tally.rows + 1
        if error is not None and error.startswith("bad row: "):
            error = errors[i] = f"bad row (row {row}): {error[len('bad row: ') :]}"
            placed = True
        outcome = Outcome(score, explanation, error)
        prompt = response = ""
        if score is not None and tally.would_keep(score):
            try:
                request = columns.request(table.slice(i, 1).to_pylist()[0])
                prompt, response = preview(request), request.response
            except ValueError:
                pass
        tally.add(row, f"row {row}", outcome, prompt, response)
        bad += outcome.is_bad_row
        failed += score is None and not outcome.is_bad_row
    if placed:
        at = table.schema.get_field_index(ERROR_COLUMN)
        table = table.set_column(at, ERROR_COLUMN, pa.array(errors, pa.string()))
    return table, failed, bad


def _fail(exc: BaseException) -> int:
    print(f"tlm-hooks score: {exc}", file=sys.stderr)
    return EXIT_USAGE
