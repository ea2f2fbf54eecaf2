"""How a scorer talks to a judge model: the `ChatBackend` protocol and its `Generation` result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..types import TokenLogprob

__all__ = ["ChatBackend", "Generation"]


@dataclass(frozen=True)
class Generation:
    """One answer from a judge model: its text, token logprobs (when asked and available),
    why it stopped, token counts (0 when the backend doesn't say), and the tool calls it made
    (chat shape: ``{"id", "type": "function", "function": {"name", "arguments"}}``)."""

    text: str
    logprobs: tuple[TokenLogprob, ...] | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: tuple[Mapping[str, Any], ...] = ()


@runtime_checkable
class ChatBackend(Protocol):
    """A chat model a scorer can call. ``acomplete`` returns ``n`` generations (in one request
    where the server honours ``n``, else in parallel requests with distinct seeds; fewer when
    some of those failed, an error when all did). Backends may also have ``endpoint``, the URL
    they call, which errors name.

    A backend whose model can be offered tools sets ``native_tools = True`` and takes
    ``tools=`` (chat-shaped tool schemas) in ``acomplete``; its generations carry the calls the
    model made. The engine then samples tool-call decisions as real calls (see
    :func:`tlm_hooks.scorers.signals.tool_calls.native_tools`); other backends are asked to
    write a call as JSON text."""

    name: str

    async def acomplete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        n: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 256,
        logprobs: bool = False,
        top_logprobs: int = 0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> list[Generation]: ...
