"""A short explanation of a score: the signal that lowered it most, and one disagreeing answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .consistency import Comparison
from .reflection import Check
from .weights import weights_for

__all__ = ["explain"]

_LABELS = {
    "token_probability": "token probability",
    "self_reflection": "self-reflection",
    "consistency": "observed consistency",
}
_QUOTE = 160


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _QUOTE else flat[: _QUOTE - 1] + "…"


def explain(
    scores: Mapping[str, float],
    task: str | None,
    checks: Sequence[Check] = (),
    comparison: Comparison | None = None,
    notes: Sequence[str] = (),
) -> str:
    """One or two sentences naming the weakest weighted signal and quoting a disagreeing alternative."""
    weights = weights_for(task)
    lowest = max(scores, key=lambda name: weights.get(name, 0.0) * (1.0 - scores[name]))
    parts = [f"Lowest signal: {_LABELS.get(lowest, lowest)} ({scores[lowest]:.2f})."]
    if lowest == "self_reflection" and checks:
        doubts = sum(1 for c in checks if c.score < 0.5)
        parts.append(f"The judge doubted the answer in {doubts} of {len(checks)} checks.")
    if comparison is not None and comparison.scores:
        agreeing = sum(1 for s in comparison.scores if s >= 0.5)
        parts.append(f"{agreeing} of {len(comparison.scores)} sampled answers agreed.")
        worst = comparison.most_disagreeing()
        if worst is not None and worst[1] < 0.5:
            parts.append(f'A disagreeing answer: "{_quote(worst[0])}".')
    parts.extend(notes)
    return " ".join(parts)
