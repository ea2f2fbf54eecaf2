"""What one score ran compared with what its plan asked: per-signal counts and short warnings."""

from __future__ import annotations

from collections.abc import Sequence

from ...llm.failures import is_connection_failure, is_context_overflow, is_timeout, status_of

__all__ = ["Coverage", "failure_kind"]


def failure_kind(exc: BaseException) -> str:
    """A short, secret-free label for a failed judge call (no server text is quoted)."""
    name = type(exc).__name__
    if is_context_overflow(exc):
        return f"{name}: the prompt exceeds the judge's context window"
    if is_timeout(exc):
        return f"{name}: timed out"
    if is_connection_failure(exc):
        return f"{name}: judge unreachable"
    status = status_of(exc)
    return f"{name}: HTTP {status}" if status is not None else name


class Coverage:
    """Counts per signal (``asked`` by the plan, ``ran`` successfully) and warnings, in order."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self.warnings: list[str] = []

    def ask(self, signal: str, asked: int) -> None:
        """The plan asks ``asked`` units of ``signal`` (reflections, samples; 1 for token probability)."""
        self.counts[signal] = {"asked": asked, "ran": 0}

    def ran(self, signal: str, count: int) -> None:
        """``count`` units of ``signal`` ran."""
        self.counts.setdefault(signal, {"asked": 0, "ran": 0})["ran"] = count

    def warn(self, message: str) -> None:
        """Record one warning (said once however often it is recorded)."""
        if message not in self.warnings:
            self.warnings.append(message)

    def failed(self, signal: str, what: str, errors: Sequence[BaseException], total: int) -> None:
        """Warn that ``len(errors)`` of ``total`` ``what`` of ``signal`` failed and were left out."""
        if not errors:
            return
        kinds = sorted({failure_kind(e) for e in errors})
        self.warn(f"{signal}: {len(errors)} of {total} {what} failed and were left out ({'; '.join(kinds)})")

    def signals(self) -> dict[str, dict[str, int]]:
        """The counts of signals the plan asked for or that ran."""
        return {name: dict(c) for name, c in self.counts.items() if c["asked"] or c["ran"]}
