"""The score cache's saving: judge calls for a dataset with 30 % repeated (prompt, response) pairs,
cache off vs on, counted at a fake judge on loopback, in the same run.

    PYTHONPATH=. python benchmarks/cache.py [--rows 200] [--duplicates 0.3] [--preset medium]

With the cache on, a repeated pair is answered from the cache, so the judge should see about
``duplicates`` fewer requests. A second pass over the same rows (a re-run) should cost none.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the loopback judge of the tests

from engine.judge_server import judge_server  # noqa: E402

from tlm_hooks import ScoreRequest, TLMScorer  # noqa: E402
from tlm_hooks.llm import OpenAICompatibleBackend, RetryPolicy  # noqa: E402
from tlm_hooks.scorers.cache import MemoryCache  # noqa: E402


def dataset(rows: int, duplicates: float, seed: int = 0) -> list[ScoreRequest]:
    """``rows`` requests of which a ``duplicates`` share repeat an earlier (prompt, response) pair."""
    rng = random.Random(seed)
    distinct = rows - round(rows * duplicates)
    pairs = [ScoreRequest(prompt=f"What is {i} + {i + 1}?", response=str(2 * i + 1)) for i in range(distinct)]
    repeats = [rng.choice(pairs) for _ in range(rows - distinct)]
    items = pairs + repeats
    rng.shuffle(items)
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--duplicates", type=float, default=0.3)
    parser.add_argument("--preset", default="medium")
    args = parser.parse_args()
    items = dataset(args.rows, args.duplicates)
    with judge_server(refuse_n=False, delay=0.01) as judge:
        backend = OpenAICompatibleBackend(
            model="judge-model", base_url=judge.url, api_key="k", retry=RetryPolicy(max_retries=0)
        )

        def run(cache: object) -> tuple[int, float]:
            # one row at a time, as a baseline that does not depend on timing
            scorer = TLMScorer(args.preset, judge=backend, cache=cache)
            before, started = len(judge.asked), time.perf_counter()
            for item in items:
                result = scorer.score(item)
                assert result.ok, result.error
            return len(judge.asked) - before, time.perf_counter() - started

        off, off_s = run(False)
        cache = MemoryCache(10_000)
        on, on_s = run(cache)
        rerun, rerun_s = run(cache)
    print(f"rows {args.rows}, repeated pairs {args.duplicates:.0%}, preset {args.preset}")
    print(f"judge calls, cache off : {off:6d}  ({off_s:.2f} s)")
    print(f"judge calls, cache on  : {on:6d}  ({on_s:.2f} s)")
    print(f"judge calls, re-run    : {rerun:6d}  ({rerun_s:.2f} s, same rows, cache kept)")
    print(f"saved with the cache   : {1 - on / off:.1%} of judge calls (expected ~{args.duplicates:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
