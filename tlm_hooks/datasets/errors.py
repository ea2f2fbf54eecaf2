"""Exceptions of dataset scoring: unusable files, missing columns, bad rows, runs that cannot resume."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import TLMHooksError

__all__ = ["DatasetError", "MissingColumnsError", "BadRowError", "ResumeError"]


class DatasetError(TLMHooksError, ValueError):
    """A dataset file or a dataset-scoring argument cannot be used; the message says why."""


class MissingColumnsError(DatasetError):
    """The file lacks a column the scoring needs. ``missing`` names it, ``available`` lists the
    columns the file does have."""

    def __init__(self, message: str, *, missing: Sequence[str], available: Sequence[str]) -> None:
        super().__init__(message)
        self.missing = tuple(missing)
        self.available = tuple(available)


class BadRowError(DatasetError):
    """A malformed row stopped the run (``on_bad_row="stop"``). ``line`` is where the row starts in
    the file (for a DataFrame: its position), ``reason`` what is wrong with it."""

    def __init__(self, where: str, line: int, reason: str) -> None:
        super().__init__(f"bad row ({where}): {reason}")
        self.line = line
        self.reason = reason


class ResumeError(DatasetError):
    """An earlier run's output is in the way: a finished output file, or an unfinished one made
    with other settings. Score again from the start with ``resume=False`` (``--restart``)."""
