"""Tool-call scoring quality: does the trust score separate right tool calls from wrong ones?

``benchmarks/tool_calls/items.json`` holds hand-made tool-choice questions, each with its right
call and one wrong call (another tool, or the right tool with wrong arguments). Every call is
scored as a tool-call decision by ``TLMScorer`` with the embedded SmolLM2-135M model as judge
(``LocalBackend``); the report gives the AUROC of the score (bootstrap 95% CI, the library's
AUROC as in ``benchmarks/scoring.py``), of each signal alone, and per kind of mistake.

``--baseline`` also scores every call the way the engine did before tool calls were a decision
of their own (the calls' JSON as plain text, no tool schemas), in the same run.

    .venv/bin/python benchmarks/tool_calls.py --preset low --limit 64 [--baseline]
    .venv/bin/python benchmarks/tool_calls.py --reflections 3 --samples 0 --baseline   # ~10 min, loaded box
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ITEMS = ROOT / "benchmarks" / "tool_calls" / "items.json"
OUT = ROOT / "benchmarks" / "tool_calls" / "results.json"
sys.path.insert(0, str(ROOT / "benchmarks"))

from scoring import auroc, bootstrap_auroc  # noqa: E402

from tlm_hooks import ScoreRequest, TLMScorer  # noqa: E402
from tlm_hooks.llm.local import LocalBackend  # noqa: E402


def load(limit: int | None) -> list[dict[str, Any]]:
    data = json.loads(ITEMS.read_text())
    items = data["items"]
    for item in items:
        item["tool_schemas"] = [data["tools"][name] for name in item["tools"]]
    if limit is not None and limit < len(items):
        pairs = [items[i : i + 2] for i in range(0, len(items), 2)]  # keep right/wrong pairs together
        step = len(pairs) / max(1, limit // 2)
        items = [item for k in range(limit // 2) for item in pairs[int(k * step)]]
    return items


def request_for(item: dict[str, Any], as_text: bool) -> ScoreRequest:
    call = {"id": "call_1", "type": "function",
            "function": {"name": item["call"]["name"], "arguments": json.dumps(item["call"]["arguments"])}}  # fmt: skip
    messages = ({"role": "user", "content": item["question"]},)
    if as_text:  # how a tool call was scored before: its JSON as the answer text, nothing else
        return ScoreRequest(response=json.dumps([call], sort_keys=True), messages=messages)
    return ScoreRequest(
        response=json.dumps([call], sort_keys=True), messages=messages, tools=tuple(item["tool_schemas"]),
        tool_calls=(call,),
    )  # fmt: skip


def judge_for(url: str | None, model: str) -> Any:
    """The embedded model, or an OpenAI-compatible judge at ``url`` (key from ``JUDGE_API_KEY``)."""
    if url is None:
        return LocalBackend()
    from tlm_hooks.llm import OpenAICompatibleBackend

    return OpenAICompatibleBackend(model=model, base_url=url, api_key=os.environ.get("JUDGE_API_KEY", "none"))


async def score_all(
    items: list[dict[str, Any]], preset: str, as_text: bool, options: dict[str, Any], judge: Any
) -> list[dict[str, Any]]:
    scorer = TLMScorer(preset, options=options, judge=judge, max_concurrency=2)
    rows = []
    for i, item in enumerate(items):
        start = time.perf_counter()
        result = await scorer.ascore(request_for(item, as_text))
        seconds = time.perf_counter() - start
        rows.append({"id": item["id"], "correct": item["correct"], "wrong_kind": item["wrong_kind"],
                     "score": result.trustworthiness_score, "components": dict(result.components),
                     "error": result.error, "seconds": seconds})  # fmt: skip
        print(f"  [{i + 1}/{len(items)}] {item['id']}: {result.trustworthiness_score} ({seconds:.1f}s)", flush=True)
    return rows


def summarize(rows: list[dict[str, Any]], n_boot: int) -> dict[str, Any]:
    ok = [r for r in rows if r["score"] is not None]
    labels = [r["correct"] for r in ok]

    def entry(scores: list[float], labs: list[bool]) -> dict[str, Any]:
        lo, hi = bootstrap_auroc(scores, labs, n=n_boot)
        return {"n": len(scores), "auroc": auroc(scores, labs), "ci": [lo, hi]}

    out: dict[str, Any] = {"score": entry([r["score"] for r in ok], labels)}
    for signal in ("self_reflection", "consistency"):
        has = [r for r in ok if signal in r["components"]]
        if has:
            out[signal] = entry([r["components"][signal] for r in has], [r["correct"] for r in has])
    for kind in ("tool", "args"):
        subset = [r for r in ok if r["correct"] or r["wrong_kind"] == kind]
        out[f"wrong_{kind}"] = entry([r["score"] for r in subset], [r["correct"] for r in subset])
    out["failed"] = len(rows) - len(ok)
    out["seconds_per_item"] = sum(r["seconds"] for r in rows) / max(1, len(rows))
    out["llm_calls_per_item"] = sum(r["components"].get("llm_calls", 0) for r in ok) / max(1, len(ok))
    return out


def report(name: str, summary: dict[str, Any]) -> None:
    print(f"\n{name}: {summary['score']['n']} items, {summary['failed']} failed, "
          f"{summary['seconds_per_item']:.1f} s and {summary['llm_calls_per_item']:.1f} judge calls per item")  # fmt: skip
    print("| measure | n | AUROC [95% CI] |\n| --- | --- | --- |")
    for key in ("score", "self_reflection", "consistency", "wrong_tool", "wrong_args"):
        if key in summary:
            s = summary[key]
            print(f"| {key} | {s['n']} | {s['auroc']:.3f} [{s['ci'][0]:.3f}, {s['ci'][1]:.3f}] |")


def _compact(results: dict[str, Any]) -> str:
    """JSON with one line per scored row (small diffs when re-run)."""
    parts = []
    for key, value in results.items():
        if isinstance(value, dict) and "rows" in value:
            rows = ",\n   ".join(json.dumps(row) for row in value["rows"])
            parts.append(f' {json.dumps(key)}: {{"summary": {json.dumps(value["summary"])},\n  "rows": [\n   {rows}\n  ]}}')
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="low", choices=["base", "low", "medium", "high", "best"])
    parser.add_argument("--limit", type=int, default=None, help="items to score (right/wrong pairs kept together)")
    parser.add_argument("--baseline", action="store_true", help="also score the calls as plain text (old engine)")
    parser.add_argument("--reflections", type=int, default=None, help="num_self_reflections (default: the preset's)")
    parser.add_argument("--samples", type=int, default=None, help="num_consistency_samples (default: the preset's)")
    parser.add_argument("--max-tokens", type=int, default=None, help="max_tokens of each consistency sample")
    parser.add_argument("--judge-url", default=None, help="an OpenAI-compatible judge (default: the embedded model)")
    parser.add_argument("--judge-model", default="gpt-4.1-mini", help="the judge's model name at --judge-url")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    items = load(args.limit)
    options = {key: value for key, value in {"num_self_reflections": args.reflections,
               "num_consistency_samples": args.samples, "max_tokens": args.max_tokens}.items() if value is not None}  # fmt: skip
    results: dict[str, Any] = {"preset": args.preset, "options": options, "items": len(items),
                               "judge": args.judge_url and f"{args.judge_model} at {args.judge_url}"
                               or "embedded SmolLM2-135M-Instruct (LocalBackend)"}  # fmt: skip
    runs = [("tool_call_decision", False)] + ([("calls_as_text_baseline", True)] if args.baseline else [])
    for name, as_text in runs:
        print(f"{name}: scoring {len(items)} items with preset {args.preset!r}", flush=True)
        rows = asyncio.run(score_all(items, args.preset, as_text, options, judge_for(args.judge_url, args.judge_model)))
        summary = summarize(rows, args.bootstrap)
        report(name, summary)
        results[name] = {"summary": summary, "rows": rows}
    args.out.write_text(_compact(results))
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
