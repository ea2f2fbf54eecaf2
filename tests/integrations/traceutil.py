"""Helpers for the integration tests (import as ``from traceutil import ...``)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tlm_hooks import ScoreRequest, TrustResult

T = TypeVar("T")

TRIVIA_SYSTEM = "You are a trivia master."
ONE_WORD_SYSTEM = "Answer in one word."
BRIEF_SYSTEM = "Be brief."


def predictable(request: ScoreRequest) -> TrustResult:
    """A score that depends on the whole prompt (system messages included) and the answer,
    and an explanation that repeats the prompt, so a test can tell what was scored."""
    text = request.prompt_text()
    digest = hashlib.sha256(f"{text}\x00{request.response}".encode()).digest()
    return TrustResult(round(digest[0] / 255, 4), explanation=f"scored: {text} => {request.response}")


def expected_for(messages: list[dict[str, Any]] | None, response: str, prompt: str | None = None) -> TrustResult:
    """What :func:`predictable` gives for a faithfully rebuilt request."""
    if messages is not None:
        return predictable(ScoreRequest(response=response, messages=tuple(messages)))
    return predictable(ScoreRequest(response=response, prompt=prompt))


def wait_for(check: Callable[[], T | None], *, timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)
