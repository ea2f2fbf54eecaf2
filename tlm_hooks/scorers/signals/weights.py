"""How the signals combine into one score: per-task weights (THE place to update them)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SIGNALS", "SIGNAL_WEIGHTS", "combine", "weights_for"]

SIGNALS: tuple[str, ...] = ("token_probability", "self_reflection", "consistency")

# Weighted mean of the signals that ran (weights of missing signals are dropped and the rest
# renormalised). These are reasoned starting guesses, not yet measured:
# - consistency gets the most weight: agreement among sampled answers is the strongest
#   black-box correctness signal in the uncertainty literature, and it still works when the
#   judge is a small model;
# - self-reflection is informative with capable judges but noisy with small ones;
# - token probability is free but length-sensitive; it is sharper for one-word labels
#   (classification) and weaker for code, where many token choices are equally right.
# UPDATE HERE from the benchmark's per-signal AUROCs (benchmarks/README.md).
SIGNAL_WEIGHTS: Mapping[str, Mapping[str, float]] = {
    "default": {"token_probability": 0.20, "self_reflection": 0.35, "consistency": 0.45},
    "classification": {"token_probability": 0.35, "self_reflection": 0.25, "consistency": 0.40},
    "code_generation": {"token_probability": 0.15, "self_reflection": 0.45, "consistency": 0.40},
}


def weights_for(task: str | None) -> Mapping[str, float]:
    """The weight table of ``task`` (``default`` for unknown or ``None``)."""
    return SIGNAL_WEIGHTS.get(task or "default", SIGNAL_WEIGHTS["default"])


def combine(scores: Mapping[str, float], task: str | None) -> float:
    """Weighted mean of the available signal scores, clipped to [0, 1]."""
    weights = weights_for(task)
    used = {name: weights[name] for name in SIGNALS if name in scores and weights.get(name, 0) > 0}
    if not used:
        raise ValueError("no signal was computed, so there is nothing to combine")
    total = sum(used.values())
    value = sum(scores[name] * weight for name, weight in used.items()) / total
    return min(1.0, max(0.0, value))
