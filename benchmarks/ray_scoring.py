"""Ray Data scoring: rows/s of `score_file` (one process) against `score_dataset` on 1, 2 and 4 actors.

    python benchmarks/ray_scoring.py [--rows 400] [--latency 0.2] [--actors 1 2 4] [--concurrency 8]

The judge is a fake OpenAI-compatible server on loopback (``fanout.serve``: its own process, a
thread per connection) that answers every request after ``--latency`` seconds; every run scores
the same JSONL rows with the open engine (preset ``base``) on that judge, each actor (and the
local run) ``--concurrency`` rows at a time. All runs are in this one invocation, on a local Ray
cluster started once (its start-up is not timed; each Ray run's time includes starting its actors
and reading the file). Judge calls are counted at the server. What is printed: rows/s, judge
calls per row, and each run's rows/s as a ratio of ``score_file``'s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fanout import calls, serve  # noqa: E402


def make_rows(path: Path, n: int) -> Path:
    with open(path, "w", encoding="utf-8") as file:
        for i in range(n):
            file.write(
                json.dumps({"id": i, "prompt": f"What is the capital of France? ({i})", "response": "Paris"}) + "\n"
            )
    return path


def local_run(source: Path, judge: str, concurrency: int) -> float:
    from tlm_hooks.datasets import score_file
    from tlm_hooks.datasets.scorer_choice import build_scorer

    scorer = build_scorer("tlm", quality_preset="base", judge=judge, model="fake", max_concurrency=concurrency)
    out = source.with_name("local.scored.jsonl")
    start = time.perf_counter()
    summary = score_file(source, out=out, scorer=scorer, resume=False, batch_size=max(32, concurrency))
    wall = time.perf_counter() - start
    assert summary.scored == summary.rows, summary
    return wall


def ray_run(source: Path, judge: str, actors: int, concurrency: int, rows: int) -> float:
    import ray

    from tlm_hooks.datasets.ray import ScorerSpec, score_dataset

    spec = ScorerSpec("tlm", quality_preset="base", judge=judge, model="fake", max_concurrency=concurrency)
    start = time.perf_counter()
    ds = ray.data.read_json(str(source), lines=True)
    out = score_dataset(ds, scorer=spec, actors=actors, cpus_per_actor=0.25).to_pandas()
    wall = time.perf_counter() - start
    assert sorted(out["id"]) == list(range(rows)) and out["scoring_error"].isna().all(), out["scoring_error"].dropna()[
        :3
    ]
    return wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2, help="the judge's reply delay, seconds")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=int, default=8, help="rows one process/actor scores at once")
    args = parser.parse_args(argv)

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    queue: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(queue, args.latency, False), daemon=True)
    server.start()
    base = queue.get(timeout=30)
    judge = f"{base}/v1"
    import ray
    from ray.data import DataContext

    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = make_rows(Path(tmp) / "rows.jsonl", args.rows)
            results: list[tuple[str, float, float]] = []
            c0 = calls(base)
            wall = local_run(source, judge, args.concurrency)
            results.append(("score_file (1 process)", wall, (calls(base) - c0) / args.rows))
            ray.init(
                num_cpus=max(2, os.cpu_count() or 2),
                include_dashboard=False,
                logging_level="WARNING",
                log_to_driver=False,
            )
            DataContext.get_current().enable_progress_bars = False
            for actors in args.actors:
                c0 = calls(base)
                wall = ray_run(source, judge, actors, args.concurrency, args.rows)
                results.append(
                    (f"ray, {actors} actor{'s' if actors > 1 else ''}", wall, (calls(base) - c0) / args.rows)
                )
    finally:
        if ray.is_initialized():
            ray.shutdown()
        server.terminate()
        server.join()

    baseline = args.rows / results[0][1]
    print(
        f"{args.rows} rows, judge latency {args.latency * 1000:.0f} ms, {args.concurrency} rows at once per "
        f"process/actor, preset base, {os.cpu_count()} CPUs"
    )
    print(f"{'run':<26} {'seconds':>8} {'rows/s':>8} {'calls/row':>9} {'x score_file':>12}")
    for name, wall, per_row in results:
        rate = args.rows / wall
        print(f"{name:<26} {wall:8.1f} {rate:8.2f} {per_row:9.1f} {rate / baseline:12.2f}")


if __name__ == "__main__":
    main()
