"""The judge prompts of RAG evals: the inputs shown under an eval's headings, then a verdict question."""

from __future__ import annotations

from dataclasses import dataclass

from ..scorers.signals.reflection import clip
from ..scorers.signals.verdict import VerdictKind
from .evals import Eval

__all__ = ["EvalPrompt", "EVAL_PROMPTS", "render_material", "eval_messages", "MAX_CHARS"]

# Per input, in characters, so the whole prompt fits a small model's context window (2048
# tokens for the embedded model): the context gets most of the room.
MAX_CHARS = {"query": 1500, "context": 4000, "response": 2000}


@dataclass(frozen=True)
class EvalPrompt:
    """One way of asking whether an eval's criteria are met; ``template`` has ``{material}``
    (the inputs under their headings) and ``{criteria}``."""

    kind: VerdictKind
    template: str
    max_tokens: int = 6


# Our own wordings. Order matters: a preset with R self-reflections asks the first R (at least one).
EVAL_PROMPTS: tuple[EvalPrompt, ...] = (
    EvalPrompt(
        "word",
        "Here is some material to review.\n\n{material}\n\nRequirement: {criteria}\n\n"
        "Does the material meet the requirement? Respond with exactly one word: yes or no.",
    ),
    EvalPrompt(
        "word",
        "Criterion: {criteria}\n\n{material}\n\n"
        "True or false: the material above satisfies the criterion. Reply with true or false.",
    ),
    EvalPrompt(
        "letter",
        "Check the material below against a rule.\n\nRule: {criteria}\n\n{material}\n\n"
        "Options:\nA) the rule is met\nB) the rule is not met\nC) cannot say\n\n"
        "Write only the letter of your choice.",
    ),
    EvalPrompt(
        "scale",
        "{material}\n\nStandard to apply: {criteria}\n\nFrom 0 (clearly fails the standard) to 10 "
        "(clearly meets it), how well does the material above meet the standard? Give just the number.",
    ),
    EvalPrompt(
        "word",
        "You are a careful reviewer applying this rule: {criteria}\n\n{material}\n\n"
        "Would you sign off on this under the rule? Say yes or no.",
    ),
)


def render_material(ev: Eval, query: str, context: str, response: str | None) -> str:
    """The inputs ``ev`` looks at, each under its heading: context, then query, then response.

    Inputs without an identifier are left out; the response only when ``ev`` needs it.
    """
    parts = []
    if ev.context_identifier is not None:
        parts.append(f"{ev.context_identifier}:\n{clip(context, MAX_CHARS['context'])}")
    if ev.query_identifier is not None:
        parts.append(f"{ev.query_identifier}:\n{clip(query, MAX_CHARS['query'])}")
    if ev.response_identifier is not None:
        if response is None:
            raise ValueError(f"eval {ev.name!r} needs a response")
        parts.append(f"{ev.response_identifier}:\n{clip(response, MAX_CHARS['response'])}")
    return "\n\n".join(parts)


def eval_messages(prompt: EvalPrompt, ev: Eval, material: str) -> list[dict[str, str]]:
    """The chat messages of one judge call."""
    return [{"role": "user", "content": prompt.template.format(material=material, criteria=ev.criteria)}]
