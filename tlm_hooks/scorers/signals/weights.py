"""How the signals combine into one score: per-task weights (THE place to update them)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SIGNALS", "SIGNAL_WEIGHTS", "combine", "weights_for"]

SIGNALS: tuple[str, ...] = ("token_probability", "self_reflection", "consistency")

# Weighted mean of the signals that ran (weights of missing signals are dropped and the rest
# renormalised).
# default / classification: measured (benchmarks/README.md, "Recommended signal weights"): a
# grid over the three component scores of `tlm-medium` on 100 answers of the QA set, checked on
# each half (even/odd answers) and then on 100 other answers (held out), with the embedded
# SmolLM2-135M model answering AND judging. Observed consistency, comparing the numbers or words
# the answers settle on, is the strongest signal (AUROC 0.86 alone); token probability adds to
# it; self-reflection by a 135M judge is weak (0.55) and keeps a small share. The classification
# subset (25 answers) is too small to fit on its own, so it shares these. Re-fit with
# `benchmarks/scoring.py --fit-weights` on your own judge: a capable judge's reflection is worth more.
# code_generation: not measured (no code items in the set); a reasoned guess that leans on
# reflection, as many token choices are equally right in code.
SIGNAL_WEIGHTS: Mapping[str, Mapping[str, float]] = {
    "default": {"token_probability": 0.25, "self_reflection": 0.15, "consistency": 0.60},
    "classification": {"token_probability": 0.25, "self_reflection": 0.15, "consistency": 0.60},
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
