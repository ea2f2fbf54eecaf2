"""Scorers and data for the dataset tests: deterministic, counting, optionally slow or interrupting.

``score`` is also what the subprocess tests load with ``--scorer ds_helpers:score``: it appends
``<pid> <response>`` to the file named by $TLM_HOOKS_TEST_CALLS (one line per call) and sleeps
$TLM_HOOKS_TEST_DELAY seconds, so a test can see which process scored which row.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tlm_hooks.types import ScoreRequest, TrustResult

CALLS_ENV = "TLM_HOOKS_TEST_CALLS"
DELAY_ENV = "TLM_HOOKS_TEST_DELAY"
KILL_AT_ENV = "TLM_HOOKS_TEST_KILL_AT"  # the response at which `score` SIGKILLs its own process


def expected_score(response: str) -> float:
    """The score `score` gives a response (a hash, so any change of the response changes it)."""
    return (zlib.crc32(response.encode()) % 1000) / 1000


def score(request: ScoreRequest) -> TrustResult:
    if request.response == os.environ.get(KILL_AT_ENV):
        os.kill(os.getpid(), signal.SIGKILL)
    calls = os.environ.get(CALLS_ENV)
    if calls:
        with open(calls, "a", encoding="utf-8") as file:
            file.write(f"{os.getpid()} {request.response}\n")
    delay = float(os.environ.get(DELAY_ENV) or 0)
    if delay:
        time.sleep(delay)
    if "FAIL" in request.response:
        raise RuntimeError(f"cannot score {request.response!r}")
    return TrustResult(expected_score(request.response), explanation=f"explained {request.response}")


class Recorder:
    """A scorer function that records the responses it scored, and can press Ctrl-C (send this
    process SIGINT) when it reaches a given response; that row's window is then never finished."""

    def __init__(self, interrupt_at: str | None = None) -> None:
        self.calls: list[str] = []
        self.interrupt_at = interrupt_at

    def __call__(self, request: ScoreRequest) -> TrustResult:
        if request.response == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # the run is cancelled meanwhile; this row never counts as scored
            return TrustResult(None, error="interrupted")
        self.calls.append(request.response)
        return score(request)


def rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": i, "prompt": f"question {i}?", "response": f"answer {i}"} for i in range(start, start + n)]


def write_jsonl(path: Path, items: Iterable[dict[str, Any] | str]) -> Path:
    with open(path, "w", encoding="utf-8") as file:
        for item in items:
            file.write((item if isinstance(item, str) else json.dumps(item)) + "\n")
    return path


def write_csv(path: Path, header: list[str], body: Iterable[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(body)
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))
