"""A scripted judge for the RAG tests: tells eval prompts, reflections, samples and generation apart."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tlm_hooks.llm.base import Generation
from tlm_hooks.rag import DEFAULT_EVALS, Eval
from tlm_hooks.scorers.signals.reflection import REFLECTION_PROMPTS
from tlm_hooks.types import TokenLogprob

# a phrase unique to each reflection prompt of the engine (the trustworthiness side)
_REFLECTION_MARKS = tuple(max(re.split(r"\{\w+\}", p.template), key=len).strip()[:40] for p in REFLECTION_PROMPTS)
_POSITIVE = {"word": "yes", "letter": "A", "scale": "10"}
_NEGATIVE = {"word": "no", "letter": "B", "scale": "0"}


def kind_of(text: str) -> str:
    """The verdict kind an eval or reflection prompt asks for."""
    if "letter of your choice" in text:
        return "letter"
    if "Give just the number" in text:
        return "scale"
    if "true or false" in text:
        return "word_tf"
    return "word"


@dataclass
class Call:
    role: str  # "eval" | "reflection" | "sample" | "generate" | "agreement"
    eval_name: str | None
    text: str
    kwargs: dict[str, Any]


@dataclass
class ScriptedJudge:
    """A `ChatBackend`. Eval calls are answered by ``verdict(eval_name, prompt_text)`` →
    ``True`` (criteria met), ``False``, or a raw reply string; reflections with ``reflection``;
    samples with ``sample``; a generation with ``answer`` (carrying logprobs). ``fail`` makes
    every call for which it returns true raise. ``gate`` holds generation calls until set."""

    evals: Sequence[Eval] = DEFAULT_EVALS
    verdict: Callable[[str, str], bool | str] = lambda name, text: True
    reflection: bool = True
    sample: str = "January"
    answer: str = "January is the first month."
    fail: Callable[[Call], bool] = lambda call: False
    delay: float = 0.0
    gate: asyncio.Event | None = None
    logprobs_for: Callable[[str], tuple[TokenLogprob, ...] | None] | None = None
    name: str = "scripted-judge"
    calls: list[Call] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0

    def classify(self, text: str, temperature: float) -> tuple[str, str | None]:
        for ev in self.evals:
            if ev.criteria in text:
                return "eval", ev.name
        if "say the same thing" in text:
            return "agreement", None
        if any(mark in text for mark in _REFLECTION_MARKS):
            return "reflection", None
        return ("sample", None) if temperature > 0 else ("generate", None)

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
        text = str(messages[-1]["content"])
        role, eval_name = self.classify(text, temperature)
        kwargs = {"n": n, "temperature": temperature, "max_tokens": max_tokens, "logprobs": logprobs}
        kwargs.update(top_logprobs=top_logprobs, seed=seed)
        call = Call(role, eval_name, text, kwargs)
        self.calls.append(call)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if role == "generate" and self.gate is not None:
                await asyncio.wait_for(self.gate.wait(), 5)
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.fail(call):
            raise RuntimeError(f"scripted failure on {role} {eval_name or ''}".strip())
        if role == "generate":
            lp = tuple(TokenLogprob(w, math.log(0.9)) for w in self.answer.split())
            return [Generation(self.answer, logprobs=lp, prompt_tokens=5, completion_tokens=len(lp))]
        if role == "sample":
            return [Generation(self.sample) for _ in range(n)]
        if role == "agreement":
            return [Generation("yes")]
        kind = kind_of(text)
        if role == "reflection":
            good = self.reflection
            reply = {"word_tf": "true" if good else "false"}.get(kind) or (_POSITIVE if good else _NEGATIVE)[kind]
            return [Generation(reply)]
        assert eval_name is not None
        said = self.verdict(eval_name, text)
        if isinstance(said, str):
            reply = said
        else:
            reply = {"word_tf": "true" if said else "false"}.get(kind) or (_POSITIVE if said else _NEGATIVE)[kind]
        lp = self.logprobs_for(reply) if self.logprobs_for is not None else None
        return [Generation(reply, logprobs=lp)]

    def eval_calls(self, name: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.role == "eval" and (name is None or c.eval_name == name)]
