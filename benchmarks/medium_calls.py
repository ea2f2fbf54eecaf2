"""Where a ``medium`` score's time goes on the embedded model, call by call; optionally an older
checkout of the engine measured in the same run.

    python benchmarks/medium_calls.py [--threads 1] [--answers 12] [--against PATH]

Scores ``--answers`` answers of ``qa/answers.jsonl`` (evenly spaced) with
``TLMScorer("medium", judge=LocalBackend(LocalModel(n_threads=N)))`` after one warm-up score,
and prints seconds per score plus, per kind of model call (reflection or samples, and how many
choices the call asked for), the mean prompt tokens, prompt tokens already in llama.cpp's cache
(none for choices side by side, which start from an empty cache of their own),
generated tokens and seconds. ``--against PATH`` runs the same measurement first on the checkout
at ``PATH`` (e.g. ``git worktree add /tmp/old <commit>``), each in its own process, and prints the
ratio old / this one. Calls are told apart by ``max_tokens``: reflections ask for at most 6.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def measure(threads: int, answers: int) -> dict[str, Any]:
    """Score the answers in this process (the engine importable as ``tlm_hooks`` from sys.path[0])."""
    sys.path.insert(1, str(HERE))
    from scoring import score_request

    from tlm_hooks.llm import LocalBackend
    from tlm_hooks.local import LocalModel
    from tlm_hooks.scorers.tlm import TLMScorer

    rows = [json.loads(line) for line in (HERE / "qa" / "answers.jsonl").open(encoding="utf-8")]
    rows = rows[:: max(1, len(rows) // answers)][:answers]
    model = LocalModel(n_threads=threads)
    calls: list[dict[str, Any]] = []
    original = LocalModel._chat

    def timed(self: Any, messages: Any, params: Any, cancel: Any) -> Any:
        cached = list(self._llama.input_ids[: self._llama.n_tokens])
        prompt = self._prompt_tokens(messages)
        reused = next(
            (i for i, (a, b) in enumerate(zip(cached, prompt, strict=False)) if a != b), min(len(cached), len(prompt))
        )
        if getattr(params, "n", 1) > 1:
            reused = 0  # choices side by side start from an empty cache of their own
        start = time.perf_counter()
        reply = original(self, messages, params, cancel)
        kind = "reflection" if params.max_tokens <= 6 else "samples"
        calls.append({"kind": f"{kind}, n={getattr(params, 'n', 1)}", "prompt": len(prompt), "cached": reused,
                      "generated": reply["usage"]["completion_tokens"], "seconds": time.perf_counter() - start})  # fmt: skip
        return reply

    LocalModel._chat = timed  # type: ignore[method-assign]
    scorer = TLMScorer(quality_preset="medium", judge=LocalBackend(model), cache=False)
    scorer.score(score_request(rows[0]))
    calls.clear()
    start = time.perf_counter()
    for row in rows:
        scorer.score(score_request(row))
    per_score = (time.perf_counter() - start) / len(rows)
    kinds: dict[str, dict[str, float]] = {}
    grouped = collections.defaultdict(list)
    for call in calls:
        grouped[call["kind"]].append(call)
    for kind, group in sorted(grouped.items()):
        kinds[kind] = {
            key: sum(c[key] for c in group) / len(group) for key in ("prompt", "cached", "generated", "seconds")
        }
        kinds[kind]["per_score"] = len(group) / len(rows)
    return {"seconds_per_score": per_score, "kinds": kinds, "answers": len(rows)}


def run_in(checkout: Path, threads: int, answers: int) -> dict[str, Any]:
    """`measure` in a subprocess importing the engine of ``checkout``."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    code = (
        f"import sys; sys.path.insert(0, {str(checkout)!r}); sys.path.insert(1, {str(HERE)!r}); "
        f"import json, medium_calls; print(json.dumps(medium_calls.measure({threads}, {answers})))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def show(label: str, result: dict[str, Any]) -> None:
    print(f"\n{label}: {result['seconds_per_score']:.2f} s per score ({result['answers']} answers)")
    print("| call | per score | prompt tokens | of them cached | generated | s per call |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind, v in result["kinds"].items():
        print(
            f"| {kind} | {v['per_score']:.1f} | {v['prompt']:.0f} | {v['cached']:.0f} | {v['generated']:.1f} | {v['seconds']:.2f} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1)")
    parser.add_argument("--answers", type=int, default=12, help="answers scored (12)")
    parser.add_argument("--against", type=Path, default=None, help="another checkout to measure first")
    args = parser.parse_args(argv)
    root = HERE.parent
    if args.against is not None:
        old = run_in(args.against.resolve(), args.threads, args.answers)
        show(f"{args.against}", old)
    new = run_in(root, args.threads, args.answers)
    show(f"{root}", new)
    if args.against is not None:
        print(f"\nold / this one: {old['seconds_per_score'] / new['seconds_per_score']:.2f}")


if __name__ == "__main__":
    main()
