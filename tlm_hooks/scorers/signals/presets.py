"""Quality presets as amounts of work: reflections, consistency samples, candidate answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Plan", "PRESET_PLANS", "plan_for"]


@dataclass(frozen=True)
class Plan:
    """Work for one score: ``reflections`` judge prompts, ``samples`` alternative answers
    (one request with ``n=samples`` where the server honours it), and ``candidates`` answers
    to choose from when generating."""

    reflections: int
    samples: int
    candidates: int = 1


# judge requests per score = reflections + (1 if samples else 0) when n>1 is honoured,
# reflections + samples when it is not (e.g. the embedded model); "semantic" similarity adds
# one request per sample. base: none (one reflection when the response has no logprobs).
PRESET_PLANS: Mapping[str, Plan] = {
    "base": Plan(reflections=0, samples=0, candidates=1),
    "low": Plan(reflections=1, samples=3, candidates=1),
    "medium": Plan(reflections=2, samples=4, candidates=1),
    "high": Plan(reflections=3, samples=6, candidates=3),
    "best": Plan(reflections=5, samples=8, candidates=5),
}


def plan_for(preset: str | None, options: Mapping[str, Any]) -> Plan:
    """The plan of ``preset`` (default ``medium``) with ``num_self_reflections`` (or
    ``use_self_reflection: false``), ``num_consistency_samples`` and ``num_candidate_responses``
    overrides applied."""
    plan = PRESET_PLANS[preset or "medium"]
    # use_self_reflection (Cleanlab's older switch): false means no reflections, true the preset's
    reflections = 0 if options.get("use_self_reflection") is False else plan.reflections
    return Plan(
        reflections=options.get("num_self_reflections", reflections),
        samples=options.get("num_consistency_samples", plan.samples),
        candidates=options.get("num_candidate_responses", plan.candidates),
    )
