"""A scorer for CLI tests (``--scorer cal_scorers:stored_consistency``): reads the answer's
stored consistency from the prompt, so no model is needed."""

from __future__ import annotations

import threading

from tlm_hooks import ScoreRequest, TrustResult


def stored_consistency(request: ScoreRequest) -> TrustResult:
    value = float((request.prompt or "").rsplit("c=", 1)[1])
    return TrustResult(value, components={"consistency": value, "self_reflection": 0.5})


class Counted:
    """``stored_consistency`` that records each call and, once ``stop_at`` calls were made,
    raises ``stop`` (KeyboardInterrupt: a Ctrl-C; another exception: a judge outage)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.stop_at: int | None = None
        self.stop: type[BaseException] = KeyboardInterrupt
        self._lock = threading.Lock()

    def __call__(self, request: ScoreRequest) -> TrustResult:
        with self._lock:
            self.calls.append(request.prompt or "")
            stopping = self.stop_at is not None and len(self.calls) >= self.stop_at
        if stopping:
            raise self.stop("stopped by the test")
        return stored_consistency(request)

    def reset(self, stop_at: int | None = None, stop: type[BaseException] = KeyboardInterrupt) -> None:
        self.calls.clear()
        self.stop_at, self.stop = stop_at, stop


counted = Counted()  # --scorer cal_scorers:counted


def other(request: ScoreRequest) -> TrustResult:
    """Another scorer (a different description): for the refused-resume tests."""
    return stored_consistency(request)
