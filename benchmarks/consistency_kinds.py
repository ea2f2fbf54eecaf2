"""Does observed consistency rank right above wrong answers on every kind of question?

Step 1 (``--sample``, embedded model): score every answer of ``qa/answers.jsonl`` with the
engine's ``medium`` preset on the embedded SmolLM2-135M judge, recording the judge's sampled
alternative answers and the other signals' scores in ``qa/medium_samples.jsonl`` (appended per
answer, so an interrupted run continues; committed, so step 2 needs no model).

Step 2 (default): for each kind and subkind of question, the AUROC (right vs wrong answers) of

- ``word overlap``: token F1 between the answer and each sample (the naive baseline);
- ``consistency (numbers, else words)``: the comparison before the answer-level one;
- ``consistency (committed answer)``: what the engine compares now (``similarity.agreement``
  with ``auto``: the choice the question offered, else the settled number, else the names
  given, else the words added to the question);
- ``medium`` (token probability + reflection + consistency with the engine's weights), with the
  old and the new consistency.

    .venv/bin/python benchmarks/consistency_kinds.py --sample     # ~40 min on 2 cores (1 llama.cpp thread)
    .venv/bin/python benchmarks/consistency_kinds.py              # the table (no model)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from scoring import DEFAULT_ANSWERS, DEFAULT_RAW, auroc, bootstrap_auroc, load_jsonl, record, score_request  # noqa: E402

SAMPLES = ROOT / "benchmarks" / "qa" / "medium_samples.jsonl"


class RecordingJudge:
    """A judge that passes calls to ``inner`` and keeps the answers of sampling calls."""

    def __init__(self, inner: Any, sample_temperature: float) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_temperature = sample_temperature
        self.samples: list[str] = []

    async def acomplete(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> Any:
        generations = await self.inner.acomplete(messages, **kwargs)
        if kwargs.get("temperature") == self.sample_temperature and not kwargs.get("logprobs"):
            self.samples.extend(g.text for g in generations)
        return generations


def sample(rows: list[dict[str, Any]], path: Path, threads: int) -> None:
    """Score each row not yet in ``path`` with ``medium``, recording samples and components."""
    from tlm_hooks.llm import LocalBackend
    from tlm_hooks.local import LocalModel
    from tlm_hooks.scorers.signals.consistency import SAMPLE_TEMPERATURE
    from tlm_hooks.scorers.tlm import TLMScorer

    done = {r["id"] for r in load_jsonl(path)} if path.exists() else set()
    todo = [r for r in rows if r["id"] not in done]
    todo.sort(key=lambda r: r["kind"] == "arithmetic")  # names and labels first: what this measures
    print(f"{len(done)} answers already sampled, {len(todo)} to go (medium, embedded judge)", flush=True)
    backend = LocalBackend(LocalModel(n_threads=threads))
    started = time.perf_counter()
    with path.open("a", encoding="utf-8") as out:
        for i, row in enumerate(todo):
            judge = RecordingJudge(backend, SAMPLE_TEMPERATURE)
            scorer = TLMScorer(quality_preset="medium", judge=judge)
            t0 = time.perf_counter()
            result = scorer.score(score_request(row))
            seconds = time.perf_counter() - t0
            comps = {k: v for k, v in result.components.items() if isinstance(v, (int, float))}
            line = {"id": row["id"], "score": result.trustworthiness_score, "components": comps,
                    "samples": judge.samples, "seconds": round(seconds, 3), "error": result.error}  # fmt: skip
            out.write(json.dumps(line) + "\n")
            out.flush()
            if (i + 1) % 10 == 0:
                rate = (time.perf_counter() - started) / (i + 1)
                print(f"  {i + 1}/{len(todo)}  {rate:.2f} s/answer", flush=True)


def consistency(row: Mapping[str, Any], samples: Sequence[str], compare: Callable[..., float]) -> float:
    from tlm_hooks.scorers.signals.fit import fit_question

    question = fit_question(score_request(row))[0]  # what the engine compares against
    values = [compare(row["response"], s, question) for s in samples]
    return sum(values) / len(values)


def comparators() -> dict[str, Callable[[str, str, str], float]]:
    from tlm_hooks.scorers.signals import similarity as sim

    def before(a: str, b: str, q: str) -> float:
        numeric = sim.numeric_agreement(a, b, q)
        return numeric if numeric is not None else sim.lexical_overlap(a, b)

    return {
        "word overlap": lambda a, b, q: sim.lexical_overlap(a, b),
        "consistency (numbers, else words)": before,
        "consistency (committed answer)": lambda a, b, q: sim.agreement(a, b, "auto", None, q),
    }


def report(rows: list[dict[str, Any]], path: Path, boot: int) -> None:
    from tlm_hooks.scorers.signals.weights import combine

    by_id = {r["id"]: r for r in rows}
    sampled = [s for s in load_jsonl(path) if s["samples"] and s["id"] in by_id]
    compares = comparators()
    table: dict[str, dict[str, list[float]]] = {name: {} for name in compares}
    table["medium (old consistency)"] = {}
    table["medium (now)"] = {}
    labels: list[int] = []
    groups: dict[str, list[int]] = {"all": []}
    for i, s in enumerate(sampled):
        row = by_id[s["id"]]
        labels.append(int(bool(row["correct"])))
        groups["all"].append(i)
        groups.setdefault(row["kind"], []).append(i)
        groups.setdefault(f"  {row['subkind']}", []).append(i)
        values = {name: consistency(row, s["samples"], fn) for name, fn in compares.items()}
        for name, value in values.items():
            table[name][s["id"]] = [value]
        others = {k: float(v) for k, v in s["components"].items() if k in ("token_probability", "self_reflection")}
        table["medium (old consistency)"][s["id"]] = [
            combine({**others, "consistency": values["consistency (numbers, else words)"]}, None)
        ]
        table["medium (now)"][s["id"]] = [
            combine({**others, "consistency": values["consistency (committed answer)"]}, None)
        ]
    names = list(table)
    ids = [s["id"] for s in sampled]
    print(f"{len(sampled)} answers, 4 samples each, embedded SmolLM2-135M (medium)\n")
    print("| kind | n (right) | " + " | ".join(names) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in names) + " |")
    for group, members in groups.items():
        ys = [labels[i] for i in members]
        if len(set(ys)) < 2:
            continue
        cells = []
        for name in names:
            xs = [table[name][ids[i]][0] for i in members]
            value = auroc(xs, ys)
            if boot and not group.startswith(" "):
                low, high = bootstrap_auroc(xs, ys, boot)
                cells.append(f"{value:.3f} [{low:.2f}, {high:.2f}]")
            else:
                cells.append(f"{value:.3f}")
        print(f"| {group} | {len(ys)} ({sum(ys)}) | " + " | ".join(cells) + " |")
    seconds = [s["seconds"] for s in sampled]
    seconds.sort()
    print(
        f"\nmedium, seconds per score: median {seconds[len(seconds) // 2]:.2f}, mean {sum(seconds) / len(seconds):.2f}"
    )


def write_raw(rows: list[dict[str, Any]], path: Path, raw_dir: Path) -> Path:
    """The engine's ``medium`` result per answer as ``scoring.py`` writes it (``tlm-medium.jsonl``),
    its consistency compared the way the engine does now, for ``calibration.py``."""
    from tlm_hooks.scorers.signals.similarity import agreement
    from tlm_hooks.scorers.signals.weights import combine

    by_id = {r["id"]: r for r in rows}
    out = []
    for s in load_jsonl(path):
        row = by_id.get(s["id"])
        if row is None or not s["samples"]:
            continue
        comps = {k: float(v) for k, v in s["components"].items() if k in ("token_probability", "self_reflection")}
        comps["consistency"] = consistency(row, s["samples"], lambda a, b, q: agreement(a, b, "auto", None, q))
        out.append(record(row, combine(comps, None), calls=s["components"].get("llm_calls", 0),
                          tokens=s["components"].get("llm_tokens", 0), seconds=s["seconds"], components=comps))  # fmt: skip
    raw_dir.mkdir(parents=True, exist_ok=True)
    target = raw_dir / "tlm-medium.jsonl"
    target.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    print(f"{len(out)} answers -> {target}")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", action="store_true", help="step 1: run medium on the embedded model")
    parser.add_argument("--answers", type=Path, default=DEFAULT_ANSWERS)
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--write-raw", type=Path, nargs="?", const=DEFAULT_RAW, default=None, metavar="DIR",
                        help="also write DIR/tlm-medium.jsonl for calibration.py (default DIR: results/raw)")  # fmt: skip
    args = parser.parse_args()
    rows = load_jsonl(args.answers)
    if args.sample:
        sample(rows, args.samples, args.threads)
    if args.write_raw:
        write_raw(rows, args.samples, args.write_raw)
    report(rows, args.samples, args.bootstrap)


if __name__ == "__main__":
    main()
