"""The report's pictures: a reliability diagram and score histograms by label (matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path

from ..datasets.histogram import _pyplot
from .metrics import reliability
from .profile import Calibration

__all__ = ["write_reliability", "write_histogram"]


def write_reliability(profile: Calibration, path: str | os.PathLike[str]) -> Path:
    """Mean label against mean score per score bin, before and after calibration (held out)."""
    assert profile.evidence is not None
    labels = profile.evidence.labels.values
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 5), dpi=100)
    try:
        axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
        for name, scores, colour in (
            ("before", profile.raw_scores(), "#c0392b"),
            ("after (cross-validated)", profile.cross_validated_scores(), "#27ae60"),
        ):
            points = reliability(scores, labels)
            ece = profile.cv.get("before" if name == "before" else "after", {}).get("ece")
            axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=colour,
                      label=f"{name}, ECE {ece:.3f}" if ece is not None else name)  # fmt: skip
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_xlabel("score (mean in bin)")
        axes.set_ylabel("share acceptable")
        axes.set_title(f"reliability, {profile.data.get('n')} labelled rows")
        axes.legend(loc="upper left", fontsize=8)
        figure.tight_layout()
        target = Path(path)
        figure.savefig(target, format="png")
    finally:
        plt.close(figure)
    return target


def write_histogram(profile: Calibration, path: str | os.PathLike[str]) -> Path:
    """Histograms of raw and calibrated scores, acceptable vs unacceptable rows."""
    assert profile.evidence is not None
    good = [y >= 0.5 for y in profile.evidence.labels.values]
    plt = _pyplot()
    figure, panes = plt.subplots(1, 2, figsize=(10, 4), dpi=100, sharey=True)
    try:
        bins = [i / 20 for i in range(21)]
        for axes, title, scores in (
            (panes[0], "before calibration", profile.raw_scores()),
            (panes[1], "after (cross-validated)", profile.cross_validated_scores()),
        ):
            axes.hist([s for s, g in zip(scores, good, strict=True) if g], bins=bins, alpha=0.6, color="#27ae60",
                      label=f"acceptable ({sum(good)})")  # fmt: skip
            axes.hist([s for s, g in zip(scores, good, strict=True) if not g], bins=bins, alpha=0.6,
                      color="#c0392b", label=f"not acceptable ({len(good) - sum(good)})")  # fmt: skip
            axes.set_xlim(0, 1)
            axes.set_xlabel("score")
            axes.set_title(title)
            axes.legend(fontsize=8)
        panes[0].set_ylabel("rows")
        figure.tight_layout()
        target = Path(path)
        figure.savefig(target, format="png")
    finally:
        plt.close(figure)
    return target
