"""Self-reflection signal: the judge is asked, in differently-worded prompts, if the answer is right."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...llm.base import Generation
from .fit import QUESTION_CHARS, cut
from .verdict import UNCERTAIN, VerdictKind, parse_verdict, verdict_from_logprobs

__all__ = ["ReflectionPrompt", "REFLECTION_PROMPTS", "Check", "reflect", "clip"]


@dataclass(frozen=True)
class ReflectionPrompt:
    """One way of asking for a verdict; ``template`` has ``{question}`` and ``{answer}``."""

    kind: VerdictKind
    template: str
    max_tokens: int = 6


# Our own wordings. Order matters: a preset with R reflections uses the first R.
REFLECTION_PROMPTS: tuple[ReflectionPrompt, ...] = (
    ReflectionPrompt(
        "word",
        "Below is a request and a reply someone wrote for it.\n\nRequest:\n{question}\n\nReply:\n{answer}\n\n"
        "Is the reply correct? Respond with exactly one word: yes or no.",
    ),
    ReflectionPrompt(
        "letter",
        "Grade this answer.\n\nQuestion:\n{question}\n\nAnswer under review:\n{answer}\n\n"
        "Options:\nA) the answer is right\nB) the answer is wrong\nC) cannot say\n\n"
        "Write only the letter of your choice.",
    ),
    ReflectionPrompt(
        "scale",
        "{question}\n\nA candidate response was: {answer}\n\nHow confident are you that this response is "
        "accurate, from 0 (surely wrong) to 10 (surely right)? Give just the number.",
    ),
    ReflectionPrompt(
        "word",
        'Someone was asked: "{question}"\nThey said: "{answer}"\n\n'
        "True or false: what they said is a good and factually accurate answer. Reply with true or false.",
    ),
    ReflectionPrompt(
        "word",
        "You are checking an answer key.\nItem: {question}\nKey says: {answer}\n\n"
        "Would you keep this key entry as correct? Say yes or no.",
    ),
)


@dataclass(frozen=True)
class Check:
    """One reflection's outcome: P(correct), and whether it came from logprobs, text, or nothing."""

    score: float
    source: str  # "logprobs" | "text" | "unparsed" | "error"
    text: str


def clip(text: str, limit: int = QUESTION_CHARS) -> str:
    """``text`` within ``limit`` characters: its start and end around a marked cut when longer."""
    return cut(text, limit)


def read_check(generation: Generation, kind: VerdictKind) -> Check:
    """Turn one judge reply into a `Check` (never raises)."""
    from_logprobs = verdict_from_logprobs(generation.logprobs, kind)
    if from_logprobs is not None:
        return Check(from_logprobs, "logprobs", generation.text)
    from_text = parse_verdict(generation.text, kind)
    if from_text is not None:
        return Check(from_text, "text", generation.text)
    return Check(UNCERTAIN, "unparsed", generation.text)


Call = Callable[..., Awaitable[list[Generation]]]


async def reflect(call: Call, prompt: ReflectionPrompt, question: str, answer: str) -> Check:
    """Ask the judge once with ``prompt`` (a failed call raises; an unreadable verdict is uncertain)."""
    content = prompt.template.format(question=clip(question), answer=clip(answer))
    messages: Sequence[Mapping[str, Any]] = [{"role": "user", "content": content}]
    generations = await call(messages, temperature=0.0, max_tokens=prompt.max_tokens, logprobs=True, top_logprobs=10)
    if not generations:
        return Check(UNCERTAIN, "unparsed", "")
    return read_check(generations[0], prompt.kind)
