"""What calibration reads from a scored row: the raw score and the engine's signal scores."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..scorers.signals.weights import SIGNALS
from ..types import TrustResult
from .errors import CalibrationError, name_rows

__all__ = ["Features", "features_of", "read_features", "SIGNALS"]

SCORE_KEYS = ("trustworthiness_score", "confidence_score")


@dataclass(frozen=True)
class Features:
    """One scored row: ``score`` (the scorer's trustworthiness score, if known) and
    ``components`` (the engine's signal scores it had: token_probability, self_reflection,
    consistency)."""

    score: float | None = None
    components: Mapping[str, float] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.score is None and not self.components


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def features_of(row: Any) -> Features:
    """Read a row: a :class:`TrustResult`, a ``tlm_metadata`` / ``get_trustworthiness_score`` dict
    (components from ``log.per_component_score``), a flat dict with signal-named keys (a CSV
    row), or a bare number (the score). A row with nothing usable gives empty features."""
    if isinstance(row, TrustResult):
        return _from(row.trustworthiness_score, row.components)
    if isinstance(row, Mapping):
        score = next((_number(row[k]) for k in SCORE_KEYS if _number(row.get(k)) is not None), None)
        log = row.get("log")
        nested = log.get("per_component_score") if isinstance(log, Mapping) else None
        flat = row.get("per_component_score")
        components = nested if isinstance(nested, Mapping) else flat if isinstance(flat, Mapping) else row
        return _from(score, components)
    if isinstance(row, (int, float)) and not isinstance(row, bool):
        return _from(row, {})
    return Features()


def _from(score: Any, components: Mapping[str, Any]) -> Features:
    found = {name: _number(components.get(name)) for name in SIGNALS}
    return Features(_number(score), {k: v for k, v in found.items() if v is not None})


def read_features(rows: Sequence[Any], names: Sequence[str]) -> list[Features]:
    """The features of every row; :class:`CalibrationError` names rows with scores out of [0, 1]."""
    out = [features_of(row) for row in rows]
    bad = [
        names[i]
        for i, f in enumerate(out)
        if (f.score is not None and not 0.0 <= f.score <= 1.0)
        or any(not 0.0 <= v <= 1.0 for v in f.components.values())
    ]
    if bad:
        raise CalibrationError(f"scores must lie in [0, 1]; out of range in {name_rows(bad)}")
    return out
