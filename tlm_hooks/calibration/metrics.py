"""How good a score is against labels in [0, 1]: AUROC, ECE, Brier score, log-loss (plain Python)."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["auroc", "ece", "brier", "log_loss", "reliability", "ECE_BINS"]

ECE_BINS = 10


def auroc(scores: Sequence[float], labels: Sequence[float]) -> float:
    """P(an acceptable answer outscores an unacceptable one), ties half; labels >= 0.5 count as
    acceptable. NaN when one class is absent."""
    binary = [y >= 0.5 for y in labels]
    pos = sum(binary)
    neg = len(binary) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum = 0.0
    i = 0
    while i < len(order):  # average ranks over ties
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        rank = (i + j) / 2 + 1
        rank_sum += rank * sum(1 for k in order[i : j + 1] if binary[k])
        i = j + 1
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def reliability(
    scores: Sequence[float], labels: Sequence[float], bins: int = ECE_BINS
) -> list[tuple[float, float, int]]:
    """Per equal-width score bin that has rows: (mean score, mean label, rows)."""
    sums: list[list[float]] = [[0.0, 0.0, 0.0] for _ in range(bins)]
    for s, y in zip(scores, labels, strict=True):
        b = min(bins - 1, max(0, int(s * bins)))
        sums[b][0] += s
        sums[b][1] += y
        sums[b][2] += 1
    return [(s / n, y / n, int(n)) for s, y, n in sums if n]


def ece(scores: Sequence[float], labels: Sequence[float], bins: int = ECE_BINS) -> float:
    """Expected calibration error: the row-weighted mean |mean score − mean label| over
    ``bins`` equal-width score bins."""
    total = len(scores)
    return sum(n * abs(s - y) for s, y, n in reliability(scores, labels, bins)) / total if total else float("nan")


def brier(scores: Sequence[float], labels: Sequence[float]) -> float:
    """Mean squared difference between score and label."""
    return sum((s - y) ** 2 for s, y in zip(scores, labels, strict=True)) / len(scores) if scores else float("nan")


def log_loss(scores: Sequence[float], labels: Sequence[float], eps: float = 1e-6) -> float:
    """Mean cross-entropy of the labels under the scores (clipped to [eps, 1 − eps])."""
    total = 0.0
    for s, y in zip(scores, labels, strict=True):
        p = min(1 - eps, max(eps, s))
        total -= y * math.log(p) + (1 - y) * math.log(1 - p)
    return total / len(scores) if scores else float("nan")
