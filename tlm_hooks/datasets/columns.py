"""Which columns hold the prompt and the response, and how one row becomes a `ScoreRequest`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from ..llm.convert import generations_from_completion
from ..types import ScoreRequest, TokenLogprob
from .errors import DatasetError, MissingColumnsError

__all__ = ["Columns", "RowProblem", "ROLES"]

ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant", "tool")
DEFAULT_PROMPT = "prompt"
DEFAULT_RESPONSE = "response"
DEFAULT_MESSAGES = "messages"


class RowProblem(ValueError):
    """One row cannot be scored; the message says why (the caller adds where the row is)."""


@dataclass(frozen=True)
class Columns:
    """Column names. Give ``prompt`` (plain text) or ``messages`` (an OpenAI-style list of
    ``{"role", "content"}``, or its JSON text), and ``response``. Left unset, ``prompt`` is used
    when the file has a ``prompt`` column, else ``messages``; ``response`` defaults to
    ``response``. With messages and no response column, the last message must be the assistant's
    answer: it is the response and the messages before it are the prompt (the fine-tuning format).

    ``system`` (a system prompt put first), ``context`` (retrieved text the answer should rest
    on) and ``logprobs`` (the response's token logprobs, OpenAI ``logprobs.content`` entries) are
    optional.
    """

    prompt: str | None = None
    response: str | None = None
    messages: str | None = None
    system: str | None = None
    context: str | None = None
    logprobs: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (not isinstance(value, str) or not value):
                raise DatasetError(f"{f.name}_col must be a non-empty column name, got {value!r}")
        if self.prompt is not None and self.messages is not None:
            raise DatasetError(
                f"give prompt_col ({self.prompt!r}) or messages_col ({self.messages!r}), not both: "
                "a row's input is either a prompt or a list of messages"
            )

    @property
    def uses_messages(self) -> bool:
        """True when the input is a messages column."""
        return self.messages is not None

    def as_dict(self) -> dict[str, str | None]:
        """The column names by role (for recording a run's settings)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def resolve(self, available: Sequence[str], source: str) -> Columns:
        """These columns with defaults filled in from ``available`` (the file's columns).

        Raises :class:`MissingColumnsError`, listing ``available``, when a needed column is absent.
        """
        have = list(available)
        chosen = self
        if self.prompt is None and self.messages is None:
            if DEFAULT_PROMPT in have:
                chosen = replace(chosen, prompt=DEFAULT_PROMPT)
            elif DEFAULT_MESSAGES in have:
                chosen = replace(chosen, messages=DEFAULT_MESSAGES)
            else:
                raise _missing(source, [DEFAULT_PROMPT], have, f"no {DEFAULT_PROMPT!r} or {DEFAULT_MESSAGES!r} column")
        if chosen.response is None and (DEFAULT_RESPONSE in have or not chosen.uses_messages):
            chosen = replace(chosen, response=DEFAULT_RESPONSE)
        for role in ("prompt", "messages", "response", "system", "context", "logprobs"):
            name = getattr(chosen, role)
            if name is not None and name not in have:
                raise _missing(source, [name], have, f"no {name!r} column (for the {role})")
        return chosen

    # -- one row ---------------------------------------------------------------------------------

    def request(self, values: Mapping[str, Any]) -> ScoreRequest:
        """The request that scores this row; :class:`RowProblem` when a value is missing or wrong."""
        response = _text(values, self.response) if self.response is not None else None
        system = _optional_text(values, self.system)
        context = _optional_text(values, self.context)
        logprobs = _logprobs(values, self.logprobs) if self.logprobs is not None else None
        head = [{"role": "system", "content": system}] if system else []
        if self.messages is not None:
            messages = _messages(values, self.messages)
            if response is None:
                messages, response = _split_answer(messages, self.messages)
            return ScoreRequest(
                response=response, messages=(*head, *messages), context=context, response_logprobs=logprobs
            )
        assert self.prompt is not None and response is not None  # resolve() set them
        prompt = _text(values, self.prompt)
        if head:
            return ScoreRequest(
                response=response,
                messages=(*head, {"role": "user", "content": prompt}),
                context=context,
                response_logprobs=logprobs,
            )
        return ScoreRequest(response=response, prompt=prompt, context=context, response_logprobs=logprobs)


def preview(request: ScoreRequest) -> str:
    """The question of a request, for showing a row: the prompt, or the last user message."""
    if request.prompt is not None:
        return request.prompt
    for message in reversed(request.messages or ()):
        if message.get("role") == "user":
            return _content_text(message.get("content"))
    return request.prompt_text()


def _missing(source: str, missing: list[str], have: list[str], what: str) -> MissingColumnsError:
    shown = ", ".join(repr(c) for c in have) if have else "(none)"
    return MissingColumnsError(
        f"{source} has {what}; its columns are: {shown}. Name the columns to use: --prompt-col/--response-col "
        "or --messages-col on the command line (prompt_col=, response_col=, messages_col= in Python)",
        missing=missing,
        available=have,
    )


def _is_missing(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):  # NaN: pandas' missing value
        return True
    return type(value).__name__ in ("NAType", "NaTType")  # pandas.NA / NaT, without importing pandas


def _text(values: Mapping[str, Any], name: str) -> str:
    if name not in values:
        raise RowProblem(f"no {name!r} value (the row has: {', '.join(map(repr, values)) or 'nothing'})")
    value = values[name]
    if _is_missing(value):
        raise RowProblem(f"{name!r} is missing (null)")
    if not isinstance(value, str):
        raise RowProblem(f"{name!r} must be text, got {type(value).__name__} {_short(value)}")
    if not value.strip():
        raise RowProblem(f"{name!r} is empty")
    return value


def _optional_text(values: Mapping[str, Any], name: str | None) -> str | None:
    if name is None:
        return None
    value = values.get(name)
    if _is_missing(value) or value == "":
        return None
    if not isinstance(value, str):
        raise RowProblem(f"{name!r} must be text, got {type(value).__name__} {_short(value)}")
    return value


def _json_value(value: Any, name: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise RowProblem(f"{name!r} is not valid JSON ({exc.msg} at character {exc.pos})") from None


def _messages(values: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    if name not in values or _is_missing(values[name]) or values[name] == "":
        raise RowProblem(f"{name!r} is missing")
    value = _json_value(values[name], name)
    if not isinstance(value, list) or not value:
        raise RowProblem(
            f"{name!r} must be a non-empty list of {{'role': ..., 'content': ...}} messages, "
            f"got {type(value).__name__} {_short(value)}"
        )
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping):
            raise RowProblem(f"{name}[{i}] must be an object with 'role' and 'content', got {type(message).__name__}")
        role = message.get("role")
        if role not in ROLES:
            raise RowProblem(f"{name}[{i}].role must be one of {', '.join(ROLES)}; got {role!r}")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise RowProblem(f"{name}[{i}].content must be text or a list of parts, got {type(content).__name__}")
        out.append(dict(message))
    return out


def _split_answer(messages: list[dict[str, Any]], name: str) -> tuple[list[dict[str, Any]], str]:
    last = messages[-1]
    answer = _content_text(last.get("content"))
    if last.get("role") != "assistant" or not answer.strip():
        raise RowProblem(
            f"no response: there is no response column and the last message of {name!r} is not an "
            "assistant message with text"
        )
    if len(messages) == 1:
        raise RowProblem(f"{name!r} holds only the assistant's answer, no prompt")
    return messages[:-1], answer


def _logprobs(values: Mapping[str, Any], name: str) -> tuple[TokenLogprob, ...]:
    value = _json_value(values.get(name), name)
    entries = value.get("content") if isinstance(value, Mapping) else value
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise RowProblem(
            f"{name!r} must hold OpenAI token logprobs (a list of {{'token', 'logprob'}} entries, "
            f"or {{'content': [...]}}), got {type(value).__name__}"
        )
    completion = {"choices": [{"index": 0, "message": {"content": ""}, "logprobs": {"content": entries}}]}
    tokens = generations_from_completion(completion)[0].logprobs
    if not tokens:
        raise RowProblem(f"{name!r} holds no usable token logprobs")
    return tokens


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) if isinstance(p, Mapping) else str(p)
            for p in content
            if isinstance(p, str) or (isinstance(p, Mapping) and p.get("type") == "text")
        )
    return ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
