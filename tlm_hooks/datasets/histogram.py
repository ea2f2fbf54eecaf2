"""The optional histogram PNG of a run's scores (matplotlib, imported only here)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError
from .summary import BANDS, HISTOGRAM_BINS, Summary

__all__ = ["require_matplotlib", "write_histogram"]

MATPLOTLIB_HINT = "pip install 'tlm-hooks[datasets]'"


def require_matplotlib() -> None:
    """Raise :class:`MissingDependencyError` now (before any scoring) if matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        raise MissingDependencyError(f"the histogram needs the matplotlib package: {MATPLOTLIB_HINT}")


def _pyplot() -> Any:
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")  # files only: no window, no display needed
    import matplotlib.pyplot as plt

    return plt


def write_histogram(summary: Summary, path: str | os.PathLike[str]) -> Path:
    """Draw the score histogram of ``summary`` (bars coloured by band) into the PNG ``path``."""
    plt = _pyplot()
    target = Path(path)
    width = 1.0 / HISTOGRAM_BINS
    lefts = [i * width for i in range(HISTOGRAM_BINS)]
    palette = ("#c0392b", "#e67e22", "#f1c40f", "#7fb77e", "#27ae60")
    colours = [palette[next(i for i, (bound, _) in enumerate(BANDS) if left + width / 2 < bound)] for left in lefts]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        axes.bar(lefts, summary.histogram, width=width, align="edge", color=colours, edgecolor="white")
        axes.set_xlim(0, 1)
        axes.set_xlabel("trustworthiness score")
        axes.set_ylabel("rows")
        name = summary.input_path.name if summary.input_path else "dataset"
        extra = []
        if summary.failed:
            extra.append(f"{summary.failed} failed")
        if summary.bad_rows:
            extra.append(f"{summary.bad_rows} bad rows")
        note = f" ({', '.join(extra)} not shown)" if extra else ""
        axes.set_title(f"{name}: {summary.scored:,} scored rows{note}")
        figure.tight_layout()
        figure.savefig(target, format="png")
    finally:
        plt.close(figure)
    return target
