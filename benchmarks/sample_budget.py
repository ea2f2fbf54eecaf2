"""How the consistency samples' token budget sets `medium`'s decode steps, counted offline.

    python benchmarks/sample_budget.py

A score's samples are decoded side by side, so each score costs as many batched steps as its
longest sample. For each budget ``max(24, min(512, a * answer_tokens + b))`` this prints the mean
of that longest length over the committed samples (``qa/medium_samples.jsonl``, made with today's
budget 1.5 x + 16, so shorter budgets are read by cutting them) and the share of samples the
budget cuts. Tokens are counted with the embedded model's own vocabulary; no model call is made.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUDGETS = ((1.5, 16), (1.25, 8), (1.0, 8), (1.0, 0))  # (a, b); the first is the engine's


def main() -> None:
    import llama_cpp

    from tlm_hooks.local.model import default_model_path

    vocab = llama_cpp.Llama(str(default_model_path()), vocab_only=True, verbose=False)

    def tokens(text: str) -> int:
        return len(vocab.tokenize(text.encode(), add_bos=False))

    answers = {}
    for line in (HERE / "qa" / "answers.jsonl").read_text().splitlines():
        row = json.loads(line)
        answers[row["id"]] = len(row.get("logprobs") or ()) or tokens(row["response"])
    rows = [json.loads(line) for line in (HERE / "qa" / "medium_samples.jsonl").read_text().splitlines()]
    lengths = [(answers[row["id"]], [tokens(s) for s in row["samples"]]) for row in rows]
    print(f"{len(rows)} scores, {sum(len(s) for _, s in lengths)} samples")
    for a, b in BUDGETS:
        steps, cut, total = [], 0, 0
        for answer, samples in lengths:
            budget = max(24, min(512, int(answer * a) + b))
            steps.append(max(min(n, budget) for n in samples))
            cut += sum(n >= budget for n in samples)
            total += len(samples)
        print(
            f"budget {a} x answer + {b:2d}: mean decode steps {statistics.mean(steps):5.1f}, samples cut {cut / total:6.1%}"
        )


if __name__ == "__main__":
    main()
