"""Monotone maps from a combined score to P(acceptable): Platt (logistic) and isotonic.

Applying a map is plain Python (no numpy), so a saved profile can be used where the fitting
libraries are not installed.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import CalibrationError

__all__ = ["ScoreMap", "PlattMap", "IsotonicMap", "MAP_KINDS", "map_from_dict"]

MAP_KINDS: tuple[str, ...] = ("platt", "isotonic")


@dataclass(frozen=True)
class PlattMap:
    """``P = 1 / (1 + exp(-(slope * score + intercept)))`` with ``slope >= 0`` (never decreasing)."""

    slope: float
    intercept: float
    kind = "platt"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slope) and math.isfinite(self.intercept)) or self.slope < 0:
            raise CalibrationError(f"a Platt map needs a finite slope >= 0 and intercept, got {self}")

    def __call__(self, score: float) -> float:
        z = self.slope * score + self.intercept
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "slope": self.slope, "intercept": self.intercept}


@dataclass(frozen=True)
class IsotonicMap:
    """A non-decreasing step-and-ramp function through the points (``x[i]``, ``y[i]``): linear in
    between, flat beyond the ends (scikit-learn's isotonic regression with clipping)."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    kind = "isotonic"

    def __post_init__(self) -> None:
        if not self.x or len(self.x) != len(self.y):
            raise CalibrationError("an isotonic map needs as many y as x values, at least one")
        if not (_rising(self.x) and _rising(self.y)):
            raise CalibrationError("an isotonic map's x and y values must both be non-decreasing")
        if not all(0.0 <= v <= 1.0 for v in self.y):
            raise CalibrationError("an isotonic map's y values must lie in [0, 1]")

    def __call__(self, score: float) -> float:
        x, y = self.x, self.y
        if score <= x[0]:
            return y[0]
        if score >= x[-1]:
            return y[-1]
        i = bisect.bisect_right(x, score)  # x[i-1] <= score < x[i]
        x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (score - x0) / (x1 - x0)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": list(self.x), "y": list(self.y)}


ScoreMap = PlattMap | IsotonicMap


def map_from_dict(data: Mapping[str, Any]) -> ScoreMap:
    """The map a profile's ``map`` object describes."""
    kind = data.get("kind")
    try:
        if kind == "platt":
            return PlattMap(float(data["slope"]), float(data["intercept"]))
        if kind == "isotonic":
            return IsotonicMap(_floats(data["x"]), _floats(data["y"]))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CalibrationError):
            raise
        raise CalibrationError(f"the profile's {kind} map is malformed: {exc!r}") from None
    raise CalibrationError(f"unknown map kind {kind!r}: allowed {', '.join(MAP_KINDS)}")


def _rising(values: Sequence[float]) -> bool:
    return all(values[i] <= values[i + 1] for i in range(len(values) - 1))


def _floats(values: Sequence[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)
