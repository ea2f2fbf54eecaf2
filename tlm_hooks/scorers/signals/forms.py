"""What kind of answer is scored, and how each signal treats it: plain text, tool calls (a
decision, shown with the tool schemas and compared structurally), or a structured JSON answer
(sampled with its schema and compared field by field)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ...types import ScoreRequest, TrustResult
from .fields import is_structured, json_fields, schema_instruction, structured_agreement
from .reflection import REFLECTION_PROMPTS, ReflectionPrompt
from .structural import ToolCall, calls_from_chat
from .tool_calls import (
    NOT_SCORED,
    TOOL_REFLECTION_PROMPTS,
    agreement_with_samples,
    decision_text,
    sample_messages,
    score_tool_calls_enabled,
    tool_question,
)

__all__ = ["AnswerForm", "text_part", "tool_call_form", "structured_form", "skipped_result"]

FormKind = Literal["text", "tool_calls", "structured"]
_TOOL_SAMPLE_TOKENS = 160


@dataclass(frozen=True)
class AnswerForm:
    """How one answer is shown to the judge and compared with samples.

    ``answer`` is what reflections judge; ``question(text)`` turns the fitted conversation into
    what they show; ``messages`` (``None``: the engine's default) are re-asked for samples;
    ``compare`` (``None``: the engine's text comparison) scores samples against the answer.
    """

    kind: FormKind
    answer: str
    prompts: tuple[ReflectionPrompt, ...] = REFLECTION_PROMPTS
    question: Callable[[str], str] = str
    messages: list[dict[str, Any]] | None = None
    sample_tokens: int | None = None
    compare: Callable[[Sequence[str]], list[float]] | None = None
    method: str | None = None
    calls: tuple[ToolCall, ...] = ()
    fields: Mapping[str, Any] | None = None


def text_part(request: ScoreRequest) -> str:
    """The response's text without its tool calls: ``""`` when ``response`` only holds the calls
    written as JSON (how adapters give a tool-call-only answer a text)."""
    text = request.response
    if not request.tool_calls or not text.strip():
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, list) and value and all(isinstance(v, Mapping) and "function" in v for v in value):
        return ""
    return text


def tool_call_form(request: ScoreRequest, base_messages: list[dict[str, Any]]) -> AnswerForm | None:
    """The tool-call form of ``request`` (``None`` when it carries no readable call)."""
    calls = tuple(calls_from_chat(request.tool_calls))
    if not calls:
        return None
    del base_messages  # tool samples re-ask the whole conversation, tool turns written out
    return AnswerForm(
        kind="tool_calls",
        answer=decision_text(calls),
        prompts=TOOL_REFLECTION_PROMPTS,
        question=lambda text: tool_question(request, text),
        messages=sample_messages(request),
        sample_tokens=_TOOL_SAMPLE_TOKENS,
        compare=lambda samples: agreement_with_samples(calls, samples),
        method="tool_calls",
        calls=calls,
    )


def structured_form(request: ScoreRequest, base_messages: list[dict[str, Any]], text: str) -> AnswerForm | None:
    """The structured form of a JSON-object answer to a JSON ``response_format`` (else ``None``)."""
    if not is_structured(request.response_format):
        return None
    fields = json_fields(text)
    if fields is None:
        return None
    instruction = {"role": "system", "content": schema_instruction(request.response_format)}
    return AnswerForm(
        kind="structured",
        answer=text,
        messages=[instruction, *base_messages],
        compare=lambda samples: structured_agreement(fields, samples),
        method="per_field",
        fields=fields,
    )


def skipped_result(request: ScoreRequest) -> TrustResult | None:
    """The unscored result of a tool-call-only answer when ``options.score_tool_calls`` is off
    (``None`` otherwise: the answer is scored)."""
    if not request.tool_calls or score_tool_calls_enabled(request.options) or text_part(request).strip():
        return None
    return TrustResult(None, skipped=NOT_SCORED)
