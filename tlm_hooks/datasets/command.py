"""`tlm-hooks score FILE`: score a CSV/JSONL dataset from the command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, TLMHooksError
from ..options import QUALITY_PRESETS, TASKS
from .errors import BadRowError, DatasetError
from .files import ascore_file
from .loop import ON_BAD_ROW
from .progress import Progress
from .rows import FORMATS, detect_format
from .scorer_choice import DEFAULT_CONCURRENCY, build_scorer, check_logprobs_flag, scorer_flags
from .summary import format_summary
from .writer import default_output_path

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_BAD_ROW", "EXIT_USAGE", "EXIT_FAILED_ROWS", "EXIT_INTERRUPTED"]

EXIT_OK = 0
EXIT_BAD_ROW = 1
EXIT_USAGE = 2
EXIT_FAILED_ROWS = 3
EXIT_INTERRUPTED = 130  # Ctrl-C (143 after SIGTERM)
ENGINES: tuple[str, ...] = ("local", "ray")

EPILOG = """\
scorers:
  tlm            the open engine on a judge model (default): --quality-preset, --task, and
                 --judge local (the embedded model, offline; default) | FILE.gguf | URL of an
                 OpenAI-compatible server (with --model NAME; key: --api-key or $OPENAI_API_KEY);
                 --model NAME alone = a litellm model (pip install 'tlm-hooks[litellm]')
  logprob        the response's own token probabilities, from --logprobs-col (no model calls)
  cleanlab       Cleanlab's TLM service (key: --api-key or $CLEANLAB_TLM_API_KEY; --base-url
                 for a self-hosted one; --model = its base model)
  MODULE:NAME    your own: a Scorer, a Scorer class, or a function of a ScoreRequest returning a
                 float, a TrustResult or a dict (the current directory is importable)

output: FILE's rows in the same format (default FILE.scored.EXT next to FILE) with all its columns
plus trustworthiness_score, explanation and scoring_error. While running it is FILE.scored.EXT.partial,
flushed after every batch; rerunning the same command after Ctrl-C or a crash continues from there.
Rows of the batch being scored when the run stopped had not been saved: they are scored again
(at most --batch-size rows); every row of earlier batches is kept.

exit status:
  0    every row was scored (malformed rows skipped with --on-bad-row skip are in the output
       with the reason, and counted in the summary)
  1    stopped at a malformed row (--on-bad-row stop); the rows before it are saved: fix the row
       and rerun the same command to continue
  2    bad arguments, unreadable file, missing columns, an output in the way, or a scorer, model
       or package that is not available (found before scoring); or a file error while writing
  3    the run finished and the output is written, but some rows failed to score (their
       scoring_error says why: a judge timeout, a refused request...)
  130  interrupted (Ctrl-C; 143 for SIGTERM): finished rows are saved, rerun to continue
"""


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``score`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="tlm-hooks score",
        description="Score every prompt/response row of a CSV or JSONL file; write the scores to a new file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="a .csv or .jsonl file (one JSON object per line)")
    data = parser.add_argument_group("input")
    data.add_argument(
        "--format",
        choices=(*FORMATS, "parquet"),
        help="the file's format (default: from its suffix; parquet: --engine ray)",
    )
    data.add_argument("--encoding", default="utf-8", help="the file's text encoding (default utf-8)")
    data.add_argument("--prompt-col", metavar="C", help="column with the prompt (default: prompt)")
    data.add_argument("--response-col", metavar="C", help="column with the response to score (default: response)")
    data.add_argument(
        "--messages-col",
        metavar="C",
        help="column with OpenAI-style messages instead of a prompt (a JSON list; default: messages when "
        "there is no prompt column). Without a response column, the last assistant message is the response",
    )
    data.add_argument("--system-col", metavar="C", help="column with a system prompt to put first (optional)")
    data.add_argument(
        "--context-col", metavar="C", help="column with retrieved context the answer relies on (optional)"
    )
    data.add_argument("--logprobs-col", metavar="C", help="column with the response's token logprobs (OpenAI entries)")
    out = parser.add_argument_group("output")
    out.add_argument("-o", "--out", metavar="OUT", help="output file (default: FILE.scored.EXT next to FILE)")
    out.add_argument("--histogram", metavar="PNG", help="also draw a histogram of the scores (needs matplotlib)")
    out.add_argument("--lowest", type=_count, default=5, metavar="N", help="lowest-scoring rows to list (default 5)")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress display (or TLM_HOOKS_PROGRESS=0)")
    run = parser.add_argument_group("scoring")
    run.add_argument("-s", "--scorer", default="tlm", metavar="S", help="tlm (default), logprob, cleanlab or MODULE:NAME")
    run.add_argument("-p", "--quality-preset", choices=QUALITY_PRESETS, help="tlm/cleanlab preset (default medium)")
    run.add_argument("-t", "--task", choices=TASKS, help="tlm/cleanlab task (default: default)")
    run.add_argument("-j", "--judge", metavar="J", help="tlm's judge: local (default), a .gguf file, or an http(s):// URL")
    run.add_argument("-m", "--model", metavar="NAME", help="judge model name (see below)")
    run.add_argument("--api-key", metavar="KEY", help="key for a URL judge or Cleanlab (prefer the environment)")
    run.add_argument("--base-url", metavar="URL", help="Cleanlab service URL (self-hosted)")
    run.add_argument("--threads", type=_positive_int, metavar="N", help="CPU threads for a local model")
    run.add_argument(
        "--calibration",
        metavar="PROFILE",
        help="tlm only: a profile from `tlm-hooks calibrate`; scores are then calibrated (the raw one in log)",
    )
    run.add_argument(
        "--max-concurrency",
        type=_positive_int,
        metavar="N",
        help=f"rows scored at once (default {DEFAULT_CONCURRENCY}; for MODULE:NAME, the scorer's own limit)",
    )
    run.add_argument("--batch-size", type=_positive_int, default=32, metavar="N", help="rows per saved batch (32)")
    run.add_argument(
        "--on-bad-row", choices=ON_BAD_ROW, default="skip", help="a malformed row: skip it (default) or stop"
    )
    cached = run.add_mutually_exclusive_group()
    cached.add_argument(
        "--cache",
        metavar="PATH",
        help="tlm: keep scores in this SQLite file; a re-run (or a server with the same --cache) scores a row "
        "it already scored without judge calls (the file holds scores and explanations)",
    )
    cached.add_argument("--no-cache", action="store_true", help="tlm: no score cache, not even in memory")
    again = run.add_mutually_exclusive_group()
    again.add_argument(
        "--resume", dest="resume", action="store_true", default=True, help="continue an interrupted run (default)"
    )
    again.add_argument(
        "--restart", dest="resume", action="store_false", help="score from the start, replacing earlier output"
    )
    engine = parser.add_argument_group("engine")
    engine.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: this process, resumable (default); ray: a Ray cluster (CSV/JSONL/Parquet, local or remote "
        "paths; pip install 'tlm-hooks[ray]')",
    )
    engine.add_argument(
        "--address", metavar="A", help="--engine ray: the cluster (auto, ray://HOST:PORT; default: start one here)"
    )
    engine.add_argument("--actors", type=_positive_int, metavar="N", help="--engine ray: scoring actors (default 2)")
    engine.add_argument(
        "--actor-cpus",
        type=_positive_float,
        metavar="C",
        help="--engine ray: CPUs each actor reserves (default 1 for a local judge model, 0.25 for a remote judge)",
    )
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tlm-hooks score``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.engine == "ray":
        from .ray_command import run  # Ray is imported only here

        args.actors = args.actors or 2
        return run(args)
    ray_only = [
        f for f, v in (("--address", args.address), ("--actors", args.actors), ("--actor-cpus", args.actor_cpus)) if v
    ]
    if ray_only or args.format == "parquet":
        shown = ", ".join(ray_only) or "--format parquet"
        return _fail(DatasetError(f"{shown} applies to --engine ray; add --engine ray (pip install 'tlm-hooks[ray]')"))
    source = Path(args.file)
    try:
        target = Path(args.out) if args.out else default_output_path(source)
        detect_format(source, args.format)
        flags = scorer_flags(args)
        scorer = build_scorer(flags.pop("kind"), **flags)
        check_logprobs_flag(args)
    except (TLMHooksError, ValueError, OSError, sqlite3.Error) as exc:
        return _fail(exc)
    progress = None if args.quiet else Progress(f"scoring {source.name}")
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if _main_thread() else None
    try:
        summary = asyncio.run(
            ascore_file(
                source,
                out=target,
                prompt_col=args.prompt_col,
                response_col=args.response_col,
                messages_col=args.messages_col,
                system_col=args.system_col,
                context_col=args.context_col,
                logprobs_col=args.logprobs_col,
                scorer=scorer,
                format=args.format,
                encoding=args.encoding,
                batch_size=args.batch_size,
                on_bad_row=args.on_bad_row,
                resume=args.resume,
                histogram=args.histogram,
                lowest=args.lowest,
                progress=progress if progress is not None else False,
            )
        )
    except BadRowError as exc:
        print(
            f"tlm-hooks score: stopped: {exc}\nThe rows before it are saved in {target}.partial; fix the row and "
            "rerun the same command to continue (or use --on-bad-row skip).",
            file=sys.stderr,
        )
        return EXIT_BAD_ROW
    except KeyboardInterrupt as exc:
        done = f"{progress.done:,} rows are" if progress is not None else "finished rows are"
        print(
            f"\ntlm-hooks score: interrupted; {done} saved in {target}.partial. Rerun the same command to continue.",
            file=sys.stderr,
        )
        return 143 if isinstance(exc, _Terminated) else EXIT_INTERRUPTED
    except (TLMHooksError, OSError, ValueError, MissingDependencyError) as exc:
        return _fail(exc)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(format_summary(summary))
    return EXIT_FAILED_ROWS if summary.failed else EXIT_OK


def _fail(exc: BaseException) -> int:
    print(f"tlm-hooks score: {exc}", file=sys.stderr)
    return EXIT_USAGE


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread() and os.name == "posix"
