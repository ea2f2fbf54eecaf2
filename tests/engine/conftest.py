"""A scripted in-memory judge (`FakeJudge`) for engine tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from tlm_hooks.llm.base import Generation
from tlm_hooks.types import TokenLogprob

_GOOD = {"word_yes": "yes", "word_true": "true", "letter": "A", "scale": "10"}
_BAD = {"word_yes": "no", "word_true": "false", "letter": "B", "scale": "0"}


def prompt_kind(text: str) -> str:
    """Which kind of judge prompt ``text`` is (matching our prompt wordings)."""
    if "say the same thing" in text:
        return "agreement"
    if "letter of your choice" in text:
        return "letter"
    if "from 0 (surely wrong) to 10" in text:
        return "scale"
    if "true or false" in text:
        return "word_true"
    if "yes or no" in text:
        return "word_yes"
    return "other"


@dataclass
class Seen:
    messages: list[dict[str, Any]]
    n: int
    temperature: float
    max_tokens: int
    logprobs: bool
    top_logprobs: int
    seed: int | None
    kind: str


@dataclass
class FakeJudge:
    """Answers reflections with ``verdict`` ("good"/"bad"/raw text), samples with ``samples``
    (cycled), agreement checks with ``agree``; records every call and the peak concurrency."""

    verdict: str = "good"
    samples: Sequence[str] = ("4",)
    agree: str = "yes"
    delay: float = 0.0
    honour_n: bool = True
    verdict_logprobs: Callable[[str], tuple[TokenLogprob, ...] | None] | None = None
    fail_kinds: frozenset[str] = frozenset()
    verdict_for: Callable[[str], str] | None = None  # prompt text -> "good"/"bad"/raw verdict
    fail_if: str | None = None  # every call whose prompt contains this fails
    name: str = "fake-judge"
    calls: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0

    async def acomplete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        n: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 256,
        logprobs: bool = False,
        top_logprobs: int = 0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]:
        text = str(messages[-1].get("content"))
        kind = prompt_kind(text)
        if kind == "other" and temperature > 0:
            kind = "sample"
        self.calls.append(
            Seen([dict(m) for m in messages], n, temperature, max_tokens, logprobs, top_logprobs, seed, kind)
        )
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if kind in self.fail_kinds or (self.fail_if is not None and self.fail_if in text):
            raise RuntimeError(f"scripted judge failure on {kind}")
        if kind == "sample":
            count = n if self.honour_n else 1
            return [
                Generation(self.samples[i % len(self.samples)], prompt_tokens=3, completion_tokens=2)
                for i in range(count)
            ]
        if kind == "agreement":
            return [Generation(self.agree, prompt_tokens=3, completion_tokens=1)]
        if kind == "other":
            return [Generation(self.samples[0], prompt_tokens=3, completion_tokens=2)]
        verdict = self.verdict_for(text) if self.verdict_for is not None else self.verdict
        answer = {"good": _GOOD, "bad": _BAD}.get(verdict, {}).get(kind, verdict)
        lp = self.verdict_logprobs(answer) if self.verdict_logprobs else None
        return [Generation(answer, logprobs=lp, prompt_tokens=3, completion_tokens=1)]

    def kinds(self) -> list[str]:
        return [c.kind for c in self.calls]


@pytest.fixture
def judge() -> FakeJudge:
    return FakeJudge()
