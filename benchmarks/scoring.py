"""Score the benchmark's fixed answers with every scorer and compare them.

Every configuration scores the same (question, answer) pairs from ``benchmarks/qa/answers.jsonl``
(generated once, greedy, by the embedded SmolLM2-135M-Instruct) and every judge/sampling call
goes to that same embedded model. Per configuration it reports the AUROC of the trust score for
separating correct from incorrect answers (bootstrap 95% CI), the accuracy of the 80% most
trusted answers, LLM calls and tokens per score and seconds per score.

Run units (``--configs``); each writes per-item raw results to ``--raw-dir`` (one JSONL per
derived configuration), so units can be run one at a time and reported together:

- ``logprob``             LogprobScorer (geometric mean; also ``logprob-min``): no LLM call
- ``tlm-base|low|medium|high``  our TLMScorer with judge = LocalBackend(embedded model); also
                          writes each signal alone from the components (``tlm-<preset>:<signal>``)
- ``uqlm``                uqlm 0.6 through LangChain's ChatOpenAI against our OpenAI-compatible
                          server (in ``.venv-bench``): its BS-Detector ensemble without the NLI
                          component, its judge, exact match and its white-box scorers
- ``oss-tlm-base|low|medium|high``  Cleanlab's open-source ``trustworthy-llm`` 0.0.3 through
                          litellm against the same server (in ``.venv-bench-tlm``)

Peers run in their own venvs as subprocesses of this script (``--worker``); this process serves
the embedded model on loopback and counts every request it receives (``GET /__count``).

    .venv/bin/python benchmarks/scoring.py --configs logprob tlm-medium uqlm --limit 100
    .venv-bench/bin/python benchmarks/scoring.py --report --out benchmarks/results/results.json
    .venv/bin/python benchmarks/scoring.py --fit-weights tlm-high     # tlm_hooks.calibrate on its components

``--limit N`` takes N answers evenly spaced over the file (so every kind and difficulty is
represented). ``--report`` needs only the standard library (and matplotlib for the PNG).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QA = ROOT / "benchmarks" / "qa"
DEFAULT_ANSWERS = QA / "answers.jsonl"
DEFAULT_RAW = ROOT / "benchmarks" / "results" / "raw"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "results.json"
DEFAULT_PLOT = ROOT / "benchmarks" / "score_distributions.png"
BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"
BENCH_TLM_PY = ROOT / ".venv-bench-tlm" / "bin" / "python"
MODEL_NAME = "smollm2-135m-instruct"
SIGNALS = ("token_probability", "self_reflection", "consistency")
# uqlm's off-the-shelf ensemble ("BS Detector", Chen & Mueller 2023) weights: noncontradiction
# 0.56, exact_match 0.14, judge 0.30. The NLI model behind noncontradiction
# (microsoft/deberta-large-mnli) is a hub download and can't be had offline, so we renormalise
# the other two (exact_match 0.14/0.44, judge 0.30/0.44).
BSD_WEIGHTS = {"exact_match": 0.14, "judge_1": 0.30}
UQLM_WHITE_BOX = ["min_probability", "sequence_probability", "mean_token_negentropy", "min_token_negentropy",
                  "probability_margin"]  # fmt: skip
UQLM_SAMPLES = 5  # uqlm's default num_responses
OSS_TLM_MAX_TOKENS = 128


# -- data ------------------------------------------------------------------------------------------


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def select(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """``limit`` rows evenly spaced over ``rows`` (all of them when ``limit`` is None or too big)."""
    if limit is None or limit >= len(rows):
        return list(rows)
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit)]


# -- metrics (standard library only) --------------------------------------------------------------------------


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """P(score of a random correct answer > that of a random incorrect one), ties count half
    (the library's own Mann-Whitney AUROC, the one calibration reports)."""
    from tlm_hooks.calibration.metrics import auroc as library_auroc

    return library_auroc(scores, [float(y) for y in labels])


def bootstrap_auroc(
    scores: Sequence[float], labels: Sequence[bool], n: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the AUROC (resampling answers with replacement)."""
    rng = random.Random(seed)
    idx = range(len(scores))
    values = []
    for _ in range(n):
        pick = rng.choices(idx, k=len(scores))
        value = auroc([scores[i] for i in pick], [labels[i] for i in pick])
        if not math.isnan(value):
            values.append(value)
    values.sort()
    if not values:
        return (float("nan"), float("nan"))
    return values[int(0.025 * len(values))], values[min(len(values) - 1, int(0.975 * len(values)))]


def paired_diff_ci(
    a: Sequence[float], b: Sequence[float], labels: Sequence[bool], n: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """AUROC(a) - AUROC(b) on the same answers, with a paired bootstrap 95% interval."""
    rng = random.Random(seed)
    idx = range(len(labels))
    diffs = []
    for _ in range(n):
        pick = rng.choices(idx, k=len(labels))
        lab = [labels[i] for i in pick]
        d = auroc([a[i] for i in pick], lab) - auroc([b[i] for i in pick], lab)
        if not math.isnan(d):
            diffs.append(d)
    diffs.sort()
    point = auroc(a, labels) - auroc(b, labels)
    return point, diffs[int(0.025 * len(diffs))], diffs[min(len(diffs) - 1, int(0.975 * len(diffs)))]


def top_accuracy(scores: Sequence[float], labels: Sequence[bool], fraction: float = 0.8) -> float:
    """Accuracy of the ``fraction`` most-trusted answers (ties broken by a fixed random order)."""
    rng = random.Random(0)
    jitter = [rng.random() for _ in scores]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], jitter[i]))
    keep = order[: max(1, round(fraction * len(scores)))]
    return sum(bool(labels[i]) for i in keep) / len(keep)


# -- raw results -----------------------------------------------------------------------------------


def write_raw(raw_dir: Path, config: str, records: list[dict[str, Any]]) -> None:
    raw_dir.mkdir(parents=True, exist_ok=True)
    path = raw_dir / f"{config.replace(':', '__')}.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
    print(f"  wrote {len(records)} -> {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)


def read_raw(raw_dir: Path) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for path in sorted(raw_dir.glob("*.jsonl")):
        out[path.stem.replace("__", ":")] = load_jsonl(path)
    return out


def record(row: dict[str, Any], score: float | None, *, calls: float = 0, tokens: float = 0, seconds: float = 0.0,
           components: dict[str, Any] | None = None, error: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {"id": row["id"], "kind": row["kind"], "difficulty": row["difficulty"], "correct": row["correct"],
            "score": score, "calls": calls, "tokens": tokens, "seconds": round(seconds, 4),
            "components": components or {}, "error": error}  # fmt: skip


# -- a counting OpenAI-compatible server over the embedded model -----------------------------------


class CountingModel:
    """Wraps a ChatModel; counts every generation request and its tokens (what the server sees)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = getattr(model, "name", MODEL_NAME)
        self.lock = threading.Lock()
        self.calls = 0
        self.tokens = 0

    def _count(self, reply: dict[str, Any] | None) -> None:
        usage = (reply or {}).get("usage") or {}
        with self.lock:
            self.calls += 1
            self.tokens += int(usage.get("total_tokens") or 0)

    def chat(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        reply = self.model.chat(messages, **kwargs)
        self._count(reply)
        return reply

    def chat_stream(self, messages: Any, **kwargs: Any) -> Any:
        self._count(None)
        return self.model.chat_stream(messages, **kwargs)

    async def achat(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        reply = await self.model.achat(messages, **kwargs)
        self._count(reply)
        return reply


def counting_app(app: Any, counter: CountingModel) -> Any:
    """ASGI wrapper: ``GET /__count`` returns the counters; everything else goes to ``app``."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/__count":
            body = json.dumps({"calls": counter.calls, "tokens": counter.tokens}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


def get_count(base_url: str) -> tuple[int, int]:
    import urllib.request

    with urllib.request.urlopen(f"{base_url}/__count", timeout=10) as reply:
        data = json.loads(reply.read())
    return int(data["calls"]), int(data["tokens"])


# -- our scorers (project venv) --------------------------------------------------------------------


def score_request(row: dict[str, Any]) -> Any:
    from tlm_hooks.types import ScoreRequest, TokenLogprob

    logprobs = tuple(
        TokenLogprob(t, float(lp), tuple((a, float(alp)) for a, alp in top)) for t, lp, top in row["logprobs"]
    )
    return ScoreRequest(response=row["response"], messages=tuple(row["messages"]), model=MODEL_NAME,
                        response_logprobs=logprobs or None)  # fmt: skip


def run_logprob(rows: list[dict[str, Any]], raw_dir: Path) -> None:
    from tlm_hooks import LogprobScorer

    for aggregate, name in (("geometric_mean", "logprob"), ("min", "logprob-min")):
        scorer = LogprobScorer(aggregate)  # type: ignore[arg-type]
        out = []
        for row in rows:
            start = time.perf_counter()
            result = scorer.score(score_request(row))
            out.append(record(row, result.trustworthiness_score, seconds=time.perf_counter() - start,
                              components=dict(result.components), error=result.error))  # fmt: skip
        write_raw(raw_dir, name, out)


def run_tlm(preset: str, rows: list[dict[str, Any]], raw_dir: Path, progress: bool = True) -> None:
    from tlm_hooks.llm import LocalBackend
    from tlm_hooks.scorers.tlm import TLMScorer

    scorer = TLMScorer(quality_preset=preset, judge=LocalBackend())
    main: list[dict[str, Any]] = []
    singles: dict[str, list[dict[str, Any]]] = {s: [] for s in SIGNALS}
    for i, row in enumerate(rows):
        start = time.perf_counter()
        try:
            result = scorer.score(score_request(row))
            score, comps, error = result.trustworthiness_score, dict(result.components), result.error
        except Exception as exc:  # one bad item must not end a long run
            score, comps, error = None, {}, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        calls, tokens = comps.get("llm_calls", 0), comps.get("llm_tokens", 0)
        main.append(record(row, score, calls=calls, tokens=tokens, seconds=seconds, components=comps, error=error))
        for signal in SIGNALS:
            if signal in comps and comps[signal] is not None:
                # calls of one signal alone are not separable from a combined run: left as None
                singles[signal].append(record(row, float(comps[signal]), calls=float("nan"), tokens=float("nan"),
                                              seconds=float("nan"), components={}))  # fmt: skip
        if progress and (i + 1) % 10 == 0:
            print(f"  tlm-{preset}: {i + 1}/{len(rows)}  ({seconds:.1f}s last)", flush=True)
    write_raw(raw_dir, f"tlm-{preset}", main)
    for signal, recs in singles.items():
        if len(recs) == len(rows):
            write_raw(raw_dir, f"tlm-{preset}:{signal}", recs)


# -- peers (run in their own venvs) ----------------------------------------------------------------


def uqlm_logprobs(row: dict[str, Any]) -> list[dict[str, Any]]:
    """Our stored logprobs in the OpenAI/LangChain shape uqlm reads."""
    return [{"token": t, "logprob": lp, "bytes": None,
             "top_logprobs": [{"token": a, "logprob": alp, "bytes": None} for a, alp in top]}
            for t, lp, top in row["logprobs"]]  # fmt: skip


def worker_uqlm(rows: list[dict[str, Any]], base_url: str, raw_dir: Path) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from langchain_openai import ChatOpenAI
    from uqlm import BlackBoxUQ, LLMPanel, WhiteBoxUQ

    from_messages = rows[0]["messages"][0]["content"]  # the system prompt the answers were made with
    llm = ChatOpenAI(model=MODEL_NAME, base_url=f"{base_url}/v1", api_key="unused", temperature=0.0,
                     max_tokens=64, timeout=120, max_retries=1)  # fmt: skip
    sampler = BlackBoxUQ(llm=llm, scorers=["exact_match"], system_prompt=from_messages, sampling_temperature=1.0)
    panel = LLMPanel(judges=[llm])
    # top-logprob scorers need every token's top-k list to be exactly k long: answers.jsonl stores 5
    white = WhiteBoxUQ(llm=llm, scorers=UQLM_WHITE_BOX, top_k_logprobs=5)
    names = ["uqlm-bsdetector-nonli", "uqlm-judge", "uqlm-exact_match", *[f"uqlm-{n}" for n in UQLM_WHITE_BOX]]
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}

    async def one(row: dict[str, Any]) -> None:
        prompt, response = row["question"], row["response"]
        c0, t0 = get_count(base_url)
        s0 = time.perf_counter()
        sampled = await sampler.generate_candidate_responses([prompt], num_responses=UQLM_SAMPLES, progress_bar=None)
        em = sampler.score(responses=[response], sampled_responses=sampled, show_progress_bars=False)
        s1 = time.perf_counter()
        c1, t1 = get_count(base_url)
        judged = await panel.score(prompts=[prompt], responses=[response], show_progress_bars=False)
        s2 = time.perf_counter()
        c2, t2 = get_count(base_url)
        wb = await white.score(logprobs_results=[uqlm_logprobs(row)], prompts=[prompt], responses=[response],
                               show_progress_bars=False)  # fmt: skip
        s3 = time.perf_counter()
        em_score = float(em.data["exact_match"][0])
        judge_raw = float(judged.data["judge_1"][0])
        # uqlm's judge gives NaN when it can't parse the verdict (after its own retries): count
        # that as uncertain (0.5), the same rule our engine applies to an unparseable verdict
        judge_score = 0.5 if math.isnan(judge_raw) else judge_raw
        samples = {"calls": c1 - c0, "tokens": t1 - t0, "seconds": s1 - s0}
        judge = {"calls": c2 - c1, "tokens": t2 - t1, "seconds": s2 - s1}
        comps = {"exact_match": em_score, "judge_1": judge_score, "judge_raw": judge_raw, "sampled": sampled[0]}
        total_w = sum(BSD_WEIGHTS.values())
        bsd = (BSD_WEIGHTS["exact_match"] * em_score + BSD_WEIGHTS["judge_1"] * judge_score) / total_w
        out["uqlm-bsdetector-nonli"].append(
            record(
                row,
                bsd,
                calls=samples["calls"] + judge["calls"],
                tokens=samples["tokens"] + judge["tokens"],
                seconds=samples["seconds"] + judge["seconds"],
                components=comps,
            )
        )
        out["uqlm-judge"].append(record(row, judge_score, **judge))
        out["uqlm-exact_match"].append(record(row, em_score, **samples))
        for name in UQLM_WHITE_BOX:
            value = wb.data[name][0]
            value = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
            out[f"uqlm-{name}"].append(record(row, value, seconds=(s3 - s2) / len(UQLM_WHITE_BOX)))

    async def all_rows() -> None:  # one event loop: LangChain's async client is bound to it
        for i, row in enumerate(rows):
            try:
                await one(row)
            except Exception as exc:
                for name in names:
                    if len(out[name]) == i + 1:
                        out[name].pop()
                    out[name].append(record(row, None, error=f"{type(exc).__name__}: {exc}"))
            if (i + 1) % 10 == 0:
                print(f"  uqlm: {i + 1}/{len(rows)}", flush=True)

    asyncio.run(all_rows())
    for name, recs in out.items():
        write_raw(raw_dir, name, recs)


def worker_oss_tlm(preset: str, rows: list[dict[str, Any]], base_url: str, raw_dir: Path) -> None:
    import logging

    logging.disable(logging.WARNING)
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    # trustworthy-llm 0.0.3 passes the request's model/api_base only to the reference completion;
    # its self-reflection and consistency calls use its settings' default provider, read from
    # the environment (DEFAULT_MODEL, OPENAI_API_KEY) with litellm's OPENAI_API_BASE. MAX_TOKENS
    # (default 512) is capped at OSS_TLM_MAX_TOKENS: SmolLM2 rambles to the cap at 512.
    os.environ.update({"DEFAULT_MODEL": f"openai/{MODEL_NAME}", "DEFAULT_PROVIDER": "openai",
                       "OPENAI_API_KEY": "unused", "DEFAULT_API_KEY": "unused",
                       "OPENAI_API_BASE": f"{base_url}/v1", "OPENAI_BASE_URL": f"{base_url}/v1",
                       "MAX_TOKENS": str(OSS_TLM_MAX_TOKENS)})  # fmt: skip
    from tlm import TLM
    from tlm.config.schema import Config

    tlm = TLM(config=Config(quality_preset=preset, api_base=f"{base_url}/v1", api_key="unused"))
    out = []
    for i, row in enumerate(rows):
        logprobs = row["logprobs"]
        perplexity = math.exp(sum(lp for _, lp, _ in logprobs) / len(logprobs)) if logprobs else None
        completion = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": MODEL_NAME,
                      "choices": [{"index": 0, "finish_reason": row["finish_reason"],
                                   "message": {"role": "assistant", "content": row["response"]}}]}  # fmt: skip
        response: dict[str, Any] = {"chat_completion": completion}
        if perplexity is not None:
            response["perplexity"] = perplexity
        c0, t0 = get_count(base_url)
        start = time.perf_counter()
        try:
            result = tlm.score(response=response, messages=row["messages"], model=f"openai/{MODEL_NAME}",
                               max_tokens=OSS_TLM_MAX_TOKENS)  # fmt: skip
            score = result.get("trustworthiness_score")
            score = None if score is None or math.isnan(score) else float(score)
            error = None
            comps = json.loads(json.dumps({k: v for k, v in result.items() if k != "response"}, default=str))
        except Exception as exc:
            score, error, comps = None, f"{type(exc).__name__}: {exc}", {}
        seconds = time.perf_counter() - start
        c1, t1 = get_count(base_url)
        out.append(record(row, score, calls=c1 - c0, tokens=t1 - t0, seconds=seconds, components=comps, error=error))
        if (i + 1) % 10 == 0:
            print(f"  oss-tlm-{preset}: {i + 1}/{len(rows)}", flush=True)
    write_raw(raw_dir, f"oss-tlm-{preset}", out)


def run_peer(unit: str, args: argparse.Namespace) -> None:
    """Serve the embedded model (counting requests) and run the peer's worker in its venv."""
    from tlm_hooks.local import get_default_model
    from tlm_hooks.server import ServerThread, create_app

    python = BENCH_TLM_PY if unit.startswith("oss-tlm") else BENCH_PY
    if not python.exists():
        raise SystemExit(f"{unit}: {python} is missing; see benchmarks/README.md for the venv setup")
    counter = CountingModel(get_default_model())
    with ServerThread(counting_app(create_app(counter), counter)) as server:
        cmd = [str(python), __file__, "--worker", unit, "--server", server.base_url, "--answers", str(args.answers),
               "--raw-dir", str(args.raw_dir)]  # fmt: skip
        if args.limit is not None:
            cmd += ["--limit", str(args.limit)]
        cmd += ["--stride", str(args.stride)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        code = subprocess.call(cmd, env=env)
        if code:
            print(f"  {unit}: worker exited with {code}", flush=True)


# -- report ----------------------------------------------------------------------------------------


def summarize(raw: dict[str, list[dict[str, Any]]], n_boot: int) -> dict[str, dict[str, Any]]:
    summary = {}
    for config, recs in raw.items():
        ok = [r for r in recs if r["score"] is not None and not math.isnan(r["score"])]
        if not ok:
            summary[config] = {
                "n": 0,
                "failed": len(recs),
                "error": next((r["error"] for r in recs if r["error"]), None),
            }
            continue
        scores = [r["score"] for r in ok]
        labels = [bool(r["correct"]) for r in ok]

        def mean(key: str, ok: list[dict[str, Any]] = ok) -> float | None:
            values = [float(r[key]) for r in ok if r.get(key) is not None]
            values = [v for v in values if not math.isnan(v)]
            return sum(values) / len(values) if values else None

        lo, hi = bootstrap_auroc(scores, labels, n=n_boot)
        summary[config] = {
            "n": len(ok), "failed": len(recs) - len(ok), "accuracy": sum(labels) / len(labels),
            "auroc": auroc(scores, labels), "auroc_ci": [lo, hi], "top80_accuracy": top_accuracy(scores, labels),
            "calls": mean("calls"), "tokens": mean("tokens"), "seconds": mean("seconds"),
        }  # fmt: skip
    return summary


def fmt(value: Any, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, spec)


def markdown_table(summary: dict[str, dict[str, Any]]) -> str:
    lines = ["| configuration | n | AUROC [95% CI] | acc. of top 80% | LLM calls / score | tokens / score | s / score |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    ranked = sorted(summary.items(), key=lambda kv: -(kv[1].get("auroc") or -1))
    for config, s in ranked:
        if not s.get("n"):
            lines.append(f"| {config} | 0 | failed: {s.get('error')} | | | | |")
            continue
        lo, hi = s["auroc_ci"]
        lines.append(
            f"| {config} | {s['n']} | {fmt(s['auroc'])} [{fmt(lo)}, {fmt(hi)}] | {fmt(s['top80_accuracy'])} "
            f"(all: {fmt(s['accuracy'])}) | {fmt(s['calls'], '.1f')} | {fmt(s['tokens'], '.0f')} | {fmt(s['seconds'], '.2f')} |"
        )
    return "\n".join(lines)


def plot(raw: dict[str, list[dict[str, Any]]], path: Path, configs: Sequence[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c for c in (configs or sorted(raw)) if c in raw and any(r["score"] is not None for r in raw[c])]
    cols = 3
    rows_n = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 2.6 * rows_n), squeeze=False)
    for ax, name in zip(list(axes.flat)[: len(names)], names, strict=True):
        ok = [r for r in raw[name] if r["score"] is not None and not math.isnan(r["score"])]
        good = [r["score"] for r in ok if r["correct"]]
        bad = [r["score"] for r in ok if not r["correct"]]
        bins = [i / 20 for i in range(21)]
        ax.hist(good, bins=bins, alpha=0.6, color="tab:green", label=f"correct ({len(good)})", density=True)
        ax.hist(bad, bins=bins, alpha=0.6, color="tab:red", label=f"incorrect ({len(bad)})", density=True)
        value = auroc([r["score"] for r in ok], [r["correct"] for r in ok])
        ax.set_title(f"{name}  AUROC {value:.3f}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("Trust score distributions, correct vs incorrect answers (SmolLM2-135M, same answers)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"plot -> {path}")


def report(args: argparse.Namespace) -> None:
    raw = read_raw(args.raw_dir)
    if args.configs:
        raw = {k: v for k, v in raw.items() if any(k == c or k.startswith(c + ":") for c in args.configs)}
    # compare on the answers every configuration scored
    common = set.intersection(*({r["id"] for r in recs} for recs in raw.values())) if raw else set()
    if args.common_only:
        raw = {k: [r for r in v if r["id"] in common] for k, v in raw.items()}
    summary = summarize(raw, args.bootstrap)
    table = markdown_table(summary)
    print(table)
    diffs = {}
    for ours in ("tlm-medium", "tlm-base"):
        for other in raw:
            if other == ours or ours not in raw:
                continue
            a = {r["id"]: r for r in raw[ours] if r["score"] is not None}
            b = {r["id"]: r for r in raw[other] if r["score"] is not None and not math.isnan(r["score"])}
            ids = sorted(set(a) & set(b))
            if len(ids) < 10:
                continue
            point, lo, hi = paired_diff_ci([a[i]["score"] for i in ids], [b[i]["score"] for i in ids],
                                           [bool(a[i]["correct"]) for i in ids], n=args.bootstrap)  # fmt: skip
            diffs[f"{ours} - {other}"] = {"n": len(ids), "diff": point, "ci": [lo, hi]}
    if diffs:
        print("\n| AUROC difference (paired) | n | diff [95% CI] |\n| --- | ---: | --- |")
        for key, d in sorted(diffs.items()):
            print(f"| {key} | {d['n']} | {d['diff']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "paired_differences": diffs, "table": table}, indent=2))
    print(f"results -> {args.out}")
    if args.plot:
        try:
            plot(raw, args.plot, args.plot_configs)
        except ImportError:
            print("matplotlib is not installed here: run the report from .venv-bench for the plot")


# -- signal weights --------------------------------------------------------------------------------


def fit_weights(config: str, raw_dir: Path) -> None:
    """Fit signal weights and a calibration map on a configuration's components with the public
    path (``tlm_hooks.calibrate``: non-negative logistic weights, Platt or isotonic map chosen by
    cross-validated log-loss), print its report, and compare AUROC per kind of question."""
    from tlm_hooks import calibrate
    from tlm_hooks.calibration.report import format_report

    recs = [r for r in load_jsonl(raw_dir / f"{config.replace(':', '__')}.jsonl") if r["score"] is not None]
    if not recs:
        raise SystemExit(f"no scored {config} records in {raw_dir}")
    rows = [{"trustworthiness_score": r["score"], "log": {"per_component_score": r["components"]}} for r in recs]
    profile = calibrate(rows, [bool(r["correct"]) for r in recs], judge=f"local:{MODEL_NAME}",
                        quality_preset=config.removeprefix("tlm-").split(":")[0], source=config)  # fmt: skip
    print(format_report(profile))
    print("\n| kind | n | engine's score | fitted weights (in-sample) |\n| --- | ---: | ---: | ---: |")
    by_kind: dict[str, list[int]] = {}
    for i, r in enumerate(recs):
        by_kind.setdefault(r["kind"], []).append(i)
    for kind, idx in [("all", list(range(len(recs)))), *sorted(by_kind.items())]:
        labels = [bool(recs[i]["correct"]) for i in idx]
        own = auroc([recs[i]["score"] for i in idx], labels)
        fitted = auroc([profile.apply(rows[i]) for i in idx], labels)
        print(f"| {kind} | {len(idx)} | {own:.3f} | {fitted:.3f} |")


def tune_token(rows: list[dict[str, Any]]) -> None:
    """AUROC of the engine's token-probability signal for several min-token shares, on all answers
    (no LLM call: the stored logprobs), fitted on even rows and validated on odd ones."""
    import importlib

    tp = importlib.import_module("tlm_hooks.scorers.signals.token_probability")

    requests = [score_request(r) for r in rows]
    labels = [bool(r["correct"]) for r in rows]
    original = tp.MIN_TOKEN_WEIGHT
    print("| MIN_TOKEN_WEIGHT | AUROC all | AUROC fit half | AUROC val half |\n| ---: | ---: | ---: | ---: |")
    try:
        for w in (0.0, 0.25, 0.5, 0.75, 1.0):
            tp.MIN_TOKEN_WEIGHT = w
            scores = [tp.token_probability(q.response_logprobs) or 0.0 for q in requests]
            print(f"| {w} | {auroc(scores, labels):.3f} | {auroc(scores[0::2], labels[0::2]):.3f} "
                  f"| {auroc(scores[1::2], labels[1::2]):.3f} |")  # fmt: skip
    finally:
        tp.MIN_TOKEN_WEIGHT = original


# -- main ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs", nargs="*", default=[], help="run units (see the module doc); with --report: a filter"
    )
    parser.add_argument("--limit", type=int, default=None, help="score N answers evenly spaced over the file")
    parser.add_argument("--stride", type=int, default=1, help="then keep every K-th of those (a nested subset)")
    parser.add_argument("--answers", type=Path, default=DEFAULT_ANSWERS)
    parser.add_argument("--raw-dir", type=Path, default=DEFAULT_RAW)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--report", action="store_true", help="summarise the raw results (table, JSON, plot)")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    parser.add_argument("--plot-configs", nargs="*", default=None)
    parser.add_argument("--common-only", action="store_true", help="report only answers every config scored")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--fit-weights", metavar="CONFIG", default=None)
    parser.add_argument("--tune-token", action="store_true", help="offline sweep of the token-probability blend")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--server", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.fit_weights:
        fit_weights(args.fit_weights, args.raw_dir)
        return
    if args.report:
        report(args)
        return
    rows = select(load_jsonl(args.answers), args.limit)[:: args.stride]
    if args.tune_token:
        tune_token(rows)
        return
    if args.worker:
        if args.worker == "uqlm":
            worker_uqlm(rows, args.server, args.raw_dir)
        elif args.worker.startswith("oss-tlm-"):
            worker_oss_tlm(args.worker.removeprefix("oss-tlm-"), rows, args.server, args.raw_dir)
        else:
            raise SystemExit(f"unknown worker {args.worker}")
        return
    units: dict[str, Callable[[], None]] = {}
    for unit in args.configs:
        if unit == "logprob":
            units[unit] = functools.partial(run_logprob, rows, args.raw_dir)
        elif unit.startswith("tlm-"):
            units[unit] = functools.partial(run_tlm, unit.removeprefix("tlm-"), rows, args.raw_dir)
        elif unit == "uqlm" or unit.startswith("oss-tlm-"):
            units[unit] = functools.partial(run_peer, unit, args)
        else:
            raise SystemExit(f"unknown configuration {unit!r}")
    for unit, run in units.items():
        print(f"== {unit} on {len(rows)} answers", flush=True)
        start = time.perf_counter()
        run()
        print(f"== {unit} done in {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
