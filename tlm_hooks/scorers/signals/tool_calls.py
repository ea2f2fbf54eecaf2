"""Tool calls scored as a decision: the judge sees the tool schemas, and sampled decisions are
compared with the scored one as structures (`structural.calls_agreement`).

How the judge's own decisions are sampled, named in ``tlm_metadata["log"]["tool_calls"]["sampled_with"]``:

- ``"native_tools"`` (`SAMPLED_NATIVELY`): a backend that can offer its model tools
  (``native_tools = True``: the OpenAI-compatible, litellm and Azure AI Inference backends) is
  re-asked the conversation as it was, tool turns included, with the request's tools, and its
  real tool calls are compared;
- ``"json_text"`` (`SAMPLED_WITH`): any other judge (the embedded model, a backend of your own)
  is asked to write a tool call as JSON (``{"name": ..., "arguments": {...}}``) in its reply.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from ...llm.failures import is_context_overflow, status_of
from ...types import ScoreRequest, chat_function_tool, content_text
from .reflection import ReflectionPrompt
from .structural import ToolCall, calls_agreement, calls_from_chat, calls_from_text

__all__ = [
    "SAMPLED_WITH",
    "SAMPLED_NATIVELY",
    "native_tools",
    "refused_tools",
    "remember_tools_refused",
    "function_tools",
    "native_sample_messages",
    "sample_text",
    "TOOL_REFLECTION_PROMPTS",
    "NOT_SCORED",
    "tools_text",
    "decision_text",
    "tool_question",
    "sample_messages",
    "agreement_with_samples",
    "score_tool_calls_enabled",
]

SAMPLED_WITH = "json_text"  # how the judge was asked for its own tool call (see the module docstring)
SAMPLED_NATIVELY = "native_tools"
NOT_SCORED = "tool calls were not scored: options.score_tool_calls is false"
_SCHEMA_CHARS = 600  # of each tool's parameter schema shown to the judge
_TOOLS_CHARS = 3000

# Our own wordings; the first R are used for R reflections (cycled when R is larger).
TOOL_REFLECTION_PROMPTS: tuple[ReflectionPrompt, ...] = (
    ReflectionPrompt(
        "word",
        "{question}\n\nThe assistant's next step:\n{answer}\n\n"
        "Is this the right tool to call, with the right arguments? Respond with exactly one word: yes or no.",
    ),
    ReflectionPrompt(
        "letter",
        "Review an assistant's tool call.\n\n{question}\n\nThe call under review:\n{answer}\n\n"
        "Options:\nA) the right tool with the right arguments\nB) a wrong tool or wrong arguments\n"
        "C) cannot say\n\nWrite only the letter of your choice.",
    ),
    ReflectionPrompt(
        "scale",
        "{question}\n\nThe assistant decided: {answer}\n\nHow confident are you that this call is the right "
        "one, from 0 (surely wrong) to 10 (surely right)? Give just the number.",
    ),
)

_SAMPLE_INSTRUCTION = (
    "You can call these tools:\n{tools}\n\n"
    "To call a tool, reply with only a JSON object of this form and nothing else:\n"
    '{{"name": "<tool name>", "arguments": {{<argument name>: <value>, ...}}}}\n'
    "If no tool is needed, answer the user in plain text."
)


def _tool_function(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    function = tool.get("function")
    return function if isinstance(function, Mapping) else tool  # chat shape, or Responses' flat shape


def tools_text(tools: Sequence[Mapping[str, Any]] | None) -> str:
    """The tool schemas as short lines: ``- name: description. parameters: {...}``."""
    lines = []
    for tool in tools or ():
        function = _tool_function(tool)
        name = function.get("name")
        if not isinstance(name, str):
            continue
        line = f"- {name}"
        if function.get("description"):
            line += f": {function['description']}"
        parameters = function.get("parameters")
        if parameters:
            schema = json.dumps(parameters, sort_keys=True, default=str)
            line += f" parameters: {schema[:_SCHEMA_CHARS]}{'…' if len(schema) > _SCHEMA_CHARS else ''}"
        lines.append(line)
    text = "\n".join(lines) or "(none listed)"
    return text if len(text) <= _TOOLS_CHARS else text[:_TOOLS_CHARS] + "\n…"


def decision_text(calls: Sequence[ToolCall]) -> str:
    """The calls as the judge reads them: ``call get_weather with arguments {"city": "Paris"}``."""
    parts = []
    for call in calls:
        args = json.dumps(call.arguments, sort_keys=True) if call.arguments is not None else call.raw_arguments
        parts.append(f"call {call.name} with arguments {args}")
    return "; then ".join(parts) if parts else "(no tool call)"


def tool_question(request: ScoreRequest, conversation: str) -> str:
    """What a tool-call reflection shows the judge: the tools offered and the conversation."""
    return f"Tools the assistant can call:\n{tools_text(request.tools)}\n\nConversation:\n{conversation}"


def _message_text(message: Mapping[str, Any]) -> str:
    text = content_text(message.get("content"))
    calls = calls_from_chat(message.get("tool_calls"))
    if calls:
        text = (text + "\n" if text else "") + "Tool call: " + decision_text(calls)
    return text


def sample_messages(request: ScoreRequest) -> list[dict[str, Any]]:
    """The conversation re-asked of the judge with the tool schemas and the JSON-call
    instruction; earlier tool calls and tool results are written out as text."""
    instruction = {"role": "system", "content": _SAMPLE_INSTRUCTION.format(tools=tools_text(request.tools))}
    if request.messages is None:
        return [instruction, {"role": "user", "content": request.prompt or ""}]
    out: list[dict[str, Any]] = [instruction]
    for message in request.messages:
        role = str(message.get("role", "user"))
        text = _message_text(message)
        if role == "tool":
            out.append({"role": "user", "content": f"Tool result: {text}"})
        elif role in ("system", "developer"):
            out.append({"role": "system", "content": text})
        elif role in ("user", "assistant") and text:
            out.append({"role": role, "content": text})
    return out


_REFUSED_TOOLS: weakref.WeakSet[Any] = weakref.WeakSet()  # judges whose server refused `tools`


def native_tools(judge: Any) -> bool:
    """Whether ``judge`` can be offered tools: ``native_tools = True`` on its backend, and its
    server has not refused the ``tools`` parameter before (:func:`remember_tools_refused`)."""
    if getattr(judge, "native_tools", False) is not True:
        return False
    try:
        return judge not in _REFUSED_TOOLS
    except TypeError:  # not weak-referenceable
        return True


def refused_tools(exc: BaseException) -> bool:
    """Whether a failed request with ``tools`` was refused for them: a bad request (400/422) whose
    message speaks of tools (a server without tool calling, such as vLLM without
    ``--enable-auto-tool-choice``); any other error is the request's own."""
    return status_of(exc) in (400, 422) and "tool" in str(exc).lower() and not is_context_overflow(exc)


def remember_tools_refused(judge: Any) -> bool:
    """Remember that ``judge``'s server refused ``tools``; ``True`` the first time."""
    try:
        if judge in _REFUSED_TOOLS:
            return False
        _REFUSED_TOOLS.add(judge)
    except TypeError:
        pass
    return True


def function_tools(tools: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The function tools a judge can be offered, chat-shaped (`chat_function_tool`); built-in
    tools (web search, ...) left out."""
    return [shaped for tool in tools or () if (shaped := chat_function_tool(tool)) is not None]


def native_sample_messages(request: ScoreRequest) -> list[dict[str, Any]]:
    """The conversation as the scored call sent it (tool turns included), for a judge offered
    the tools natively."""
    if request.messages is None:
        return [{"role": "user", "content": request.prompt or ""}]
    return [dict(message) for message in request.messages]


def sample_text(text: str, tool_calls: Sequence[Mapping[str, Any]]) -> str:
    """A sampled reply as the comparison reads it: its tool calls as ``{"tool_calls": [...]}``
    JSON when it made any, else its text."""
    return json.dumps({"tool_calls": list(tool_calls)}) if tool_calls else text


def agreement_with_samples(scored: Sequence[ToolCall], samples: Sequence[str]) -> list[float]:
    """Agreement of the scored calls with each sampled reply (a reply with no call agrees 0)."""
    return [calls_agreement(scored, calls_from_text(text)) for text in samples]


def score_tool_calls_enabled(options: Any) -> bool:
    """``options.score_tool_calls`` (default on) from a `TLMOptions`, a body dict or ``None``."""
    settings = getattr(options, "options", None)
    if settings is None and isinstance(options, Mapping):
        settings = options.get("options", {})
    if not isinstance(settings, Mapping):
        return True
    return settings.get("score_tool_calls", True) is not False
