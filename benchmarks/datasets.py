"""Dataset scoring: rows/s and peak memory of `score_file` (streaming) against loading everything first.

    python benchmarks/datasets.py [--rows 1000 10000] [--local 100 --preset base]

Each measurement runs in its own subprocess, so its peak RSS (``ru_maxrss``) is its own; a second
subprocess per case measures the peak of Python allocations during scoring (``tracemalloc``,
which slows the run, so rows/s come from the first). Methods, all with the same fake fast scorer
(an async scorer that returns at once, so what is measured is the pipeline, not a model):

- ``streaming``: ``tlm_hooks.datasets.score_file`` (read a window, score it, append, flush);
- ``naive-list``: what the reference notebooks do: read all rows into a list, score them all in
  one ``ascore_batch``, then write every row;
- ``pandas``: ``pd.read_json(lines=True)`` → ``score_dataframe`` → ``to_json(lines=True)``.

``--local N`` also scores N answers of ``benchmarks/qa/answers.jsonl`` (messages + response) with
the open engine on the embedded model (``--preset``), through ``score_file``, and reports rows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
METHODS = ("streaming", "naive-list", "pandas")
LOCAL_DETAIL: dict[str, Any] = {}  # the embedded-model run's summary, reported with its timing
WORDS = "the a planet star moon orbit light year mass gas rock ring comet sun water ice dust core field wind".split()


def make_dataset(path: Path, rows: int, seed: int = 0) -> Path:
    """JSONL rows like a logged QA set: id, prompt (~150 chars), response (~300 chars), a tag."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as file:
        for i in range(rows):
            prompt = " ".join(rng.choice(WORDS) for _ in range(30)) + "?"
            response = " ".join(rng.choice(WORDS) for _ in range(60)) + "."
            file.write(json.dumps({"id": i, "prompt": prompt, "response": response, "tag": f"t{i % 7}"}) + "\n")
    return path


def fake_scorer() -> Any:
    from tlm_hooks.scorers import BaseScorer
    from tlm_hooks.types import TrustResult

    class Instant(BaseScorer):
        """Scores at once: a hash of the response, with a short explanation."""

        max_concurrency = 32

        async def ascore(self, request: Any) -> TrustResult:
            return TrustResult((zlib.crc32(request.response.encode()) % 1000) / 1000, explanation="instant")

    return Instant()


# -- the methods (run in a worker process) ------------------------------------------------------


def run_streaming(source: Path, out: Path) -> int:
    from tlm_hooks.datasets import score_file

    return score_file(source, out=out, scorer=fake_scorer(), resume=False).rows


def run_naive_list(source: Path, out: Path) -> int:
    from tlm_hooks.types import ScoreRequest

    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    requests = [ScoreRequest(response=r["response"], prompt=r["prompt"]) for r in rows]
    results = asyncio.run(fake_scorer().ascore_batch(requests))
    with open(out, "w", encoding="utf-8") as file:
        for row, result in zip(rows, results, strict=False):
            row.update(trustworthiness_score=result.trustworthiness_score, explanation=result.explanation)
            file.write(json.dumps(row) + "\n")
    return len(rows)


def run_pandas(source: Path, out: Path) -> int:
    import pandas as pd

    from tlm_hooks.datasets import score_dataframe

    frame = pd.read_json(source, lines=True)
    scored = score_dataframe(frame, scorer=fake_scorer())
    scored.to_json(out, orient="records", lines=True)
    return len(scored)


def run_local(source: Path, out: Path, preset: str) -> int:
    from tlm_hooks import TLMScorer
    from tlm_hooks.datasets import score_file

    scorer = TLMScorer(preset, options={"log": ["explanation"]})
    summary = score_file(source, out=out, scorer=scorer, messages_col="messages", response_col="response", resume=False)
    LOCAL_DETAIL.update(failed=summary.failed, mean_score=summary.mean_score, bands=summary.bands)
    return summary.rows


def worker(method: str, source: Path, out: Path, trace: bool, preset: str) -> dict[str, Any]:
    import tlm_hooks.datasets  # noqa: F401  (imports are not part of the measurement)

    if method == "pandas":
        import pandas  # noqa: F401
    if method == "local":
        from tlm_hooks.local import get_default_model

        get_default_model()  # loading the model is not part of the rate
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    if method == "streaming":
        rows = run_streaming(source, out)
    elif method == "naive-list":
        rows = run_naive_list(source, out)
    elif method == "pandas":
        rows = run_pandas(source, out)
    else:
        rows = run_local(source, out, preset)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": rows,
        "seconds": seconds,
        "rss_kb": rss,
        "rss_before_kb": rss_before,
        "traced_peak": peak,
        **LOCAL_DETAIL,
    }


def measure(method: str, source: Path, out: Path, *, trace: bool, preset: str = "base") -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", method, str(source), str(out), "--preset", preset]
    if trace:
        command.append("--trace")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{method} on {source.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mb(kb_or_bytes: float, unit: str = "kb") -> float:
    return kb_or_bytes / 1024 if unit == "kb" else kb_or_bytes / 1024 / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000], help="dataset sizes (1000 10000)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--local", type=int, default=0, metavar="N", help="also score N QA answers with the embedded model"
    )
    parser.add_argument("--preset", default="base", help="engine preset for --local (base)")
    parser.add_argument("--worker", nargs=3, metavar=("METHOD", "SOURCE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        method, source, out = args.worker
        print(json.dumps(worker(method, Path(source), Path(out), args.trace, args.preset)))
        return 0
    # find_spec, not import: a forked worker starts with this process's peak RSS as its own (Linux
    # keeps ru_maxrss across exec), so this process stays small
    if "pandas" in args.methods and importlib.util.find_spec("pandas") is None:
        args.methods.remove("pandas")
        print("pandas is not installed: its method is skipped", file=sys.stderr)

    results: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in args.rows:
            source = make_dataset(Path(folder) / f"data_{size}.jsonl", size)
            print(f"{size:,} rows, {source.stat().st_size / 1e6:.1f} MB of JSONL", file=sys.stderr)
            for method in args.methods:
                out = Path(folder) / f"out_{method}_{size}.jsonl"
                timed = measure(method, source, out, trace=False)
                traced = measure(method, source, out, trace=True)
                results[method, size] = {**timed, "traced_peak": traced["traced_peak"]}
                print(f"  {method}: {timed['rows'] / timed['seconds']:,.0f} rows/s", file=sys.stderr)
        local = None
        if args.local:
            qa = Path(folder) / "qa.jsonl"
            with open(HERE / "qa" / "answers.jsonl", encoding="utf-8") as file, open(qa, "w", encoding="utf-8") as dst:
                for line in file.readlines()[: args.local]:
                    row = json.loads(line)
                    dst.write(
                        json.dumps({"id": row["id"], "messages": row["messages"], "response": row["response"]}) + "\n"
                    )
            print(f"embedded model, preset {args.preset}, {args.local} rows...", file=sys.stderr)
            local = measure("local", qa, Path(folder) / "qa.scored.jsonl", trace=False, preset=args.preset)

    print(
        "\n| method | rows | rows/s | peak RSS (MB) | RSS growth while scoring (MB) | peak traced Python memory (MB) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for (method, size), r in results.items():
        growth = _mb(max(0, r["rss_kb"] - r["rss_before_kb"]))
        print(
            f"| {method} | {size:,} | {r['rows'] / r['seconds']:,.0f} | {_mb(r['rss_kb']):.1f} | {growth:.1f} "
            f"| {_mb(r['traced_peak'], 'bytes'):.2f} |"
        )
    sizes = sorted(args.rows)
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        print(f"\nmemory ratio {large:,} rows / {small:,} rows (traced peak; 1.0 = flat):")
        for method in args.methods:
            ratio = results[method, large]["traced_peak"] / results[method, small]["traced_peak"]
            print(f"  {method}: {ratio:.2f}x")
        base = results["streaming", large]
        for method in args.methods:
            if method == "streaming":
                continue
            other = results[method, large]
            print(
                f"at {large:,} rows, {method} vs streaming: traced peak {other['traced_peak'] / base['traced_peak']:.1f}x, "
                f"rows/s {(other['rows'] / other['seconds']) / (base['rows'] / base['seconds']):.2f}x"
            )
    if local is not None:
        print(
            f"\nembedded model (preset {args.preset}): {local['rows']} rows in {local['seconds']:.0f} s = "
            f"{local['rows'] / local['seconds']:.2f} rows/s; peak RSS {_mb(local['rss_kb']):.0f} MB; "
            f"{local['failed']} failed; mean score {local['mean_score']:.3f}; bands {local['bands']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
