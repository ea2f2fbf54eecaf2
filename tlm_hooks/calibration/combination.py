"""How one row's signal scores become the single score the calibration map reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..scorers.signals.weights import SIGNALS, weights_for
from .errors import CalibrationError
from .features import Features

__all__ = ["Combination", "SOURCES"]

# fitted: weights fitted on the labelled rows; engine: the engine's own weights for the task
# (too few complete rows to fit, or no signal helped); score: the rows had no signal scores,
# so the scorer's own score is calibrated as it is
SOURCES: tuple[str, ...] = ("fitted", "engine", "score")


@dataclass(frozen=True)
class Combination:
    """A weighted mean of the signals a row has (weights renormalised over them, like the
    engine). A signal the weights do not cover gets the engine's weight for ``task``; a row with
    no signal scores uses its raw score. ``source`` says where the weights came from and ``reason``
    why, when they were not fitted."""

    weights: Mapping[str, float]
    source: str = "fitted"
    task: str = "default"
    reason: str | None = None
    _fallback: Mapping[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise CalibrationError(f"combination source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        unknown = set(self.weights) - set(SIGNALS)
        if unknown:
            raise CalibrationError(f"weights for unknown signal(s) {sorted(unknown)}; allowed: {', '.join(SIGNALS)}")
        if any(w < 0 for w in self.weights.values()):
            raise CalibrationError(f"signal weights must be >= 0, got {dict(self.weights)}")
        object.__setattr__(self, "_fallback", dict(weights_for(self.task)))

    def combine(self, row: Features) -> tuple[float, list[str]]:
        """The row's combined score in [0, 1], and notes on anything that was filled in."""
        if self.source == "score" or not row.components:
            if row.score is None:
                raise CalibrationError("the row has neither signal scores nor a trustworthiness score")
            notes = [] if self.source == "score" else ["no signal scores: the raw score was calibrated"]
            return row.score, notes
        notes = []
        used: dict[str, float] = {}
        for name in SIGNALS:
            if name not in row.components:
                continue
            if name in self.weights:
                used[name] = self.weights[name]
            else:
                used[name] = self._fallback.get(name, 0.0)
                notes.append(f"{name} was not in the calibration data: the engine's weight was used")
        if sum(used.values()) <= 0:
            used = {name: self._fallback.get(name, 0.0) for name in used}
            notes.append("the calibrated weights give this row's signals no weight: the engine's weights were used")
        total = sum(used.values())
        if total <= 0:
            if row.score is None:
                raise CalibrationError("the row's signals carry no weight and it has no trustworthiness score")
            return row.score, [*notes, "the raw score was calibrated"]
        value = sum(row.components[name] * w for name, w in used.items()) / total
        return min(1.0, max(0.0, value)), notes

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "task": self.task, "weights": dict(self.weights)}
        if self.reason:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Combination:
        weights = data.get("weights") or {}
        if not isinstance(weights, Mapping):
            raise CalibrationError(f"combination.weights must be an object, got {type(weights).__name__}")
        return cls(
            {str(k): float(v) for k, v in weights.items()},
            str(data.get("source", "fitted")),
            str(data.get("task", "default")),
            data.get("reason"),
        )
