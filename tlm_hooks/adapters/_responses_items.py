"""The Responses API's request items in the chat shape every scorer reads (no SDK import:
shared by the hook's adapter and the server's ``/v1/responses``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..types import chat_function_tool

__all__ = ["EARLIER_TURNS_UNSEEN", "LOGPROBS_INCLUDE", "chat_call", "chat_tools", "input_messages"]

LOGPROBS_INCLUDE = "message.output_text.logprobs"  # how the Responses API is asked for token logprobs
EARLIER_TURNS_UNSEEN = (
    "the request continues an earlier conversation ({what}) that the hook cannot see: "
    "scored with the turns this request holds only"
)


def _given(value: Any) -> bool:
    """False for ``None`` and the openai SDK's "not given" sentinels (matched by name: no import)."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


def _plain(obj: Any) -> Any:
    """A JSON-like copy of an item given as dict, TypedDict or pydantic model."""
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if hasattr(obj, "model_dump"):
        return obj.model_dump(exclude_none=True)
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


_PLACEHOLDERS = {"input_image": "[image]", "input_audio": "[audio]"}


def _text_part(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def _content(content: Any) -> Any:
    """A Responses message's ``content`` in the chat shape: a string, or a list of text parts
    (images, files and audio as placeholders, so the judge knows they were there)."""
    if isinstance(content, str) or content is None:
        return content or ""
    parts = []
    for part in content if isinstance(content, (list, tuple)) else [content]:
        part = _plain(part)
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append(_text_part(str(part.get("text", ""))))
        elif kind == "refusal":
            parts.append(_text_part(str(part.get("refusal", ""))))
        elif kind == "input_file":
            name = part.get("filename") or part.get("file_id") or part.get("file_url") or "file"
            parts.append(_text_part(f"[file: {name}]"))
        elif kind is not None:
            parts.append(_text_part(_PLACEHOLDERS.get(kind, f"[{kind}]")))
    return parts


def chat_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"id": call_id or "", "type": "function", "function": {"name": name or "", "arguments": arguments or ""}}


def input_messages(instructions: Any, input: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """``instructions`` + ``input`` as chat messages, and what could not be read (item types
    that refer to turns kept elsewhere)."""
    messages: list[dict[str, Any]] = []
    unseen: list[str] = []
    if _given(instructions) and instructions:
        messages.append({"role": "system", "content": str(instructions)})
    if not _given(input):
        return messages, unseen
    if isinstance(input, str):
        messages.append({"role": "user", "content": input})
        return messages, unseen
    for item in input if isinstance(input, Iterable) else ():
        item = _plain(item)
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind in (None, "message") and "role" in item:
            role = "system" if item["role"] == "developer" else str(item["role"])
            messages.append({"role": role, "content": _content(item.get("content"))})
        elif kind == "function_call":
            call = chat_call(item.get("call_id"), item.get("name"), item.get("arguments"))
            if messages and messages[-1]["role"] == "assistant" and "tool_calls" in messages[-1]:
                messages[-1]["tool_calls"].append(call)  # parallel calls: one assistant turn
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else json.dumps(_plain(output), sort_keys=True)
            messages.append({"role": "tool", "tool_call_id": item.get("call_id") or "", "content": text})
        elif kind == "item_reference":
            unseen.append(f"item_reference {item.get('id')!r}")
        elif kind == "reasoning":
            continue  # the model's own scratch work, not part of the conversation
        else:
            messages.append({"role": "assistant", "content": f"[{kind}]"})
    return messages, unseen


def chat_tools(tools: Any) -> tuple[dict[str, Any], ...] | None:
    """Responses tools in the chat shape: function tools as `chat_function_tool` gives them;
    built-in tools (web search...) as given."""
    if not _given(tools):
        return None
    out = []
    for tool in tools:
        tool = _plain(tool)
        if isinstance(tool, Mapping):
            out.append(chat_function_tool(tool) or dict(tool))
    return tuple(out)
