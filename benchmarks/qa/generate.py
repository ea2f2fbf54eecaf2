"""Answer every benchmark question with the embedded model (greedy) and label each answer.

    .venv/bin/python benchmarks/qa/generate.py [--limit N] [--out benchmarks/qa/answers.jsonl]
    .venv/bin/python benchmarks/qa/generate.py --relabel   # re-check saved answers after a checker change

Writes one line per question: the question's fields, the exact ``messages`` sent, the
``response`` text, its token ``logprobs`` (``[token, logprob, [[alt, logprob], ...]]``, top 5),
``correct`` / ``parsed`` from ``check.py``, and ``seconds``/``completion_tokens``. Every scorer in
``benchmarks/scoring.py`` scores these same responses. Prints accuracy per kind and difficulty.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from check import check  # noqa: E402

SYSTEM_PROMPT = "You are a helpful assistant. Answer the question briefly, in a few words."
MAX_TOKENS = 64
TOP_LOGPROBS = 5


def messages_for(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def accuracy_table(rows: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for row in rows:
        groups[(row["kind"], row["difficulty"])].append(row["correct"])
        groups[(row["kind"], "all")].append(row["correct"])
        groups[("all", row["difficulty"])].append(row["correct"])
        groups[("all", "all")].append(row["correct"])
    order = {"easy": 0, "medium": 1, "hard": 2, "all": 3}
    kinds = {"arithmetic": 0, "fact": 1, "classification": 2, "all": 3}
    lines = ["| kind | difficulty | n | correct | accuracy |", "| --- | --- | ---: | ---: | ---: |"]
    for (kind, diff), values in sorted(groups.items(), key=lambda kv: (kinds[kv[0][0]], order[kv[0][1]])):
        lines.append(f"| {kind} | {diff} | {len(values)} | {sum(values)} | {sum(values) / len(values):.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=HERE / "questions.jsonl")
    parser.add_argument("--out", type=Path, default=HERE / "answers.jsonl")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--relabel", action="store_true", help="re-check the saved answers (no generation)")
    args = parser.parse_args()

    if args.relabel:  # the checker or the gold answers changed: relabel the same responses
        by_id = {q["id"]: q for q in load_jsonl(args.questions)}
        rows = []
        for row in load_jsonl(args.out):
            q = by_id[row["id"]]
            verdict = check(q, row["response"])
            rows.append({**row, **q, "correct": verdict.correct, "parsed": verdict.parsed})
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"relabelled {len(rows)} answers in {args.out}")
        print(accuracy_table(rows))
        return

    from tlm_hooks.local import get_default_model

    questions = load_jsonl(args.questions)[: args.limit]
    model = get_default_model()
    rows = []
    with args.out.open("w", encoding="utf-8") as fh:
        for i, q in enumerate(questions):
            messages = messages_for(q["question"])
            start = time.perf_counter()
            reply = model.chat(
                messages, max_tokens=MAX_TOKENS, temperature=0.0, logprobs=True, top_logprobs=TOP_LOGPROBS, seed=0
            )
            seconds = time.perf_counter() - start
            choice = reply["choices"][0]
            text = choice["message"]["content"] or ""
            logprobs = [
                [t["token"], t["logprob"], [[a["token"], a["logprob"]] for a in t.get("top_logprobs") or []]]
                for t in (choice.get("logprobs") or {}).get("content") or []
            ]
            verdict = check(q, text)
            row = {
                **q,
                "model": reply["model"],
                "messages": messages,
                "response": text,
                "finish_reason": choice["finish_reason"],
                "logprobs": logprobs,
                "correct": verdict.correct,
                "parsed": verdict.parsed,
                "completion_tokens": reply["usage"]["completion_tokens"],
                "seconds": round(seconds, 4),
            }
            rows.append(row)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            if (i + 1) % 25 == 0:
                print(f"{i + 1}/{len(questions)}", file=sys.stderr, flush=True)
    print(f"{len(rows)} answers -> {args.out}")
    print(accuracy_table(rows))


if __name__ == "__main__":
    main()
