"""Rebuild a :class:`ScoreRequest` from the attributes of an OpenInference LLM span.

OpenInference records the call flat (``llm.input_messages.0.message.role``, ``...content``,
``llm.output_messages.0.message.content``, ``llm.tools.0.tool.json_schema``) and as JSON in
``input.value`` / ``output.value``. Phoenix's REST API returns the flat form; its spans
dataframe nests lists (``llm.input_messages`` = ``[{"message.role": ...}, ...]``). Both are
flattened to dotted keys first, so one reader handles either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..types import ScoreRequest
from ._payloads import load_json, logprobs_from, request_from_parts, response_from

__all__ = ["flatten", "request_from_attributes"]


def flatten(attributes: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys for nested mappings and lists of mappings (strings and scalars kept as is)."""
    flat: dict[str, Any] = {}
    for key, value in attributes.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif _is_list(value) and value and all(isinstance(v, Mapping) for v in value):
            for index, item in enumerate(value):
                flat.update(flatten(item, f"{name}.{index}."))
        else:
            flat[name] = value
    return flat


def request_from_attributes(attributes: Mapping[str, Any]) -> ScoreRequest | None:
    """The LLM call recorded in a span's attributes, or ``None`` when there is nothing to score."""
    flat = flatten(attributes)
    outputs = load_json(flat.get("output.value"))
    answer = _answer(flat) or response_from(outputs)
    if answer is None:
        return None
    logprobs = logprobs_from(outputs)
    text, tool_calls = answer
    model = flat.get("llm.model_name") if isinstance(flat.get("llm.model_name"), str) else None
    tools = _tools(flat)
    messages = _indexed(flat, "llm.input_messages.", _message)
    if messages:
        return ScoreRequest(
            response=text, messages=tuple(messages), tool_calls=tuple(tool_calls) or None, tools=tuple(tools) or None,
            model=model, response_logprobs=logprobs,
        )  # fmt: skip
    prompts = _prompts(flat)
    inputs: Any = "\n".join(prompts) if prompts else flat.get("input.value")
    return request_from_parts(inputs, text, tool_calls, tools=tools, model=model, logprobs=logprobs)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _indexed(flat: Mapping[str, Any], prefix: str, build: Any) -> list[Any]:
    """Items ``prefix<i>.…`` in index order, each built from its own sub-keys."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in flat.items():
        if key.startswith(prefix):
            index, _, rest = key[len(prefix) :].partition(".")
            if index.isdigit():
                groups.setdefault(int(index), {})[rest] = value
    items = (build(groups[i]) for i in sorted(groups))
    return [item for item in items if item is not None]


def _message(fields: Mapping[str, Any]) -> dict[str, Any] | None:
    role = fields.get("message.role")
    content = fields.get("message.content")
    if content is None:  # multi-part content: message.contents.<j>.message_content.text
        parts = _indexed(fields, "message.contents.", lambda f: f.get("message_content.text"))
        content = "\n".join(str(p) for p in parts) if parts else ""
    calls = _indexed(fields, "message.tool_calls.", _tool_call)
    if role is None and not content and not calls:
        return None
    message: dict[str, Any] = {"role": str(role or "user"), "content": str(content)}
    if calls:
        message["tool_calls"] = calls
    if fields.get("message.tool_call_id"):
        message["tool_call_id"] = fields["message.tool_call_id"]
    if fields.get("message.name"):
        message["name"] = fields["message.name"]
    return message


def _tool_call(fields: Mapping[str, Any]) -> dict[str, Any] | None:
    name = fields.get("tool_call.function.name")
    if name is None:
        return None
    call: dict[str, Any] = {
        "type": "function",
        "function": {"name": name, "arguments": fields.get("tool_call.function.arguments", "")},
    }
    if fields.get("tool_call.id"):
        call["id"] = fields["tool_call.id"]
    return call


def _prompts(flat: Mapping[str, Any]) -> list[str]:
    """Completions API prompts: ``llm.prompts.<i>.prompt.text``, or a plain list ``llm.prompts``."""
    listed = flat.get("llm.prompts")
    if listed is not None and _is_list(listed):
        return [p for p in listed if isinstance(p, str) and p]
    found = _indexed(flat, "llm.prompts.", lambda f: f.get("prompt.text", f.get("")))
    return [p for p in found if isinstance(p, str) and p]


def _answer(flat: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]] | None:
    outputs = _indexed(flat, "llm.output_messages.", _message)
    if outputs:
        first = outputs[0]
        calls = list(first.get("tool_calls") or ())
        return (first["content"], calls) if first["content"] or calls else None
    choices = _indexed(flat, "llm.choices.", lambda f: f.get("completion.text"))
    if choices and isinstance(choices[0], str) and choices[0]:
        return choices[0], []
    return None


def _tools(flat: Mapping[str, Any]) -> list[dict[str, Any]]:
    tools = []
    for schema in _indexed(flat, "llm.tools.", lambda f: f.get("tool.json_schema")):
        parsed = load_json(schema) if isinstance(schema, str) else schema
        if isinstance(parsed, Mapping):
            tools.append(dict(parsed))
    return tools
