"""The benchmark's metric code: AUROC (with ties), bootstrap interval, top-80% accuracy, subsets."""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("tlm_bench_scoring", ROOT / "benchmarks" / "scoring.py")
assert _spec is not None and _spec.loader is not None
scoring = importlib.util.module_from_spec(_spec)
sys.modules["tlm_bench_scoring"] = scoring
_spec.loader.exec_module(scoring)


def brute_auroc(scores: list[float], labels: list[bool]) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auroc_known_values() -> None:
    assert scoring.auroc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert scoring.auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert scoring.auroc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5
    assert math.isnan(scoring.auroc([0.1, 0.2], [True, True]))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_pairwise_definition_with_ties(seed: int) -> None:
    rng = random.Random(seed)
    scores = [round(rng.random(), 1) for _ in range(60)]  # many ties
    labels = [rng.random() < 0.4 for _ in range(60)]
    assert scoring.auroc(scores, labels) == pytest.approx(brute_auroc(scores, labels))


def test_bootstrap_interval_contains_point_and_is_ordered() -> None:
    rng = random.Random(1)
    labels = [rng.random() < 0.5 for _ in range(200)]
    scores = [rng.random() + (0.3 if y else 0.0) for y in labels]
    point = scoring.auroc(scores, labels)
    lo, hi = scoring.bootstrap_auroc(scores, labels, n=200)
    assert lo <= point <= hi
    assert 0.5 < lo < hi < 1.0


def test_paired_difference_of_identical_scorers_is_zero() -> None:
    labels = [True, False] * 20
    scores = [i / 40 for i in range(40)]
    point, lo, hi = scoring.paired_diff_ci(scores, scores, labels, n=50)
    assert point == lo == hi == 0.0


def test_top_accuracy_keeps_most_trusted() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.1]
    labels = [True, True, True, True, False]
    assert scoring.top_accuracy(scores, labels, 0.8) == 1.0
    assert scoring.top_accuracy(scores[::-1], labels, 0.8) == pytest.approx(0.75)


def test_select_spreads_over_the_file() -> None:
    rows = [{"id": i} for i in range(311)]
    picked = scoring.select(rows, 100)
    assert len(picked) == 100 and picked[0]["id"] == 0 and picked[-1]["id"] > 300
    assert len({r["id"] for r in picked}) == 100
    assert scoring.select(rows, None) == rows
