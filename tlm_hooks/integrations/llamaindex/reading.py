"""Plain text out of LlamaIndex objects (queries, nodes, responses, chat messages)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["query_text", "node_texts", "source_passages", "answer_of", "chat_messages", "prompt_text"]


def query_text(query: Any) -> str:
    """A query given as a string or a ``QueryBundle``."""
    if isinstance(query, str):
        return query
    text = getattr(query, "query_str", None)
    return text if isinstance(text, str) else str(query)


def node_texts(nodes: Sequence[Any] | None) -> list[str]:
    """The text of each ``NodeWithScore`` (or node), in order."""
    out = []
    for item in nodes or ():
        node = getattr(item, "node", item)
        get_content = getattr(node, "get_content", None)
        text = get_content() if callable(get_content) else getattr(node, "text", None)
        if isinstance(text, str) and text.strip():
            out.append(text)
    return out


def source_passages(response: Any) -> list[str]:
    """The source nodes' texts of a query engine's response (empty if it has none)."""
    return node_texts(getattr(response, "source_nodes", None))


def answer_of(response: Any) -> str | None:
    """A query engine response's answer text; ``None`` while a streamed answer is unfinished."""
    if response is None:
        return None
    if hasattr(response, "response_gen") or hasattr(response, "async_response_gen"):  # (Async)StreamingResponse
        text = getattr(response, "response_txt", None)
        return text if isinstance(text, str) and text else None
    if hasattr(response, "response"):
        text = response.response
        return text if isinstance(text, str) else "" if text is None else str(response)
    return str(response)


def chat_messages(messages: Sequence[Any]) -> list[Mapping[str, Any]]:
    """LlamaIndex ``ChatMessage``\\ s as ``{"role", "content"}`` dicts."""
    out: list[Mapping[str, Any]] = []
    for message in messages or ():
        if isinstance(message, Mapping):
            out.append(dict(message))
            continue
        role = getattr(message, "role", "user")
        out.append({"role": str(getattr(role, "value", role)), "content": getattr(message, "content", None) or ""})
    return out


def prompt_text(messages: Sequence[Mapping[str, Any]] | None, prompt: str | None) -> str:
    """The text an LLM call was given: its prompt, or its messages' contents joined."""
    if prompt is not None:
        return prompt
    return "\n".join(str(m.get("content") or "") for m in messages or ())
