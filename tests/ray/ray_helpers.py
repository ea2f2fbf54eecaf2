"""Scorers for the Ray tests, importable by the actors (this folder is on their PYTHONPATH).

``score`` gives a hash of the response (so every output row can be checked against its own
input), names the process that scored it in the explanation, and fails rows whose response says
FAIL. ``KillOnce`` SIGKILLs its own actor process the first time it meets a given response
(the marker file makes it once per test, across the restarted actor).
"""

from __future__ import annotations

import os
import signal
import zlib
from pathlib import Path
from typing import Any

from tlm_hooks.types import ScoreRequest, TrustResult


def expected_score(response: str) -> float:
    return (zlib.crc32(response.encode()) % 1000) / 1000


def score(request: ScoreRequest) -> TrustResult:
    if "FAIL" in request.response:
        raise RuntimeError(f"cannot score {request.response!r}")
    return TrustResult(
        expected_score(request.response),
        explanation=f"pid {os.getpid()}",
        components={"length": float(len(request.response))},
    )


class KillOnce:
    """A scorer function that kills its own process at ``kill_at``, once (``marker`` records the pid)."""

    def __init__(self, kill_at: str, marker: Path) -> None:
        self.kill_at = kill_at
        self.marker = str(marker)

    def __call__(self, request: ScoreRequest) -> TrustResult:
        if request.response == self.kill_at:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass  # the restarted actor: score it
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return score(request)


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "prompt": f"question {i}?", "response": f"answer {i}"} for i in range(n)]


MADE: list[int] = []  # pids of the processes where make_scorer ran


def make_scorer() -> Any:
    """A scorer factory (for ScorerSpec.from_factory)."""
    MADE.append(os.getpid())
    from tlm_hooks.scorers.function import FunctionScorer

    return FunctionScorer(score, max_concurrency=4)
