"""Structured outputs scored per field: each top-level field of a JSON answer gets its own
consistency (its value in the sampled answers, compared as a structure) and its own reflection.

Nested objects and arrays are one field each, scored as a whole. A structured answer's overall
consistency is the mean of its fields' consistencies (`structured_agreement`), so keys every
sample repeats cannot make two answers look alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .reflection import Call, Check, ReflectionPrompt, clip, read_check
from .structural import find_json, value_agreement
from .weights import combine

__all__ = [
    "MAX_REFLECTED_FIELDS",
    "FIELD_PROMPT",
    "FieldScore",
    "is_structured",
    "json_fields",
    "schema_instruction",
    "field_agreements",
    "structured_agreement",
    "reflect_field",
    "field_scores",
    "NOT_AN_OBJECT",
    "NO_FORMAT",
]

MAX_REFLECTED_FIELDS = 20  # per-field reflections per score (one judge call each); the rest get consistency only
NOT_AN_OBJECT = "the response is not a JSON object, so it has no fields to score"
NO_FORMAT = (
    "per_field_score needs a structured output: a request with a JSON response_format "
    "(json_schema or json_object, e.g. from parse()) whose answer is a JSON object"
)
_SCHEMA_CHARS = 3000

FIELD_PROMPT = ReflectionPrompt(
    "word",
    "Below is a request and a reply given as JSON.\n\nRequest:\n{question}\n\nReply:\n{answer}\n\n"
    'Look only at the field "{field}", whose value is: {value}\n'
    "Is the value of this field correct? Respond with exactly one word: yes or no.",
)


@dataclass(frozen=True)
class FieldScore:
    """One field's score, the signals it came from (``None`` when one did not run), and why."""

    score: float
    consistency: float | None
    reflection: float | None
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        """``{"score", "explanation"}``: the entry of ``log.per_field_score``."""
        return {"score": self.score, "explanation": self.explanation}


def is_structured(response_format: Mapping[str, Any] | None) -> bool:
    """True for a JSON ``response_format`` (``json_schema`` or ``json_object``)."""
    return isinstance(response_format, Mapping) and response_format.get("type") in ("json_schema", "json_object")


def json_fields(text: str) -> dict[str, Any] | None:
    """The top-level fields of a JSON-object answer, else ``None``."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def schema_instruction(response_format: Mapping[str, Any] | None) -> str:
    """A system line asking for a JSON answer (following the schema, when one is given)."""
    spec = response_format.get("json_schema") if isinstance(response_format, Mapping) else None
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not schema:
        return "Reply with only a JSON object."
    text = json.dumps(schema, sort_keys=True, default=str)
    if len(text) > _SCHEMA_CHARS:
        text = text[:_SCHEMA_CHARS] + "…"
    return f"Reply with only a JSON object that follows this JSON schema:\n{text}"


def _sample_fields(samples: Sequence[str]) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    for text in samples:
        value = json_fields(text.strip())
        if value is None:
            found = find_json(text)
            value = found if isinstance(found, dict) else None
        out.append(value)
    return out


def field_agreements(answer: Mapping[str, Any], samples: Sequence[str]) -> dict[str, list[float]]:
    """For each field of ``answer``: its agreement with the same field of each sample (a sample
    that is no JSON object, or lacks the field, agrees 0)."""
    parsed = _sample_fields(samples)
    return {
        name: [value_agreement(value, other[name]) if other is not None and name in other else 0.0 for other in parsed]
        for name, value in answer.items()
    }


def structured_agreement(answer: Mapping[str, Any], samples: Sequence[str]) -> list[float]:
    """Per sample: the mean agreement over ``answer``'s fields (1.0 or 0.0 for an empty object,
    by whether the sample is one too)."""
    agreements = field_agreements(answer, samples)
    if not agreements:
        return [1.0 if fields == {} else 0.0 for fields in _sample_fields(samples)]
    return [sum(values[i] for values in agreements.values()) / len(agreements) for i in range(len(samples))]


async def reflect_field(call: Call, question: str, answer: str, field: str, value: Any) -> Check:
    """Ask the judge whether one field's value is right (a failed call raises)."""
    shown = clip(json.dumps(value, default=str), 800)
    content = FIELD_PROMPT.template.format(question=clip(question), answer=clip(answer), field=field, value=shown)
    messages: Sequence[Mapping[str, Any]] = [{"role": "user", "content": content}]
    generations = await call(
        messages, temperature=0.0, max_tokens=FIELD_PROMPT.max_tokens, logprobs=True, top_logprobs=10
    )
    if not generations:
        return Check(0.5, "unparsed", "")
    return read_check(generations[0], FIELD_PROMPT.kind)


def _explain(consistency: float | None, agreeing: int, total: int, reflection: float | None) -> str:
    parts = []
    if consistency is not None:
        parts.append(f"{agreeing} of {total} sampled answers gave the same value (consistency {consistency:.2f}).")
    if reflection is not None:
        verdict = "judged it correct" if reflection >= 0.5 else "doubted it"
        parts.append(f"The judge {verdict} ({reflection:.2f}).")
    return " ".join(parts) or "No signal ran for this field."


def field_scores(
    answer: Mapping[str, Any],
    agreements: Mapping[str, Sequence[float]],
    reflections: Mapping[str, Check],
    task: str | None,
    fallback: float,
) -> dict[str, FieldScore]:
    """Each field's score: the task's weighted mean of its consistency and reflection (the
    weights of `weights.combine`); ``fallback`` (the whole answer's score) when neither ran."""
    out = {}
    for name in answer:
        values = agreements.get(name) or ()
        consistency = sum(values) / len(values) if values else None
        check = reflections.get(name)
        reflection = check.score if check is not None else None
        signals = {"consistency": consistency, "self_reflection": reflection}
        present = {k: v for k, v in signals.items() if v is not None}
        score = combine(present, task) if present else fallback
        explanation = _explain(consistency, sum(1 for v in values if v >= 0.5), len(values), reflection)
        out[name] = FieldScore(score, consistency, reflection, explanation)
    return out
