"""n>1 choices decoded side by side on the embedded model, against one call per choice.

    python benchmarks/choices.py [--threads 1,2] [--answers 12] [--repeats 3]

Two measurements, each with its baseline in the same run and the two interleaved (so both see the
same machine):

1. ``LocalModel.chat(n=4)`` against four ``chat(n=1)`` calls: seconds per answer of 48 tokens at
   most (temperature 0.7), best of ``--repeats``.
2. A ``medium`` score (2 reflections, 4 consistency samples) with ``LocalBackend`` on the model as
   it is (samples in one call) against the same model offered as one choice per call (the
   baseline: 4 sample calls), on the first ``--answers`` answers of ``qa/answers.jsonl``, taken
   in turn (A, B, A, B, ...): mean seconds per score.

Each ``--threads`` setting loads its own model. Prints a table per setting and the ratio
baseline / side by side (above 1: side by side is faster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
STORY = [{"role": "user", "content": "Write a short story about a cat who learns to sail."}]


class OneChoicePerCall:
    """The model offered without its side-by-side choices: `LocalBackend` asks once per answer."""

    max_choices = 1

    def __init__(self, model: Any) -> None:
        self._model = model
        self.name = model.name

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        return await self._model.achat(messages, **kwargs)  # type: ignore[no-any-return]


def time_chat(model: Any, repeats: int) -> tuple[float, float]:
    """Best seconds per answer: (four answers in one call, four calls of one answer)."""
    together, apart = [], []
    for r in range(repeats):
        start = time.perf_counter()
        reply = model.chat(STORY, n=4, max_tokens=48, temperature=0.7, seed=r)
        together.append((time.perf_counter() - start) / len(reply["choices"]))
        start = time.perf_counter()
        for i in range(4):
            model.chat(STORY, max_tokens=48, temperature=0.7, seed=100 * r + i)
        apart.append((time.perf_counter() - start) / 4)
    return min(together), min(apart)


def time_medium(model: Any, rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Mean seconds per ``medium`` score: (samples side by side, one call per sample)."""
    from scoring import score_request

    from tlm_hooks.llm import LocalBackend
    from tlm_hooks.scorers.tlm import TLMScorer

    side_by_side = TLMScorer(quality_preset="medium", judge=LocalBackend(model), cache=False)
    one_by_one = TLMScorer(quality_preset="medium", judge=LocalBackend(OneChoicePerCall(model)), cache=False)  # type: ignore[arg-type]
    side_by_side.score(score_request(rows[0]))  # warm both paths
    one_by_one.score(score_request(rows[0]))
    seconds: dict[str, list[float]] = {"side": [], "one": []}
    for row in rows:
        for key, scorer in (("side", side_by_side), ("one", one_by_one)):
            start = time.perf_counter()
            result = scorer.score(score_request(row))
            seconds[key].append(time.perf_counter() - start)
            if not result.ok:
                raise SystemExit(f"scoring {row['id']} failed: {result.error}")
    return statistics.mean(seconds["side"]), statistics.mean(seconds["one"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated llama.cpp thread counts")
    parser.add_argument("--answers", type=int, default=12, help="QA answers scored per path")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the chat timing")
    args = parser.parse_args(argv)
    from tlm_hooks.local import LocalModel

    rows = [json.loads(line) for line in (HERE / "qa" / "answers.jsonl").open(encoding="utf-8")]
    rows = rows[:: max(1, len(rows) // args.answers)][: args.answers]
    print("| threads | measurement | side by side | one call per choice | ratio |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for threads in (int(t) for t in args.threads.split(",")):
        model = LocalModel(n_threads=threads)
        together, apart = time_chat(model, args.repeats)
        print(f"| {threads} | chat, s per answer (n=4) | {together:.3f} | {apart:.3f} | {apart / together:.2f} |")
        side, one = time_medium(model, rows)
        print(f"| {threads} | medium, s per score ({len(rows)} answers) | {side:.2f} | {one:.2f} | {one / side:.2f} |")
        model.close()


if __name__ == "__main__":
    main()
