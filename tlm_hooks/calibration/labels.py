"""Labels as numbers in [0, 1]: booleans, 0–1 ratings, or any numeric rating (min–max normalised)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import LabelError, name_rows

__all__ = ["Labels", "read_labels", "MIN_EXAMPLES", "MIN_PER_CLASS"]

MIN_EXAMPLES = 20  # fewer labelled rows than this cannot say much about a score's calibration
MIN_PER_CLASS = 5  # cross-validation needs a few acceptable and a few unacceptable answers
_TRUE = {"true", "yes", "y", "t", "correct", "acceptable", "good", "pass"}
_FALSE = {"false", "no", "n", "f", "incorrect", "unacceptable", "bad", "fail"}


@dataclass(frozen=True)
class Labels:
    """Labels in [0, 1] (1 = acceptable). ``kind``: ``binary`` (every label 0 or 1) or ``rating``;
    ``low``/``high``: the raw range mapped to 0/1 (``0``/``1`` unless ratings were normalised)."""

    values: tuple[float, ...]
    kind: str
    low: float = 0.0
    high: float = 1.0

    @property
    def binary(self) -> tuple[int, ...]:
        """Each label as acceptable (1) or not (0): a rating counts as acceptable from 0.5 up."""
        return tuple(int(v >= 0.5) for v in self.values)

    def describe(self) -> dict[str, Any]:
        """What the labels were, for the profile."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "rating":
            out.update(low=self.low, high=self.high)
        return out


def _parse(value: Any) -> float | None:
    """A label's number, or ``None`` when it is not one (a missing value raises KeyError)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise KeyError
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values, without importing pandas
        raise KeyError
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) or type(value).__module__ == "numpy":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        text = value.strip().lower()
        if not text:
            raise KeyError
        if text in _TRUE:
            return 1.0
        if text in _FALSE:
            return 0.0
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def read_labels(
    values: Sequence[Any],
    names: Sequence[str] | None = None,
    *,
    min_examples: int = MIN_EXAMPLES,
    scale: tuple[float, float] | None = None,
) -> Labels:
    """Check and normalise ``values``: booleans (or true/false, yes/no text) and numbers.

    All labels 0/1 → ``binary``; all within [0, 1] → ratings as given; otherwise min–max
    normalised (``scale=(low, high)`` sets the range instead, e.g. ``(1, 5)`` for a 1–5 rating).
    :class:`LabelError` names the rows that are missing or not numeric, and says when there are
    fewer than ``min_examples`` labels or fewer than :data:`MIN_PER_CLASS` acceptable or
    unacceptable ones. ``names`` name the rows in messages (default ``row 0``, ``row 1``...).
    """
    if isinstance(values, (str, bytes, Mapping)):
        raise LabelError(f"labels must be a sequence with one label per row, got {type(values).__name__}")
    items = list(values)
    where = list(names) if names is not None else [f"row {i}" for i in range(len(items))]
    missing: list[str] = []
    wrong: list[str] = []
    numbers: list[float] = []
    for i, value in enumerate(items):
        try:
            number = _parse(value)
        except KeyError:
            missing.append(where[i])
            continue
        if number is None:
            wrong.append(f"{where[i]} ({_short(value)})")
        else:
            numbers.append(number)
    if missing:
        raise LabelError(f"{len(missing)} label(s) are missing: {name_rows(missing)}; every row needs a label", missing)
    if wrong:
        raise LabelError(
            f"{len(wrong)} label(s) are not numbers or booleans: {name_rows(wrong)}; allowed: true/false, yes/no, "
            "1/0, a rating in [0, 1], or any numeric rating (normalised min–max)",
            [w.split(" (")[0] for w in wrong],
        )
    if len(numbers) < min_examples:
        raise LabelError(
            f"{len(numbers)} labelled row(s) given; calibration needs at least {min_examples} "
            "(a few hundred give usable intervals)"
        )
    labels = _normalised(numbers, scale)
    acceptable = sum(labels.binary)
    if len(set(labels.values)) == 1:
        raise LabelError(f"every label is {items[0]!r}: calibration needs both acceptable and unacceptable examples")
    if min(acceptable, len(numbers) - acceptable) < MIN_PER_CLASS:
        raise LabelError(
            f"{acceptable} acceptable and {len(numbers) - acceptable} unacceptable label(s): calibration needs at "
            f"least {MIN_PER_CLASS} of each (a rating counts as acceptable from the middle of its range up)"
        )
    return labels


def _normalised(numbers: list[float], scale: tuple[float, float] | None) -> Labels:
    if scale is not None:
        low, high = float(scale[0]), float(scale[1])
        if not high > low:
            raise LabelError(f"label scale must be (low, high) with high > low, got {scale!r}")
        outside = [x for x in numbers if not low <= x <= high]
        if outside:
            raise LabelError(f"{len(outside)} label(s) lie outside the scale {low:g}–{high:g}, e.g. {outside[0]:g}")
    elif all(x in (0.0, 1.0) for x in numbers):
        return Labels(tuple(numbers), "binary")
    elif all(0.0 <= x <= 1.0 for x in numbers):
        return Labels(tuple(numbers), "rating")
    else:
        low, high = min(numbers), max(numbers)
        if high == low:
            return Labels(tuple(0.0 for _ in numbers), "rating", low, high)  # one class: caught by the caller
    values = tuple((x - low) / (high - low) for x in numbers)
    kind = "binary" if all(v in (0.0, 1.0) for v in values) else "rating"
    return Labels(values, kind, low, high)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:29] + "…"
