"""RAG benchmark: how well response_groundedness and trustworthiness separate grounded from fabricated answers.

``items.jsonl`` holds 80 hand-written items: 40 (query, context) pairs, each with one grounded
response and one fabricated response (it contradicts the context, or adds facts the context
does not state). Every item is scored by ``TrustworthyRAG`` with the embedded SmolLM2-135M
model as judge, one item at a time (the model serves one request at a time anyway), and the
script reports per score the AUROC for "grounded ranks above fabricated" with a 95% bootstrap
interval, the same per kind of fabrication, and seconds and judge calls per item. A model-free
baseline (share of the response's content words found in the context) is scored alongside.

Raw per-item results go to ``--raw`` (JSONL, one line per item); a rerun skips items already
there, so an interrupted run resumes. ``--report`` only reads the raw file.

    .venv/bin/python benchmarks/rag/run.py --preset low
    .venv/bin/python benchmarks/rag/run.py --preset medium --evals all
    .venv/bin/python benchmarks/rag/run.py --preset low --report
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from scoring import auroc, bootstrap_auroc  # noqa: E402  (benchmarks/scoring.py: stdlib-only metrics)

ITEMS = Path(__file__).with_name("items.jsonl")
RAW_DIR = ROOT / "benchmarks" / "results" / "rag"
_STOP = frozenset("a an the is are was were be of to in on at for and or it its this that as by with you your".split())


def load_items(path: Path = ITEMS) -> list[dict[str, Any]]:
    """The labelled items, in file order."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def overlap_baseline(context: str, response: str) -> float:
    """Share of the response's content words that occur in the context (no model)."""

    def words(text: str) -> list[str]:
        return [w for w in re.findall(r"[a-z0-9]+(?:[.,][0-9]+)?", text.lower()) if w not in _STOP]

    said = words(response)
    known = set(words(context))
    return sum(1 for w in said if w in known) / len(said) if said else 1.0


async def score_all(items: list[dict[str, Any]], preset: str, eval_names: list[str], raw: Path) -> None:
    from tlm_hooks.llm.usage import metered
    from tlm_hooks.local import get_default_model
    from tlm_hooks.rag import DEFAULT_EVALS, TrustworthyRAG

    start = time.perf_counter()
    get_default_model()  # load once, outside the timed items
    print(f"model loaded in {time.perf_counter() - start:.1f}s", flush=True)

    evals = [ev for ev in DEFAULT_EVALS if ev.name in eval_names]
    rag = TrustworthyRAG(preset, options={"log": ["per_component_score"]}, evals=evals)
    done = set()
    if raw.exists():
        done = {json.loads(line)["id"] for line in raw.read_text(encoding="utf-8").splitlines() if line.strip()}
    todo = [item for item in items if item["id"] not in done]
    print(f"{len(done)} items already scored in {raw}, {len(todo)} to go", flush=True)
    raw.parent.mkdir(parents=True, exist_ok=True)
    for n, item in enumerate(todo, 1):
        start = time.perf_counter()
        with metered() as usage:
            result = await rag.ascore(item["query"], item["context"], item["response"])
        seconds = time.perf_counter() - start
        trust_log = result["trustworthiness"].get("log", {})
        calls = usage.calls + int(trust_log.get("per_component_score", {}).get("llm_calls", 0))
        row = {
            "id": item["id"],
            "label": item["label"],
            "kind": item["kind"],
            "seconds": round(seconds, 3),
            "llm_calls": calls,
            "trustworthiness": result.trustworthiness_score,
            "components": trust_log.get("per_component_score", {}),
            **{name: score for name, score in result.eval_scores.items()},
            "errors": result.errors,
        }
        with raw.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(f"[{n}/{len(todo)}] {item['id']} {seconds:.1f}s trust={row['trustworthiness']}", flush=True)


def _line(name: str, scores: list[float], labels: list[bool]) -> str:
    value = auroc(scores, labels)
    lo, hi = bootstrap_auroc(scores, labels, n=2000)
    return f"| {name} | {value:.3f} | [{lo:.3f}, {hi:.3f}] |"


def report(items: list[dict[str, Any]], raw: Path) -> None:
    """Print the AUROC table (markdown) from the raw results."""
    rows = {r["id"]: r for r in map(json.loads, raw.read_text(encoding="utf-8").splitlines()) if r}
    by_id = {item["id"]: item for item in items}
    scored = [rows[i] for i in by_id if i in rows]
    if not scored:
        raise SystemExit(f"no results in {raw}")
    names = [k for k in ("trustworthiness", *_eval_keys(scored)) if all(r.get(k) is not None for r in scored)]
    failed = {k for r in scored for k in r["errors"]}
    print(f"items: {len(scored)} ({sum(r['label'] == 'grounded' for r in scored)} grounded), raw: {raw}")
    if failed:
        print(f"parts that failed on some item (left out of the table): {sorted(failed)}")
    print("\n| score | AUROC | 95% bootstrap CI |\n| --- | --- | --- |")
    subsets = {
        "all": scored,
        "contradiction": [r for r in scored if r["kind"] in ("grounded", "contradiction")],
        "addition": [r for r in scored if r["kind"] in ("grounded", "addition")],
    }
    for subset, part in subsets.items():
        labels = [r["label"] == "grounded" for r in part]
        suffix = "" if subset == "all" else f" (grounded vs {subset})"
        for name in names:
            print(_line(f"{name}{suffix}", [r[name] for r in part], labels))
        baseline = [overlap_baseline(by_id[r["id"]]["context"], by_id[r["id"]]["response"]) for r in part]
        print(_line(f"word-overlap baseline (no model){suffix}", baseline, labels))
    print("\n| score | grounded above its pair's fabricated answer | 95% bootstrap CI |\n| --- | --- | --- |")
    for name in names:
        wins = pair_wins(scored, name)
        lo, hi = _bootstrap_mean(wins)
        print(f"| {name} | {sum(wins) / len(wins):.3f} ({len(wins)} pairs) | [{lo:.3f}, {hi:.3f}] |")
    for name in ("token_probability", "self_reflection", "consistency"):
        values = [r["components"].get(name) for r in scored]
        if all(v is not None for v in values):
            print(_line(f"trustworthiness: {name} alone", values, [r["label"] == "grounded" for r in scored]))
    seconds = [r["seconds"] for r in scored]
    calls = [r["llm_calls"] for r in scored]
    median = sorted(seconds)[len(seconds) // 2]
    print(f"\nseconds per item: mean {sum(seconds) / len(seconds):.1f}, median {median:.1f}, max {max(seconds):.1f}")
    print(f"judge calls per item: mean {sum(calls) / len(calls):.1f}")
    for name in names:
        grounded = [r[name] for r in scored if r["label"] == "grounded"]
        fabricated = [r[name] for r in scored if r["label"] != "grounded"]
        print(
            f"mean {name}: grounded {sum(grounded) / len(grounded):.3f}, "
            f"fabricated {sum(fabricated) / len(fabricated):.3f}"
        )


def pair_wins(rows: list[dict[str, Any]], name: str) -> list[float]:
    """Per (query, context) pair: 1 if the grounded answer scores above the fabricated one, 0.5 on a tie."""
    by_id = {r["id"]: r for r in rows}
    wins = []
    for key, row in by_id.items():
        other = by_id.get(key[:-1] + "f")
        if key.endswith("g") and other is not None:
            a, b = row[name], other[name]
            wins.append(1.0 if a > b else 0.5 if a == b else 0.0)
    return wins


def _bootstrap_mean(values: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(n))
    return means[int(0.025 * n)], means[min(n - 1, int(0.975 * n))]


def _eval_keys(rows: list[dict[str, Any]]) -> list[str]:
    fixed = {"id", "label", "kind", "seconds", "llm_calls", "trustworthiness", "components", "errors"}
    return [k for k in rows[0] if k not in fixed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="low", choices=["base", "low", "medium", "high", "best"])
    parser.add_argument("--evals", default="response_groundedness", help="comma-separated eval names, or 'all'")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N items")
    parser.add_argument(
        "--raw", type=Path, default=None, help="raw JSONL (default benchmarks/results/rag/<preset>.jsonl)"
    )
    parser.add_argument("--report", action="store_true", help="only print the report from the raw file")
    args = parser.parse_args()
    items = load_items()[: args.limit]
    raw = args.raw or RAW_DIR / f"{args.preset}.jsonl"
    if not args.report:
        from tlm_hooks.rag import DEFAULT_EVALS

        names = [ev.name for ev in DEFAULT_EVALS] if args.evals == "all" else args.evals.split(",")
        asyncio.run(score_all(items, args.preset, names, raw))
    report(items, raw)


if __name__ == "__main__":
    main()
