"""Does calibration make the engine's score mean what it says? Nested cross-validation on the QA set.

The engine's per-signal scores for each answer of ``benchmarks/qa/answers.jsonl`` come from
``benchmarks/results/raw/tlm-<preset>.jsonl`` (what ``scoring.py --configs tlm-<preset>`` writes);
answers missing there are scored first with ``TLMScorer(preset, judge=LocalBackend())`` and
appended, so an interrupted run continues (``base`` needs no model call: token probability from
the stored logprobs).

Then, repeated stratified k-fold (``--folds`` x ``--repeats``): on each outer split
``tlm_hooks.calibrate`` is fitted on the training answers only (its own inner cross-validation
picks the map and states the threshold intervals) and applied to the held-out answers. Reported:

- ECE, Brier, log-loss and AUROC of the held-out calibrated scores vs the engine's raw score
  (pooled over the folds of the first repeat: every answer scored once, by a profile that never
  saw it);
- for precision targets 0.8 / 0.9: the threshold ``threshold_for`` picks on the training answers,
  the held-out precision and flag rate at it, and in how many outer folds the held-out precision
  lies inside the interval the profile stated.

    .venv/bin/python benchmarks/calibration.py --preset base
    .venv/bin/python benchmarks/calibration.py --preset low --limit 150     # scores with the embedded model
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from scoring import DEFAULT_ANSWERS, DEFAULT_RAW, load_jsonl, record, score_request, select  # noqa: E402

TARGETS = (0.8, 0.9)
COMMITTED_SCORES = ROOT / "benchmarks" / "qa" / "scores"
JUDGE = "local:smollm2-135m-instruct"  # what the engine reports for the embedded judge


# A second judge configuration on the same embedded model, for "do profiles differ by judge?":
# its samples are drawn hotter and its verdicts are asked under a reviewer's system message, so
# both the consistency and the reflection signal behave differently. Name: "<preset>.reviewer".
REVIEWER_SYSTEM = (
    "You review answers written by others. Most answers you see contain mistakes; "
    "accept one only when you have checked it yourself."
)
REVIEWER_SAMPLE_TEMPERATURE = 1.0


class ReviewerJudge:
    """``judge`` with the reviewer configuration: verdict calls (the engine reads their logprobs;
    no system message of their own) get ``REVIEWER_SYSTEM``; sampling calls (no logprobs asked)
    run at ``REVIEWER_SAMPLE_TEMPERATURE``."""

    def __init__(self, judge: Any) -> None:
        self.judge = judge
        self.name = f"{judge.name}+reviewer"

    async def acomplete(self, messages: Any, **kwargs: Any) -> Any:
        if not kwargs.get("logprobs"):
            kwargs["temperature"] = REVIEWER_SAMPLE_TEMPERATURE
        elif not any(m.get("role") == "system" for m in messages):
            messages = [{"role": "system", "content": REVIEWER_SYSTEM}, *messages]
        return await self.judge.acomplete(messages, **kwargs)


JUDGES = {"": lambda judge: judge, "reviewer": ReviewerJudge}


def scored_rows(
    config: str, rows: list[dict[str, Any]], raw_dir: Path, cached_only: bool, threads: int
) -> list[dict[str, Any]]:
    """The engine's result for each answer, from the cache or scored now (and cached).

    ``config`` is a preset, or ``<preset>.<judge>`` for a judge configuration of ``JUDGES``."""
    preset, _, judge_config = config.partition(".")
    if judge_config not in JUDGES:
        raise SystemExit(f"unknown judge configuration {judge_config!r} in {config!r}: allowed {sorted(JUDGES)[1:]}")
    path = raw_dir / f"tlm-{config}.jsonl"
    # scores kept in the repository (so tables rebuild without a model), then this machine's
    committed = load_jsonl(COMMITTED_SCORES / path.name)
    cached = {r["id"]: r for r in [*committed, *load_jsonl(path)] if r.get("score") is not None}
    missing = [] if cached_only else [row for row in rows if row["id"] not in cached]
    random.Random(0).shuffle(missing)  # so the answers scored by an interrupted run are a spread sample
    if missing:
        from tlm_hooks.llm import LocalBackend
        from tlm_hooks.local import LocalModel
        from tlm_hooks.scorers.tlm import TLMScorer

        # one thread: on a shared machine llama.cpp's spinning threads lose more than they gain
        judge = JUDGES[judge_config](LocalBackend(LocalModel(n_threads=threads)))
        scorer = TLMScorer(quality_preset=preset, judge=judge, cache=False)
        raw_dir.mkdir(parents=True, exist_ok=True)
        print(f"scoring {len(missing)} answers with tlm-{config} (cached in {path})", flush=True)
        with path.open("a", encoding="utf-8") as fh:
            for i, row in enumerate(missing):
                start = time.perf_counter()
                result = scorer.score(score_request(row))
                rec = record(row, result.trustworthiness_score, seconds=time.perf_counter() - start,
                             components=dict(result.components), error=result.error)  # fmt: skip
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
                cached[row["id"]] = rec
                if (i + 1) % 10 == 0:
                    print(f"  {i + 1}/{len(missing)}", flush=True)
    return [cached[row["id"]] for row in rows if row["id"] in cached]


def as_result(rec: dict[str, Any]) -> dict[str, Any]:
    """A scored answer as ``get_trustworthiness_score`` returns it with ``per_component_score``."""
    return {"trustworthiness_score": rec["score"], "log": {"per_component_score": rec["components"]}}


def evaluate(recs: list[dict[str, Any]], folds: int, repeats: int) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedKFold

    from tlm_hooks import calibrate
    from tlm_hooks.calibration import CalibrationError
    from tlm_hooks.calibration.metrics import auroc, brier, ece, log_loss
    from tlm_hooks.calibration.thresholds import rates_at

    rows = [as_result(r) for r in recs]
    labels = [float(bool(r["correct"])) for r in recs]
    raw = [float(r["score"]) for r in recs]
    pooled = [math.nan] * len(rows)
    maps: list[str] = []
    weights: list[dict[str, float]] = []
    checks: dict[float, list[dict[str, float]]] = {t: [] for t in TARGETS}
    unreachable = {t: 0 for t in TARGETS}
    for repeat in range(repeats):
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=100 + repeat)
        for train, test in splitter.split(labels, labels):
            profile = calibrate([rows[i] for i in train], [labels[i] for i in train])
            held = [profile.apply(rows[i]) for i in test]
            y_test = [labels[i] for i in test]
            if repeat == 0:
                for i, s in zip(test, held, strict=True):
                    pooled[i] = s
                maps.append(profile.score_map.kind)
                weights.append(dict(profile.combination.weights))
            for target in TARGETS:
                try:
                    t = profile.threshold_for(precision=target)
                except CalibrationError:
                    unreachable[target] += 1
                    continue
                rates = rates_at(held, y_test, t)
                e = t.expected["precision"]
                inside = not math.isnan(rates["precision"]) and e.low <= rates["precision"] <= e.high
                checks[target].append({"threshold": float(t), "precision": rates["precision"],
                                       "flag_rate": rates["flag_rate"], "expected": e.mean, "low": e.low,
                                       "high": e.high, "inside": float(inside)})  # fmt: skip

    def quality(scores: list[float]) -> dict[str, float]:
        return {"auroc": auroc(scores, labels), "ece": ece(scores, labels), "brier": brier(scores, labels),
                "log_loss": log_loss(scores, labels)}  # fmt: skip

    # ECE is positive even for a perfectly calibrated score on a finite set: the ECE of labels drawn
    # from the calibrated scores themselves is the floor to compare with
    draw = random.Random(7)
    floor = mean([ece(pooled, [float(draw.random() < p) for p in pooled]) for _ in range(200)])
    return {"n": len(rows), "accuracy": sum(labels) / len(labels), "before": quality(raw), "after": quality(pooled),
            "ece_floor": floor,
            "maps": maps, "weights": weights, "checks": checks, "unreachable": unreachable,
            "outer_folds": folds * repeats}  # fmt: skip


def cross(recs: dict[str, list[dict[str, Any]]], folds: int, repeats: int) -> dict[tuple[str, str], dict[str, float]]:
    """Each judge configuration's profile applied to each configuration's held-out answers.

    ``recs`` maps a configuration (e.g. ``tlm-base``, ``tlm-medium``) to its scored answers; only
    answers every configuration scored are used, with the same splits for all. Returns the
    held-out log-loss, Brier, ECE and AUROC by (profile fitted on, answers scored by), pooled over
    the folds of every repeat."""
    from sklearn.model_selection import StratifiedKFold

    from tlm_hooks import calibrate
    from tlm_hooks.calibration.metrics import auroc, brier, ece, log_loss

    common = set.intersection(*({r["id"] for r in v} for v in recs.values()))
    by_config = {name: {r["id"]: r for r in v if r["id"] in common} for name, v in recs.items()}
    ids = sorted(common)
    labels = [float(bool(next(iter(by_config.values()))[i]["correct"])) for i in ids]
    rows = {name: [as_result(by_config[name][i]) for i in ids] for name in recs}
    scores: dict[tuple[str, str], list[float]] = {(a, b): [] for a in recs for b in recs}
    truth: list[float] = []
    for repeat in range(repeats):
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=200 + repeat)
        for train, test in splitter.split(labels, labels):
            profiles = {a: calibrate([rows[a][i] for i in train], [labels[i] for i in train]) for a in recs}
            truth.extend(labels[i] for i in test)
            for a, profile in profiles.items():
                for b in recs:
                    scores[(a, b)].extend(profile.apply(rows[b][i]) for i in test)
    return {
        key: {
            "log_loss": log_loss(v, truth),
            "brier": brier(v, truth),
            "ece": ece(v, truth),
            "auroc": auroc(v, truth),
            "n": len(ids),
        }  # fmt: skip
        for key, v in scores.items()
    }


def print_cross(result: dict[tuple[str, str], dict[str, float]]) -> None:
    n = next(iter(result.values()))["n"]
    print(f"\n### Profiles across judge configurations ({n} answers scored by each; held-out, pooled)\n")
    print("| profile fitted on | applied to answers scored by | log-loss | Brier | ECE | AUROC |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for (fitted, applied), q in sorted(result.items(), key=lambda kv: (kv[0][1], kv[0][0] != kv[0][1])):
        mark = "**" if fitted == applied else ""
        print(f"| {mark}{fitted}{mark} | {applied} | {q['log_loss']:.3f} | {q['brier']:.3f} | {q['ece']:.3f} | "
              f"{q['auroc']:.3f} |")  # fmt: skip


def mean(values: list[float]) -> float:
    ok = [v for v in values if not math.isnan(v)]
    return sum(ok) / len(ok) if ok else math.nan


def print_report(preset: str, result: dict[str, Any]) -> None:
    print(f"\n### tlm-{preset}: {result['n']} answers ({result['accuracy']:.0%} correct), "
          f"{result['outer_folds']} outer folds\n")  # fmt: skip
    print("| held-out | AUROC | ECE | Brier | log-loss |\n| --- | ---: | ---: | ---: | ---: |")
    for name in ("before", "after"):
        q = result[name]
        label = "engine score (raw)" if name == "before" else "calibrated (profile fitted without the answer)"
        print(f"| {label} | {q['auroc']:.3f} | {q['ece']:.3f} | {q['brier']:.3f} | {q['log_loss']:.3f} |")
    print(f"\nECE of a perfectly calibrated score on {result['n']} answers (labels drawn from the calibrated "
          f"scores, mean of 200 draws): {result['ece_floor']:.3f}")  # fmt: skip
    kinds = {k: result["maps"].count(k) for k in sorted(set(result["maps"]))}
    print(f"\nmaps chosen (first repeat): {kinds}")
    for w in result["weights"]:
        print("weights:", {k: round(v, 2) for k, v in w.items()})
    print("\n| precision target | outer folds | threshold (mean) | held-out precision (mean) | stated (mean) "
          "[low, high] | held-out flag rate | held-out precision inside the stated interval |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for target, rows in result["checks"].items():
        if not rows:
            print(f"| {target} | 0 | unreachable in all folds | | | | |")
            continue
        inside = sum(r["inside"] for r in rows)
        print(f"| {target} | {len(rows)} (+{result['unreachable'][target]} unreachable) | "
              f"{mean([r['threshold'] for r in rows]):.3f} | {mean([r['precision'] for r in rows]):.3f} | "
              f"{mean([r['expected'] for r in rows]):.3f} [{mean([r['low'] for r in rows]):.3f}, "
              f"{mean([r['high'] for r in rows]):.3f}] | {mean([r['flag_rate'] for r in rows]):.3f} | "
              f"{inside:.0f}/{len(rows)} ({inside / len(rows):.0%}) |")  # fmt: skip


def calibrate_all(recs: list[dict[str, Any]], config: str, source: str) -> Any:
    """The profile fitted on every answer, valid for the embedded judge (in ``config``'s judge
    configuration) at ``config``'s preset."""
    from tlm_hooks import calibrate

    preset, _, judge_config = config.partition(".")
    judge = f"{JUDGE}+{judge_config}" if judge_config else JUDGE
    return calibrate([as_result(r) for r in recs], [bool(r["correct"]) for r in recs], judge=judge,
                     quality_preset=preset, task="default", source=source)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="base", help="the engine preset whose scores are calibrated; PRESET.reviewer: the reviewer judge configuration")
    parser.add_argument("--limit", type=int, default=None, help="N answers evenly spaced over the file")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the embedded model (1)")
    parser.add_argument("--cached-only", action="store_true", help="use only answers already scored")
    parser.add_argument("--score-only", action="store_true", help="score (and cache) the answers, no report")
    parser.add_argument("--answers", type=Path, default=DEFAULT_ANSWERS)
    parser.add_argument("--raw-dir", type=Path, default=DEFAULT_RAW)
    parser.add_argument("--pictures", type=Path, default=ROOT / "benchmarks",
                        help="where the full-data profile's reliability diagram and histogram go")  # fmt: skip
    parser.add_argument("--cross", nargs="+", metavar="PRESET", default=None,
                        help="only compare the profiles of these presets on each other's answers "
                             "(from the cache; e.g. --cross base medium)")  # fmt: skip
    parser.add_argument("--profile-out", type=Path, default=None,
                        help="also save the full-data profile here (with its evidence)")  # fmt: skip
    parser.add_argument("--rag", type=Path, default=None, metavar="RAW",
                        help="calibrate the trustworthiness scores of a rag/run.py raw file instead (label: grounded)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.rag:
        recs = [{"id": r["id"], "correct": r["label"] == "grounded", "score": r["trustworthiness"],
                 "components": r["components"]} for r in load_jsonl(args.rag) if r.get("trustworthiness") is not None]  # fmt: skip
        print_report(f"rag ({args.rag.name})", evaluate(recs, args.folds, args.repeats))
        return
    rows = select(load_jsonl(args.answers), args.limit)
    if args.cross:
        recs_by = {f"tlm-{p}": scored_rows(p, rows, args.raw_dir, True, args.threads) for p in args.cross}
        print_cross(cross(recs_by, args.folds, args.repeats))
        for name, recs in recs_by.items():
            profile = calibrate_all(recs, name.removeprefix("tlm-"), args.answers.name)
            print(f"{name} profile on all {len(recs)} answers: weights "
                  f"{ {k: round(v, 2) for k, v in profile.combination.weights.items()} }, map {profile.score_map.kind}")  # fmt: skip
        return
    recs = scored_rows(args.preset, rows, args.raw_dir, args.cached_only, args.threads)
    if args.score_only:
        return
    started = time.perf_counter()
    result = evaluate(recs, args.folds, args.repeats)
    print_report(args.preset, result)
    from tlm_hooks.calibration.plots import write_histogram, write_reliability
    from tlm_hooks.calibration.report import format_report

    profile = calibrate_all(recs, args.preset, args.answers.name)
    print(f"\nprofile fitted on all {len(recs)} answers:\n\n" + format_report(profile))
    stem = args.pictures / f"calibration_tlm-{args.preset}"
    print(f"\npictures -> {write_reliability(profile, str(stem) + '.reliability.png')}, "
          f"{write_histogram(profile, str(stem) + '.histogram.png')}")  # fmt: skip
    args.raw_dir.mkdir(parents=True, exist_ok=True)
    profile.save(args.raw_dir / f"calibration_tlm-{args.preset}.json")
    if args.profile_out:
        print(f"profile -> {profile.save(args.profile_out)}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
