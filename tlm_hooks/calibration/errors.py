"""Exceptions of calibration: unusable labels or rows, targets the data cannot reach, unfitted use."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import TLMHooksError

__all__ = ["CalibrationError", "LabelError", "NotCalibratedError", "name_rows"]

_SHOWN_ROWS = 8  # rows named in a message; the rest are counted


class CalibrationError(TLMHooksError, ValueError):
    """Calibration cannot be done or used as asked; the message says why and what is allowed."""


class LabelError(CalibrationError):
    """The labels cannot be used. ``rows`` names the offending rows (empty when the problem is
    the labels as a whole, e.g. one class only)."""

    def __init__(self, message: str, rows: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.rows = tuple(rows)


class NotCalibratedError(CalibrationError):
    """A calibrated score was asked for before ``fit`` (Cleanlab's ``TlmNotCalibratedError``)."""


def name_rows(rows: Sequence[str]) -> str:
    """``row 3, row 7 and 12 more``: the first few row names of a problem."""
    shown = ", ".join(rows[:_SHOWN_ROWS])
    more = len(rows) - _SHOWN_ROWS
    return f"{shown} and {more} more" if more > 0 else shown
