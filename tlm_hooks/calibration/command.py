"""`tlm-hooks calibrate FILE -o PROFILE`: fit a calibration profile on a labelled CSV/JSONL file."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..datasets.columns import Columns
from ..datasets.errors import MissingColumnsError
from ..datasets.progress import Progress
from ..datasets.rows import FORMATS, RowReader, detect_format
from ..errors import MissingDependencyError, TLMHooksError
from ..options import QUALITY_PRESETS, TASKS
from .errors import CalibrationError, name_rows
from .features import SIGNALS, features_of
from .labels import MIN_EXAMPLES
from .saved_scores import SCORES_SUFFIX

__all__ = ["main", "build_parser", "scores_path", "LABEL_COLUMNS"]

LABEL_COLUMNS = ("label", "correct", "acceptable", "rating")  # looked for, in order, without --label-col
EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130

EPILOG = f"""\
rows: each row needs a label (--label-col; default the first of {", ".join(LABEL_COLUMNS)}):
true/false, yes/no, 1/0, a 0-1 rating or any numeric rating (normalised min-max, or --label-scale).
A row with scores already (columns {", ".join(SIGNALS)} and/or trustworthiness_score) is used as it
is; a row without them is scored first with --scorer (prompt/response columns as in tlm-hooks score).

saved scores: each row scored here is appended to PROFILE.scores.jsonl (or --scores FILE) as its
batch finishes, and kept. Rerunning the command after Ctrl-C, a crash or a judge outage reuses
those rows and scores only the rest; rerunning with other labels or fitting options re-fits with
no model call. A row is reused when its name and its prompt/response are unchanged; scores made by
another scorer are refused (--restart scores every row again and starts the file over).

output: the profile (JSON), a report on stdout (AUROC, ECE, Brier before/after, cross-validated;
thresholds for precision 0.8/0.9/0.95), and PROFILE.reliability.png / PROFILE.histogram.png.
Exit status: 0 done, 2 bad arguments/file/labels, a missing package or rows that failed to score (the
others are saved), 130 interrupted (the rows scored so far are saved: rerun to continue).
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``calibrate`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="tlm-hooks calibrate",
        description="Fit a calibration profile (signal weights + a map to P(acceptable)) on labelled rows.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="a labelled .csv or .jsonl file")
    parser.add_argument("-o", "--out", metavar="PROFILE", required=True, help="where to write the profile (JSON)")
    data = parser.add_argument_group("input")
    data.add_argument("--format", choices=FORMATS, help="the file's format (default: from its suffix)")
    data.add_argument("--encoding", default="utf-8", help="the file's text encoding (default utf-8)")
    data.add_argument("--label-col", metavar="C", help=f"column with the label (default: {'/'.join(LABEL_COLUMNS)})")
    data.add_argument("--label-scale", nargs=2, type=float, metavar=("LOW", "HIGH"), help="a rating's range, e.g. 1 5")
    data.add_argument(
        "--min-examples", type=int, default=MIN_EXAMPLES, metavar="N", help=f"rows needed ({MIN_EXAMPLES})"
    )
    for role, text in (("prompt", "the prompt"), ("response", "the response"), ("messages", "OpenAI-style messages"),
                       ("system", "a system prompt"), ("context", "retrieved context"), ("logprobs", "token logprobs")):  # fmt: skip
        data.add_argument(f"--{role}-col", metavar="C", help=f"column with {text} (rows without scores)")
    out = parser.add_argument_group("output")
    out.add_argument("--no-plots", action="store_true", help="do not write the PNG pictures")
    out.add_argument(
        "--scores", metavar="FILE", help=f"where rows scored here are saved and reused (default PROFILE{SCORES_SUFFIX})"
    )
    out.add_argument("--no-evidence", action="store_true", help="leave the labelled rows out of the profile")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress display (or TLM_HOOKS_PROGRESS=0)")
    run = parser.add_argument_group("scoring (rows without scores) and what the profile is valid for")
    run.add_argument("-s", "--scorer", default="tlm", metavar="S", help="tlm (default), logprob, cleanlab or MODULE:NAME")
    run.add_argument("-p", "--quality-preset", choices=QUALITY_PRESETS, help="the engine's preset (default medium)")
    run.add_argument("-t", "--task", choices=TASKS, help="the engine's task (default: default)")
    run.add_argument("-j", "--judge", metavar="J", help="local (default), a .gguf file, or an http(s):// URL")
    run.add_argument("-m", "--model", metavar="NAME", help="judge model name")
    run.add_argument("--api-key", metavar="KEY", help="key for a URL judge or Cleanlab (prefer the environment)")
    run.add_argument("--threads", type=int, metavar="N", help="CPU threads for a local model")
    run.add_argument("--max-concurrency", type=int, default=8, metavar="N", help="rows scored at once (8)")
    again = run.add_mutually_exclusive_group()
    again.add_argument(
        "--resume", dest="resume", action="store_true", default=True, help="reuse the saved scores (default)"
    )
    again.add_argument(
        "--restart", dest="resume", action="store_false", help="score every row again, replacing the saved scores"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tlm-hooks calibrate``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        saved = scores_path(args)
        kept = (
            f"; the rows scored so far are saved in {saved}: rerun the same command to score only the rest"
            if saved.is_file()
            else ""
        )
        print(f"\ntlm-hooks calibrate: interrupted; no profile written{kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (TLMHooksError, OSError, ValueError, MissingDependencyError) as exc:
        print(f"tlm-hooks calibrate: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    from .fit import calibrate
    from .fitting import require_fitting
    from .report import format_report

    require_fitting()
    if not args.no_plots and importlib.util.find_spec("matplotlib") is None:
        raise MissingDependencyError(
            "the reliability diagram and histogram need matplotlib: pip install 'tlm-hooks[datasets]', or pass --no-plots"
        )
    source = Path(args.file)
    rows, labels, names = _read(source, args)
    columns = Columns(args.prompt_col, args.response_col, args.messages_col, args.system_col, args.context_col,
                      args.logprobs_col)  # fmt: skip
    unscored = sum(features_of(row).empty for row in rows)
    scorer = _scorer(args) if unscored else None
    progress = None if args.quiet or not unscored else Progress(f"scoring {source.name}", unscored)
    saved = scores_path(args)
    unused = [flag for flag, given in (("--scores", args.scores), ("--restart", not args.resume)) if given]
    if unused and not unscored:
        print(f"tlm-hooks calibrate: every row has scores, so {' and '.join(unused)} did nothing", file=sys.stderr)
    if unscored and saved.resolve() in (source.resolve(), Path(args.out).resolve()):
        raise CalibrationError(f"the scores file {saved} is the input or the profile: choose another --scores")
    profile = calibrate(
        rows, labels, scorer=scorer, judge=args.model or args.judge, quality_preset=args.quality_preset,
        task=args.task, names=names, columns=columns, min_examples=args.min_examples,
        label_scale=tuple(args.label_scale) if args.label_scale else None, source=source.name,
        progress=progress if progress is not None else False, scores_path=saved if unscored else None,
        resume=args.resume,
    )  # fmt: skip
    target = profile.save(args.out, evidence=not args.no_evidence)
    print(format_report(profile))
    print(f"\nprofile -> {target}")
    if unscored:
        print(f"scores  -> {saved} (kept: rerun with other options to re-fit without scoring again)")
    if not args.no_plots:
        from .plots import write_histogram, write_reliability

        stem = target.with_suffix("")
        for writer, suffix in ((write_reliability, ".reliability.png"), (write_histogram, ".histogram.png")):
            print(f"picture -> {writer(profile, str(stem) + suffix)}")
    return EXIT_OK


def scores_path(args: argparse.Namespace) -> Path:
    """Where the rows scored by this run are saved: ``--scores``, or next to the profile."""
    return Path(args.scores) if args.scores else Path(str(args.out) + SCORES_SUFFIX)


def _read(source: Path, args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[Any], list[str]]:
    fmt = detect_format(source, args.format)
    if not source.is_file():
        raise CalibrationError(f"no such file: {str(source)!r}")
    rows, labels, names, broken = [], [], [], []
    with RowReader(source, fmt, encoding=args.encoding) as reader:
        label_col = args.label_col or next((c for c in LABEL_COLUMNS if c in reader.columns), None)
        if label_col is None or label_col not in reader.columns:
            shown = ", ".join(map(repr, reader.columns)) or "(none)"
            wanted = args.label_col or "/".join(LABEL_COLUMNS)
            raise MissingColumnsError(
                f"{source.name} has no {wanted!r} label column; its columns are: {shown}. Name it with --label-col",
                missing=[wanted], available=reader.columns,
            )  # fmt: skip
        for record in reader:
            if record.problem is not None or record.values is None:
                broken.append(f"{record.where} ({record.problem})")
                continue
            rows.append(record.values)
            labels.append(record.values.get(label_col))
            names.append(record.where)
    if broken:
        raise CalibrationError(f"{len(broken)} row(s) of {source.name} cannot be read: {name_rows(broken)}")
    return rows, labels, names


def _scorer(args: argparse.Namespace) -> Any:
    from ..datasets.scorer_choice import build_scorer, scorer_flags

    flags = scorer_flags(args)
    return build_scorer(flags.pop("kind"), **flags)
