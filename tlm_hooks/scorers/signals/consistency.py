"""Observed-consistency signal: do freshly sampled answers agree with the one being scored?"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...llm.base import Generation
from .reflection import clip, read_check
from .similarity import agreements

__all__ = ["SAMPLE_TEMPERATURE", "Comparison", "method_for", "compare", "judge_agreement", "AGREEMENT_PROMPT"]

# The reference samples at temperature ~1. We use 0.7: the embedded 135M model at 1.0 mostly
# rambles (measured by eye on arithmetic and capitals), so its samples agreed with nothing;
# capable judges behave much the same at either value.
SAMPLE_TEMPERATURE = 0.7

AGREEMENT_PROMPT = (
    "Two people answered the same request.\n\nRequest:\n{question}\n\nFirst answer:\n{first}\n\n"
    "Second answer:\n{second}\n\nDo the two answers say the same thing (same final result or meaning)? "
    "Reply with one word: yes or no."
)

# TLM similarity_measure names -> how we compare; embeddings need a model we don't ship
_MEASURES = {
    "string": "lexical",
    "semantic": "llm",
    "discrepancy": "llm",
    "code": "code",
    "embedding": "lexical",
    "embedding_large": "lexical",
}
NOTE_EMBEDDING = "no embedding model is available offline; lexical overlap is used instead"


@dataclass(frozen=True)
class Comparison:
    """Agreement of the scored answer with each alternative, and how it was measured."""

    method: str
    scores: tuple[float, ...]
    alternatives: tuple[str, ...]
    note: str | None = None

    @property
    def score(self) -> float | None:
        """Mean agreement (``None`` with no alternatives)."""
        return sum(self.scores) / len(self.scores) if self.scores else None

    def most_disagreeing(self) -> tuple[str, float] | None:
        """The alternative that agrees least, with its agreement."""
        if not self.scores:
            return None
        i = min(range(len(self.scores)), key=self.scores.__getitem__)
        return self.alternatives[i], self.scores[i]


def method_for(
    similarity_measure: str | None, task: str | None, labels: Sequence[str] | None
) -> tuple[str, str | None]:
    """``(method, note)``: labels for constrained classification, else the measure's mapping,
    ``code`` for code generation, ``auto`` (numbers, else words) by default."""
    if task == "classification" and labels:
        return "label", None
    if similarity_measure is not None:
        note = NOTE_EMBEDDING if similarity_measure.startswith("embedding") else None
        return _MEASURES.get(similarity_measure, "auto"), note
    if task == "code_generation":
        return "code", None
    return "auto", None


def compare(
    response: str, alternatives: Sequence[str], method: str, labels: Sequence[str] | None = None, question: str = ""
) -> list[float]:
    """Model-free agreement of ``response`` with each alternative (to ``question``)."""
    return agreements(response, alternatives, method, labels, question)


Call = Callable[..., Awaitable[list[Generation]]]


async def judge_agreement(call: Call, question: str, response: str, alternative: str) -> float:
    """LLM-judged agreement of two answers (uncertain → 0.5)."""
    content = AGREEMENT_PROMPT.format(question=clip(question), first=clip(response), second=clip(alternative))
    messages: Sequence[Mapping[str, Any]] = [{"role": "user", "content": content}]
    generations = await call(messages, temperature=0.0, max_tokens=4, logprobs=True, top_logprobs=10)
    if not generations:
        return 0.5
    return read_check(generations[0], "word").score
