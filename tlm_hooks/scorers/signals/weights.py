"""How the signals combine into one score: per-task weights (THE place to update them)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SIGNALS", "SIGNAL_WEIGHTS", "combine", "weights_for"]

SIGNALS: tuple[str, ...] = ("token_probability", "self_reflection", "consistency")

# Weighted mean of the signals that ran (weights of missing signals are dropped and the rest
# renormalised).
# default / classification: measured (benchmarks/README.md, "Recommended weights"): a grid
# search over the three component scores on half of the 311-question QA set, checked on the
# other half, with the embedded SmolLM2-135M model answering AND judging. With that judge the
# call-based signals are weak (AUROC ~0.5-0.6 alone) and token probability is strong, so it
# gets 0.8; the call-based signals keep 0.1 each because fits without them did not hold
# across the two halves. A capable judge makes reflection and consistency worth far more:
# re-fit with `benchmarks/scoring.py --fit-weights` on your own judge before trusting these.
# code_generation: not measured (no code items in the set); a reasoned guess that leans on
# reflection, as many token choices are equally right in code.
SIGNAL_WEIGHTS: Mapping[str, Mapping[str, float]] = {
    "default": {"token_probability": 0.80, "self_reflection": 0.10, "consistency": 0.10},
    "classification": {"token_probability": 0.80, "self_reflection": 0.10, "consistency": 0.10},
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
