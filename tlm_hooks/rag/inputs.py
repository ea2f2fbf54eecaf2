"""What one RAG item is (query, context, response, prompt), checked before any model call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends._wire import default_rag_prompt
from ..errors import InvalidOptionError

__all__ = ["RagItem", "check_item", "check_items", "ITEM_KEYS", "build_prompt"]

ITEM_KEYS: tuple[str, ...] = ("query", "context", "response", "prompt")


def build_prompt(query: str, context: str) -> str:
    """The prompt assumed when none is given: an instruction, the context, then the question."""
    return default_rag_prompt(query, context)


@dataclass(frozen=True)
class RagItem:
    """A checked item: ``context`` joined into one string, ``prompt`` filled in."""

    query: str
    context: str
    prompt: str
    response: str | None = None


def _context(value: Any, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        for i, chunk in enumerate(value):
            if not isinstance(chunk, str):
                raise InvalidOptionError(f"{key}[{i}]", chunk, "a string (one retrieved passage)")
        return "\n\n".join(value)
    shown = "missing" if value is None else value
    raise InvalidOptionError(key, shown, "a string, or a list of strings (retrieved passages, joined in order)")


def check_item(
    query: Any, context: Any, response: Any = None, prompt: Any = None, *, needs_response: bool, where: str = ""
) -> RagItem:
    """A :class:`RagItem`, or :class:`InvalidOptionError` naming the bad field (prefixed by ``where``)."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidOptionError(f"{where}query", "missing" if query is None else query, "a non-empty string")
    text = _context(context, f"{where}context")
    if needs_response:
        if not isinstance(response, str):
            shown = "missing" if response is None else response
            raise InvalidOptionError(f"{where}response", shown, "a string (the answer to score)")
    elif response is not None:
        raise InvalidOptionError(f"{where}response", response, "nothing: generate() writes the response")
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise InvalidOptionError(f"{where}prompt", prompt, "None or a non-empty string")
    return RagItem(query, text, prompt if prompt is not None else build_prompt(query, text), response)


def check_items(items: Any, *, needs_response: bool) -> list[RagItem]:
    """Every item of a batch checked (all of them, before any model call)."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise InvalidOptionError("items", items, "a list of dicts with query, context, response and optional prompt")
    allowed = ITEM_KEYS if needs_response else tuple(k for k in ITEM_KEYS if k != "response")
    out = []
    for i, item in enumerate(items):
        where = f"items[{i}]."
        if not isinstance(item, Mapping):
            raise InvalidOptionError(f"items[{i}]", item, f"a dict with keys {', '.join(allowed)}")
        unknown = sorted((k for k in item if k not in allowed), key=str)
        if unknown:
            raise InvalidOptionError(f"{where}{unknown[0]}", item[unknown[0]], f"keys {', '.join(allowed)}")
        out.append(
            check_item(
                item.get("query"),
                item.get("context"),
                item.get("response"),
                item.get("prompt"),
                needs_response=needs_response,
                where=where,
            )
        )
    return out
