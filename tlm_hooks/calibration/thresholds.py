"""Thresholds from targets (precision, recall or flag rate) and what to expect at them.

Scores at or above a threshold are trusted, below it flagged (``TrustPolicy``'s rule).
*precision*: the share of trusted answers that are acceptable; *recall*: the share of acceptable
answers that are trusted; *flag rate*: the share of all answers flagged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import CalibrationError

__all__ = ["Threshold", "Estimate", "METRICS", "select_threshold", "rates_at", "estimate", "target_of"]

METRICS: tuple[str, ...] = ("precision", "recall", "flag_rate")
SPREAD = (0.05, 0.95)  # the interval: the middle 90% of held-out folds


@dataclass(frozen=True)
class Estimate:
    """A cross-validated rate: ``mean`` over held-out folds and the middle 90% of them
    (``low``–``high``); ``folds`` counts the folds it is over."""

    mean: float
    low: float
    high: float
    folds: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": round(self.mean, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "folds": self.folds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        return cls(float(data["mean"]), float(data["low"]), float(data["high"]), int(data["folds"]))


class Threshold(float):
    """A threshold on the calibrated score: a float, so ``TrustPolicy(threshold=t)`` takes it as is.

    ``target``: what it was chosen for (e.g. ``{"precision": 0.9}``); ``expected``: precision,
    recall and flag rate of the same choice on held-out rows (:class:`Estimate`, cross-validated);
    ``in_sample``: the rates at this threshold on all labelled rows (optimistic).
    """

    target: Mapping[str, float]
    expected: Mapping[str, Estimate]
    in_sample: Mapping[str, float]

    def __new__(
        cls,
        value: float,
        target: Mapping[str, float],
        expected: Mapping[str, Estimate],
        in_sample: Mapping[str, float],
    ) -> Threshold:
        made = super().__new__(cls, round(value, 6))
        made.target = dict(target)
        made.expected = dict(expected)
        made.in_sample = {k: round(v, 4) for k, v in in_sample.items()}
        return made

    def __repr__(self) -> str:
        ((metric, goal),) = self.target.items()
        seen = ", ".join(f"{m}={e}" for m, e in self.expected.items())
        return f"Threshold({float(self):.4f} for {metric}={goal:g}; expected {seen})"

    def __reduce__(self) -> Any:
        return (Threshold, (float(self), self.target, self.expected, self.in_sample))

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": dict(self.target),
            "threshold": round(float(self), 6),
            "expected": {m: e.to_dict() for m, e in self.expected.items()},
            "in_sample": {m: round(v, 4) for m, v in self.in_sample.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Threshold:
        return cls(
            float(data["threshold"]),
            {str(k): float(v) for k, v in data["target"].items()},
            {str(k): Estimate.from_dict(v) for k, v in data.get("expected", {}).items()},
            {str(k): float(v) for k, v in data.get("in_sample", {}).items()},
        )


def target_of(precision: float | None, recall: float | None, flag_rate: float | None) -> tuple[str, float]:
    """The one target given, checked: a number in (0, 1] (flag rate: [0, 1])."""
    given = {m: v for m, v in zip(METRICS, (precision, recall, flag_rate), strict=True) if v is not None}
    if len(given) != 1:
        raise CalibrationError(f"give exactly one of precision=, recall=, flag_rate=; got {given or 'none'}")
    ((metric, value),) = given.items()
    low_ok = value >= 0 if metric == "flag_rate" else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low_ok and value <= 1):
        allowed = "a number from 0 to 1" if metric == "flag_rate" else "a number above 0, up to 1"
        raise CalibrationError(f"invalid {metric}={value!r}: allowed {allowed}")
    return metric, float(value)


def rates_at(scores: Sequence[float], labels: Sequence[float], threshold: float) -> dict[str, float]:
    """Precision, recall and flag rate when scores below ``threshold`` are flagged (precision is
    NaN when nothing is trusted, recall NaN when nothing is acceptable)."""
    kept = [y for s, y in zip(scores, labels, strict=True) if s >= threshold]
    good = sum(labels)
    return {
        "precision": sum(kept) / len(kept) if kept else float("nan"),
        "recall": sum(kept) / good if good else float("nan"),
        "flag_rate": 1 - len(kept) / len(scores) if scores else float("nan"),
    }


def select_threshold(scores: Sequence[float], labels: Sequence[float], metric: str, goal: float) -> float | None:
    """The threshold meeting ``metric`` >= ``goal`` (flag rate: <= ``goal``) that flags the fewest
    answers (precision) or the most (recall, flag rate) — i.e. the loosest threshold for precision,
    the strictest for the others. ``None`` when no threshold reaches a precision goal."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    n, good = len(order), sum(labels)
    kept = acceptable = 0.0
    best: float | None = None
    i = 0
    while i < n:  # walk thresholds from the highest score down; ties are kept together
        t = scores[order[i]]
        while i < n and scores[order[i]] == t:
            kept += 1
            acceptable += labels[order[i]]
            i += 1
        if metric == "precision":
            if acceptable / kept >= goal - 1e-12:
                best = t  # keep going: a lower threshold that still meets the goal flags fewer
        elif metric == "recall":
            if good and acceptable / good >= goal - 1e-12:
                return t
        elif metric == "flag_rate":
            if 1 - kept / n <= goal + 1e-12:
                return t
        else:
            raise ValueError(f"unknown metric {metric!r}")
    return best


def estimate(values: Sequence[float]) -> Estimate:
    """Mean and middle-90% interval of per-fold values (NaN folds left out)."""
    ok = sorted(v for v in values if not math.isnan(v))
    if not ok:
        nan = float("nan")
        return Estimate(nan, nan, nan, 0)

    def quantile(q: float) -> float:
        pos = q * (len(ok) - 1)
        lo = math.floor(pos)
        hi = min(len(ok) - 1, lo + 1)
        return ok[lo] + (ok[hi] - ok[lo]) * (pos - lo)

    # rounded as saved, so a profile read back compares equal to the one written
    return Estimate(round(sum(ok) / len(ok), 4), round(quantile(SPREAD[0]), 4), round(quantile(SPREAD[1]), 4), len(ok))
