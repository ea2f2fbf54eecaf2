"""Synthetic labelled rows whose true relation to the label is known (import as ``from cal_rows import ...``;
not from ``conftest``: another test directory's conftest may hold that module name)."""

from __future__ import annotations

import random
from typing import Any


def clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def engine_rows(n: int = 300, seed: int = 0) -> tuple[list[dict[str, Any]], list[bool]]:
    """``get_trustworthiness_score``-shaped rows: consistency separates the labels well, token
    probability a little, self-reflection not at all; the raw score is over-confident."""
    rng = random.Random(seed)
    rows, labels = [], []
    for _ in range(n):
        good = rng.random() < 0.5
        consistency = clip(rng.gauss(0.75 if good else 0.35, 0.2))
        token = clip(rng.gauss(0.6 if good else 0.5, 0.2))
        reflection = rng.random()
        raw = clip(0.25 * token + 0.15 * reflection + 0.6 * consistency + 0.25)
        components = {"token_probability": token, "self_reflection": reflection, "consistency": consistency,
                      "llm_calls": 6.0}  # fmt: skip
        rows.append({"trustworthiness_score": raw, "log": {"per_component_score": components}})
        labels.append(good)
    return rows, labels


def uniform_rows(n: int, seed: int) -> tuple[list[float], list[bool]]:
    """Scores uniform on [0, 1] with P(acceptable | s) = s: among scores >= t, precision is (1 + t) / 2."""
    rng = random.Random(seed)
    scores = [rng.random() for _ in range(n)]
    return scores, [rng.random() < s for s in scores]
