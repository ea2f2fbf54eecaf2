"""Rebuild a :class:`ScoreRequest` from what a tracer recorded about one LLM call.

Tracers store the call's request and response as JSON-like values: an OpenAI chat request
(``messages``, incl. system messages), a completions request (``prompt``), a Responses API
request (``instructions`` + ``input``), a plain prompt string, or the keyword arguments of a
traced function. Responses are a chat completion, a completion, a Responses API object, a
plain string, or a dict holding the answer. Everything here is plain Python (no SDK).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..types import ScoreRequest, TokenLogprob

__all__ = ["request_from_payload", "request_from_parts", "messages_from", "response_from", "logprobs_from", "load_json"]

# keys whose string value is the answer when a traced function returned a dict
_ANSWER_KEYS = ("content", "text", "answer", "output", "response", "result", "output_text", "completion")
_TEXT_PART_TYPES = ("text", "input_text", "output_text")


def load_json(value: Any) -> Any:
    """``value`` parsed when it is a JSON object/array string; otherwise ``value`` unchanged."""
    if isinstance(value, (str, bytes)):
        text = value.strip() if isinstance(value, str) else value.strip().decode("utf-8", "replace")
        if text[:1] in ("{", "[", '"'):
            try:
                return json.loads(text)
            except ValueError:
                return value
    return value


def request_from_payload(inputs: Any, outputs: Any) -> ScoreRequest | None:
    """A request from a recorded ``inputs``/``outputs`` pair, or ``None`` when either side
    holds nothing that can be scored (no prompt, or no answer text and no tool calls)."""
    outputs = load_json(outputs)
    answer = response_from(outputs)
    if answer is None:
        return None
    return request_from_parts(inputs, answer[0], answer[1], logprobs=logprobs_from(outputs))


def request_from_parts(
    inputs: Any,
    response: str,
    tool_calls: Sequence[Mapping[str, Any]] = (),
    *,
    tools: Sequence[Mapping[str, Any]] = (),
    model: str | None = None,
    logprobs: Sequence[TokenLogprob] | None = None,
) -> ScoreRequest | None:
    """A request for ``response`` (and ``tool_calls``, with the answer's token ``logprobs`` when
    recorded) to the recorded ``inputs``; ``tools`` and ``model`` fill in what ``inputs`` does
    not say. ``None`` when ``inputs`` holds no prompt."""
    inputs = load_json(inputs)
    if model is None and isinstance(inputs, Mapping) and isinstance(inputs.get("model"), str):
        model = inputs["model"]
    common: dict[str, Any] = {
        "response": response,
        "tool_calls": tuple(tool_calls) or None,
        "tools": tuple(_tools_of(inputs) or tools) or None,
        "model": model,
        "response_logprobs": tuple(logprobs) if logprobs else None,
    }
    messages = messages_from(inputs)
    if messages:
        return ScoreRequest(messages=tuple(messages), **common)
    prompt = _prompt_of(inputs)
    if prompt is None:
        return None
    return ScoreRequest(prompt=prompt, **common)


# -- the input side -------------------------------------------------------------------------------


def messages_from(inputs: Any) -> list[dict[str, Any]] | None:
    """Chat messages (system messages included) from a chat or Responses API request, or from a
    bare message list; ``None`` when ``inputs`` is not one of those."""
    if isinstance(inputs, Sequence) and not isinstance(inputs, (str, bytes)) and _looks_like_messages(inputs):
        return [_message(m) for m in inputs]
    if not isinstance(inputs, Mapping):
        return None
    raw = inputs.get("messages")
    if isinstance(raw, Sequence) and not isinstance(raw, (str, bytes)) and _looks_like_messages(raw):
        return [_message(m) for m in raw]
    if "input" in inputs and (
        "instructions" in inputs or "model" in inputs or not isinstance(inputs.get("input"), str)
    ):
        return _responses_messages(inputs)
    return None


def _looks_like_messages(items: Sequence[Any]) -> bool:
    return bool(items) and all(isinstance(m, Mapping) and "role" in m for m in items)


def _message(raw: Mapping[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": str(raw.get("role") or "user"), "content": _text_of(raw.get("content"))}
    for key in ("name", "tool_call_id", "tool_calls"):
        if raw.get(key):
            message[key] = raw[key]
    return message


def _responses_messages(inputs: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Messages of an OpenAI Responses API request: ``instructions`` become the system message."""
    out: list[dict[str, Any]] = []
    instructions = inputs.get("instructions")
    if isinstance(instructions, str) and instructions:
        out.append({"role": "system", "content": instructions})
    items = inputs.get("input")
    if isinstance(items, str):
        out.append({"role": "user", "content": items})
    elif isinstance(items, Sequence):
        for item in items:
            if isinstance(item, str):
                out.append({"role": "user", "content": item})
            elif isinstance(item, Mapping) and "role" in item:
                out.append(_message(item))
            elif isinstance(item, Mapping) and item.get("type") == "function_call_output":
                out.append({"role": "tool", "content": _text_of(item.get("output"))})
            elif isinstance(item, Mapping) and item.get("type") == "function_call":
                call = {"name": item.get("name"), "arguments": item.get("arguments")}
                out.append({"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call}]})
    return out or None


def _prompt_of(inputs: Any) -> str | None:
    """The prompt of a completions request (``prompt``), or a traced function's arguments:
    a lone string argument as is, several as ``name: value`` lines (all of them are the input
    the answer was produced from)."""
    if isinstance(inputs, str):
        return inputs or None
    if isinstance(inputs, Mapping):
        prompt = inputs.get("prompt")
        if isinstance(prompt, Sequence) and not isinstance(prompt, str) and len(prompt) == 1:
            prompt = prompt[0]
        if isinstance(prompt, str) and prompt:
            return prompt
        fields = {str(k): v for k, v in inputs.items() if v is not None}
        if not fields:
            return None
        if len(fields) == 1 and isinstance(next(iter(fields.values())), str):
            return next(iter(fields.values())) or None
        return "\n".join(f"{k}: {v if isinstance(v, str) else _json(v)}" for k, v in fields.items())
    if inputs is None or inputs == []:
        return None
    return _json(inputs)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _tools_of(inputs: Any) -> list[Mapping[str, Any]]:
    if not isinstance(inputs, Mapping):
        return []
    tools = inputs.get("tools")
    if isinstance(tools, Sequence) and not isinstance(tools, str):
        return [t for t in tools if isinstance(t, Mapping)]
    return []


# -- the output side ------------------------------------------------------------------------------


def response_from(outputs: Any) -> tuple[str, list[dict[str, Any]]] | None:
    """``(answer text, tool calls)`` from a recorded response, or ``None`` when it holds neither."""
    if isinstance(outputs, str):
        return (outputs, []) if outputs else None
    if not isinstance(outputs, Mapping):
        return None
    choices = outputs.get("choices")
    if isinstance(choices, Sequence) and choices and isinstance(choices[0], Mapping):
        first = choices[0]
        message = first.get("message") or first.get("delta")
        if isinstance(message, Mapping):
            text = _text_of(message.get("content"))
            calls = [dict(c) for c in message.get("tool_calls") or () if isinstance(c, Mapping)]
            return (text, calls) if text or calls else None
        if isinstance(first.get("text"), str):
            return (first["text"], []) if first["text"] else None
    if isinstance(outputs.get("output"), Sequence) and not isinstance(outputs.get("output"), str):
        return _responses_output(outputs)
    for key in _ANSWER_KEYS:
        value = outputs.get(key)
        if isinstance(value, str) and value:
            return value, []
    if isinstance(outputs.get("message"), Mapping):  # e.g. a chat response with one message
        return response_from({"choices": [{"message": outputs["message"]}]})
    return None


def logprobs_from(outputs: Any) -> tuple[TokenLogprob, ...] | None:
    """The answer's token logprobs in a recorded chat completion (``choices[0].logprobs``),
    when the call asked for them; else ``None``."""
    if not isinstance(outputs, Mapping):
        return None
    choices = outputs.get("choices")
    if not isinstance(choices, Sequence) or not choices or not isinstance(choices[0], Mapping):
        return None
    logprobs = choices[0].get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    if not isinstance(content, Sequence) or not content:
        return None
    tokens = []
    for item in content:
        if not isinstance(item, Mapping) or not isinstance(item.get("logprob"), (int, float)):
            return None  # partial logprobs would skew the signal: use none
        top = tuple(
            (str(alt.get("token", "")), float(alt["logprob"]))
            for alt in item.get("top_logprobs") or ()
            if isinstance(alt, Mapping) and isinstance(alt.get("logprob"), (int, float))
        )
        tokens.append(TokenLogprob(str(item.get("token", "")), float(item["logprob"]), top))
    return tuple(tokens)


def _responses_output(outputs: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in outputs.get("output") or ():
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "message":
            texts.append(_text_of(item.get("content")))
        elif item.get("type") == "function_call":
            call = {"name": item.get("name"), "arguments": item.get("arguments")}
            calls.append({"type": "function", "function": call})
    fallback = outputs.get("output_text")
    text = "".join(texts) or (fallback if isinstance(fallback, str) else "")
    return (text, calls) if text or calls else None


def _text_of(content: Any) -> str:
    """Text of a message ``content``: a string, or the text parts of a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") in _TEXT_PART_TYPES:
                parts.append(str(part.get("text", "")))
        return "\n".join(parts)
    return str(content)
