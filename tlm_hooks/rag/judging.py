"""Score one eval: ask the judge in several phrasings, read each verdict as P(criteria met), average."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..llm.base import Generation
from ..scorers.signals.reflection import Check
from ..scorers.signals.verdict import UNCERTAIN, VerdictKind, parse_verdict, token_value, verdict_from_logprobs
from .evals import Eval
from .prompts import EVAL_PROMPTS, eval_messages, render_material

__all__ = ["EvalOutcome", "run_eval", "read_eval_verdict", "REPEAT_TEMPERATURE"]

Call = Callable[..., Awaitable[list[Generation]]]
REPEAT_TEMPERATURE = 0.7  # asks beyond the distinct phrasings are repeated with some randomness
_MIN_MASS = 0.05  # least probability on verdict tokens for the first-token reading to count


def _first_token_choice(generation: Generation, kind: VerdictKind) -> float | None:
    """P(met) among the verdict tokens the judge could have started its reply with.

    Small judges often open with a preamble ("The material ...") while "Yes"/"No" sit among
    the first token's alternatives; their relative probability is the verdict the judge leaned
    to. Not for 0-10 scales, where a first "1" may be the start of "10".
    """
    if kind == "scale" or not generation.logprobs:
        return None
    first = generation.logprobs[0]
    options = dict(first.top_logprobs)
    options.setdefault(first.token, first.logprob)
    mass = weighted = 0.0
    for token, logprob in options.items():
        value = token_value(token, kind)
        if value is None or not math.isfinite(logprob):
            continue
        p = math.exp(min(0.0, logprob))
        mass += p
        weighted += p * value
    return weighted / mass if mass >= _MIN_MASS else None


def read_eval_verdict(generation: Generation, kind: VerdictKind) -> Check:
    """One judge reply as a `Check` (never raises), first match wins: the verdict token's
    logprob-weighted value, the verdict among the first token's alternatives, the verdict in
    the text, else uncertain (0.5)."""
    value = verdict_from_logprobs(generation.logprobs, kind)
    if value is not None:
        return Check(value, "logprobs", generation.text)
    value = _first_token_choice(generation, kind)
    if value is not None:
        return Check(value, "logprobs", generation.text)
    value = parse_verdict(generation.text, kind)
    if value is not None:
        return Check(value, "text", generation.text)
    return Check(UNCERTAIN, "unparsed", generation.text)


@dataclass(frozen=True)
class EvalOutcome:
    """An eval's score (mean of its checks) or, when every judge call failed, the error."""

    name: str
    score: float | None
    checks: tuple[Check, ...] = ()
    failed_calls: int = 0
    error: BaseException | None = None

    def explanation(self) -> str:
        """One sentence on how the checks went."""
        if self.score is None:
            return f"Every judge call failed ({type(self.error).__name__})."
        met = sum(1 for c in self.checks if c.score > UNCERTAIN)
        unread = sum(1 for c in self.checks if c.source == "unparsed")
        text = f"The judge found the criteria met in {met} of {len(self.checks)} checks."
        if unread:
            text += f" {unread} verdict(s) could not be read and counted as uncertain."
        if self.failed_calls:
            text += f" {self.failed_calls} judge call(s) failed and were left out."
        return text


async def _ask(call: Call, index: int, ev: Eval, material: str) -> Check:
    prompt = EVAL_PROMPTS[index % len(EVAL_PROMPTS)]
    kwargs: dict[str, Any] = {"temperature": 0.0}
    if index >= len(EVAL_PROMPTS):
        kwargs = {"temperature": REPEAT_TEMPERATURE, "seed": index}
    generations = await call(
        eval_messages(prompt, ev, material), max_tokens=prompt.max_tokens, logprobs=True, top_logprobs=10, **kwargs
    )
    if not generations:
        return Check(UNCERTAIN, "unparsed", "")
    return read_eval_verdict(generations[0], prompt.kind)


async def run_eval(call: Call, ev: Eval, count: int, *, query: str, context: str, response: str | None) -> EvalOutcome:
    """Ask ``count`` phrasings (at least one) about ``ev``; never raises for a judge failure.

    An unreadable verdict counts as uncertain (0.5); a failed call is left out, and the eval
    fails only when every call failed.
    """
    material = render_material(ev, query, context, response)
    found = await asyncio.gather(*(_ask(call, i, ev, material) for i in range(max(1, count))), return_exceptions=True)
    checks = []
    errors: list[Exception] = []
    for item in found:
        if isinstance(item, Check):
            checks.append(item)
        elif isinstance(item, Exception):
            errors.append(item)
        else:
            raise item  # cancellation and the like
    if not checks:
        return EvalOutcome(ev.name, None, failed_calls=len(errors), error=errors[0])
    score = sum(c.score for c in checks) / len(checks)
    return EvalOutcome(ev.name, min(1.0, max(0.0, score)), tuple(checks), len(errors))
