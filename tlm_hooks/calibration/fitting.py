"""Fit the parts of a calibration: non-negative signal weights and the monotone score map.

Needs the ``calibration`` extra (scikit-learn, scipy, numpy), imported here only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import MissingDependencyError
from ..scorers.signals.weights import SIGNALS, weights_for
from .combination import Combination
from .features import Features
from .maps import IsotonicMap, PlattMap, ScoreMap

__all__ = ["Pipeline", "require_fitting", "fit_combination", "fit_map", "fit_pipeline", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'tlm-hooks[calibration]'"
MIN_COMPLETE_ROWS = 20  # rows that have every signal, needed to fit the weights
_WEIGHT_L2 = 1e-3  # a touch of shrinkage: weights of useless signals go to 0, not to noise
_PLATT_L2 = 1e-4


def require_fitting() -> None:
    """Raise :class:`MissingDependencyError` unless scikit-learn, scipy and numpy are installed."""
    missing = [name for name in ("sklearn", "scipy", "numpy") if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingDependencyError(f"fitting a calibration needs {', '.join(missing)}: {INSTALL_HINT}")


@dataclass(frozen=True)
class Pipeline:
    """Signal weights, then a monotone map: features in, P(acceptable) out."""

    combination: Combination
    score_map: ScoreMap

    def __call__(self, row: Features) -> float:
        return self.score_map(self.combination.combine(row)[0])

    def apply(self, rows: Sequence[Features]) -> list[float]:
        return [self(row) for row in rows]


def _logistic(x: Any, y: Any, l2: float) -> tuple[float, Any]:
    """Intercept and non-negative coefficients minimising the mean log-loss of ``y`` (in [0, 1])
    under ``sigmoid(b + x @ w)`` plus ``l2 * |w|^2``."""
    import numpy as np
    from scipy.optimize import minimize

    n, d = x.shape

    def loss(theta: Any) -> tuple[float, Any]:
        z = theta[0] + x @ theta[1:]
        value = np.mean(np.logaddexp(0.0, z) - y * z) + l2 * float(theta[1:] @ theta[1:])
        residual = (1.0 / (1.0 + np.exp(-z)) - y) / n
        grad = np.concatenate([[residual.sum()], x.T @ residual + 2 * l2 * theta[1:]])
        return float(value), grad

    start = np.concatenate([[0.0], np.ones(d)])
    bounds = [(None, None)] + [(0.0, None)] * d  # non-negative: a signal can only raise the score
    found = minimize(loss, start, jac=True, method="TNC", bounds=bounds)
    return float(found.x[0]), found.x[1:]


def fit_combination(rows: Sequence[Features], labels: Sequence[float], task: str = "default") -> Combination:
    """Non-negative weights for the signals the rows have, fitted by logistic regression on the
    rows that have all of them; the engine's weights when that cannot be done (and why)."""
    import numpy as np

    signals = [s for s in SIGNALS if any(s in row.components for row in rows)]
    if not signals:
        return Combination({}, "score", task, "the rows carry no signal scores: the scorer's score is calibrated")
    engine = {s: float(weights_for(task).get(s, 0.0)) for s in signals}
    if len(signals) == 1:
        return Combination({signals[0]: 1.0}, "fitted", task)
    complete = [i for i, row in enumerate(rows) if all(s in row.components for s in signals)]
    y = np.array([labels[i] for i in complete], dtype=float)
    if len(complete) < MIN_COMPLETE_ROWS or min((y >= 0.5).sum(), (y < 0.5).sum()) < 2:
        reason = f"{len(complete)} rows have all of {', '.join(signals)} (both kinds of label needed, {MIN_COMPLETE_ROWS}+ rows)"
        return Combination(engine, "engine", task, f"too few rows to fit weights: {reason}")
    x = np.array([[rows[i].components[s] for s in signals] for i in complete], dtype=float)
    _, w = _logistic(x, y, _WEIGHT_L2)
    total = float(w.sum())
    if total <= 1e-9:
        return Combination(engine, "engine", task, "no signal rose with the labels, so no weights could be fitted")
    return Combination({s: round(float(v) / total, 4) for s, v in zip(signals, w, strict=True)}, "fitted", task)


def fit_map(kind: str, scores: Sequence[float], labels: Sequence[float]) -> ScoreMap:
    """A monotone map from ``scores`` to ``labels``: ``platt`` or ``isotonic``. Isotonic ends are
    kept off 0 and 1 by 1/(n+2), so no answer is called certain from a finite sample."""
    import numpy as np

    x = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    if kind == "platt":
        intercept, slope = _logistic(x.reshape(-1, 1), y, _PLATT_L2)
        return PlattMap(round(float(slope[0]), 6), round(intercept, 6))
    if kind == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        eps = 1.0 / (len(x) + 2)
        model = IsotonicRegression(y_min=eps, y_max=1 - eps, increasing=True, out_of_bounds="clip").fit(x, y)
        xs = [round(float(v), 6) for v in model.X_thresholds_]
        ys = [round(float(v), 6) for v in model.y_thresholds_]
        return IsotonicMap(tuple(xs), tuple(ys))
    raise ValueError(f"unknown map kind {kind!r}")


def fit_pipeline(rows: Sequence[Features], labels: Sequence[float], kind: str, task: str = "default") -> Pipeline:
    """Weights on ``rows``, then a ``kind`` map on their combined scores."""
    combination = fit_combination(rows, labels, task)
    combined = [combination.combine(row)[0] for row in rows]
    return Pipeline(combination, fit_map(kind, combined, labels))
