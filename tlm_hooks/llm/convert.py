"""Read an OpenAI-shaped chat completion (dict or SDK object) into `Generation`s."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..types import TokenLogprob
from .base import Generation

__all__ = ["generations_from_completion", "usage_of", "field"]


def field(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for mappings, ``obj.key`` otherwise (``default`` when absent or None)."""
    value = obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
    return default if value is None else value


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if not math.isnan(number) else None


def _token_logprobs(choice: Any) -> tuple[TokenLogprob, ...] | None:
    content = field(field(choice, "logprobs"), "content")
    if not content:
        return None
    out = []
    for entry in content:
        logprob = _float(field(entry, "logprob"))
        if logprob is None:
            continue
        top = []
        for alt in field(entry, "top_logprobs", ()) or ():
            alt_logprob = _float(field(alt, "logprob"))
            if alt_logprob is not None:
                top.append((str(field(alt, "token", "")), alt_logprob))
        out.append(TokenLogprob(str(field(entry, "token", "")), logprob, tuple(top)))
    return tuple(out) or None


def _tool_calls(message: Any) -> tuple[dict[str, Any], ...]:
    out = []
    for entry in field(message, "tool_calls", ()) or ():
        function = field(entry, "function")
        name = field(function, "name")
        if function is None or not isinstance(name, str):
            continue
        arguments = field(function, "arguments", "")
        out.append({
            "id": str(field(entry, "id", "")), "type": "function",
            "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else str(arguments)},
        })  # fmt: skip
    return tuple(out)


def usage_of(completion: Any) -> tuple[int, int]:
    """``(prompt_tokens, completion_tokens)`` of a completion (zeros when not reported)."""
    usage = field(completion, "usage")
    if usage is None:
        return 0, 0
    return int(field(usage, "prompt_tokens", 0) or 0), int(field(usage, "completion_tokens", 0) or 0)


def generations_from_completion(completion: Any) -> list[Generation]:
    """One `Generation` per choice, in index order. Token counts: the prompt is charged to the
    first choice; completion tokens per choice from its logprobs, else split evenly."""
    choices = sorted(field(completion, "choices", ()) or (), key=lambda c: int(field(c, "index", 0) or 0))
    prompt_tokens, completion_tokens = usage_of(completion)
    share, extra = divmod(completion_tokens, max(1, len(choices)))
    out = []
    for i, choice in enumerate(choices):
        message = field(choice, "message", {})
        text = field(message, "content", "")  # None (so "") for a reply with only tool calls
        logprobs = _token_logprobs(choice)
        tokens = len(logprobs) if logprobs and len(choices) > 1 else share + (extra if i == 0 else 0)
        out.append(
            Generation(
                text=text if isinstance(text, str) else str(text),
                logprobs=logprobs,
                finish_reason=field(choice, "finish_reason"),
                prompt_tokens=prompt_tokens if i == 0 else 0,
                completion_tokens=tokens,
                tool_calls=_tool_calls(message),
            )
        )
    return out
