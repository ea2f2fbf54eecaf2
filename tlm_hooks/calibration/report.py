"""The text report of a fitted profile: weights, map, quality before/after, thresholds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..scorers.signals.weights import weights_for
from .fit import REPORTED_PRECISIONS
from .profile import Calibration

__all__ = ["format_report"]


def _num(value: Any, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, spec)


def format_report(profile: Calibration) -> str:
    """A few lines a person can read: what was fitted, how much it helps, which thresholds to use."""
    data, cv, combo = profile.data, profile.cv, profile.combination
    lines = []
    source = f" from {data['source']}" if data.get("source") else ""
    labels = data.get("labels", {})
    scale = f" {labels.get('low'):g}–{labels.get('high'):g} normalised" if labels.get("kind") == "rating" else ""
    counts = [f"{data['scored_here']} scored now"] if data.get("scored_here") else []
    if data.get("scores_reused"):
        counts.append(f"{data['scores_reused']} reused from saved scores")
    scored = f"; {', '.join(counts)}" if counts else ""
    lines.append(
        f"calibrated on {data.get('n')} labelled rows{source} ({_num(data.get('acceptable'), 'g')} acceptable; "
        f"labels: {labels.get('kind')}{scale}{scored})"
    )
    if combo.source == "score":
        lines.append("signal weights: none (the rows carry no signal scores; the scorer's score is calibrated)")
    else:
        engine = weights_for(combo.task)
        shown = ", ".join(f"{k} {v:.2f} (engine {engine.get(k, 0):.2f})" for k, v in combo.weights.items())
        why = f" — {combo.reason}" if combo.reason else ""
        lines.append(f"signal weights ({combo.source}{why}): {shown}")
    losses = ", ".join(f"{k} {v:.3f}" for k, v in cv.get("map_log_loss", {}).items())
    lines.append(f"map: {profile.score_map.kind} (lower {cv.get('folds')}-fold cross-validated log-loss: {losses})")
    lines.append("")
    before, after = cv.get("before", {}), cv.get("after", {})
    lines.append(f"{'':10}{'before':>9}{'after':>9}   (after: {cv.get('folds')}-fold cross-validated)")
    for key, name in (("auroc", "AUROC"), ("ece", "ECE"), ("brier", "Brier"), ("log_loss", "log-loss")):
        lines.append(f"{name:10}{_num(before.get(key)):>9}{_num(after.get(key)):>9}")
    lines.append("")
    lines.append("thresholds on the calibrated score (flag below; expected = mean [middle 90%] over held-out folds):")
    stored: Mapping[float | None, Any] = {t.target.get("precision"): t for t in profile.thresholds}
    for goal in REPORTED_PRECISIONS:
        t = stored.get(goal)
        if t is None:
            lines.append(f"  precision {goal:.2f}: out of reach on these rows")
            continue
        e = t.expected
        lines.append(
            f"  precision {goal:.2f}: threshold {float(t):.3f}  expected precision {e['precision']}, "
            f"recall {e['recall']}, flag rate {e['flag_rate']}"
        )
    v = profile.valid_for
    lines.append("")
    lines.append(
        f"valid for: judge {v.judge or 'not stated'}, preset {v.quality_preset or 'not stated'}, "
        f"task {v.task or 'not stated'}, tlm-hooks {v.engine_version}"
    )
    return "\n".join(lines)
