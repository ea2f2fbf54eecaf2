"""Agreement of JSON values and tool calls compared as structures, not as text.

Objects are compared key by key (key order ignored), arrays item by item, numbers as numbers
(``1``, ``1.0`` and ``"1"`` agree; a bool is never a number), short strings after folding case
and spaces, longer strings (more than ``SHORT_WORDS`` words) by word overlap.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .similarity import lexical_overlap

__all__ = [
    "SHORT_WORDS",
    "ToolCall",
    "value_agreement",
    "parse_json",
    "find_json",
    "calls_from_chat",
    "calls_from_text",
    "calls_agreement",
]

SHORT_WORDS = 3  # strings up to this many words must match exactly (names, cities, ids, enum values)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _number(value: Any) -> float | None:
    """``value`` as a finite number: an int/float, or a string that is exactly one number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip().replace(",", "")):
        number = float(value.strip().replace(",", ""))
        return number if math.isfinite(number) else None
    return None


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def value_agreement(a: Any, b: Any) -> float:
    """How much two JSON values agree, in [0, 1] (see the module docstring for the rules)."""
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return 1.0 if math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) else 0.0
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        keys = set(a) | set(b)
        if not keys:
            return 1.0
        return sum(value_agreement(a[k], b[k]) if k in a and k in b else 0.0 for k in keys) / len(keys)
    if isinstance(a, list) and isinstance(b, list):
        if not a and not b:
            return 1.0
        if not a or not b:
            return 0.0
        return sum(value_agreement(p, q) for p, q in zip(a, b, strict=False)) / max(len(a), len(b))
    if isinstance(a, str) and isinstance(b, str):
        if _fold(a) == _fold(b):
            return 1.0
        if max(len(a.split()), len(b.split())) <= SHORT_WORDS:
            return 0.0
        return lexical_overlap(a, b)
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return 1.0 if a is b else 0.0
    return 1.0 if a == b else 0.0


def parse_json(text: Any) -> Any:
    """``text`` parsed as JSON; a value that is not a string is returned as it is. Raises
    ``ValueError`` for text that is not JSON."""
    if not isinstance(text, str):
        return text
    return json.loads(text)


def find_json(text: str) -> Any:
    """The first JSON object or array in ``text`` (a model's reply may wrap it in prose or a
    code fence); ``None`` when there is none."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, (dict, list)):
            return value
    return None


@dataclass(frozen=True)
class ToolCall:
    """One call: the function's name and its arguments (parsed; ``None`` when they were not JSON)."""

    name: str
    arguments: Any
    raw_arguments: str = ""

    def describe(self) -> str:
        """``name({...})`` with the arguments as canonical JSON (keys sorted)."""
        args = self.raw_arguments if self.arguments is None else json.dumps(self.arguments, sort_keys=True)
        return f"{self.name}({args})"


def _call(name: Any, arguments: Any) -> ToolCall | None:
    if not isinstance(name, str) or not name.strip():
        return None
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments, sort_keys=True, default=str)
    try:
        parsed = parse_json(arguments) if arguments not in (None, "") else {}
    except ValueError:
        parsed = None
    return ToolCall(name.strip(), parsed, raw)


def calls_from_chat(tool_calls: Sequence[Mapping[str, Any]] | None) -> list[ToolCall]:
    """The calls of chat ``tool_calls`` (``{"function": {"name", "arguments"}}``), in order;
    entries without a function name are left out."""
    out = []
    for entry in tool_calls or ():
        function = entry.get("function") if isinstance(entry, Mapping) else None
        if isinstance(function, Mapping):
            call = _call(function.get("name"), function.get("arguments"))
            if call is not None:
                out.append(call)
    return out


def calls_from_text(text: str) -> list[ToolCall]:
    """Tool calls a judge wrote as JSON in text: ``{"name", "arguments"}``, a list of those,
    ``{"tool_calls": [...]}``, or chat-shaped entries; ``[]`` when the reply holds none."""
    value = find_json(text)
    if isinstance(value, Mapping) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]
    items = value if isinstance(value, list) else [value] if isinstance(value, Mapping) else []
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        function = item.get("function")
        source: Mapping[str, Any] = function if isinstance(function, Mapping) else item
        name = source.get("name") or source.get("tool")
        arguments = source.get("arguments", source.get("parameters", source.get("args", {})))
        call = _call(name, arguments)
        if call is not None:
            out.append(call)
    return out


def _one_agreement(a: ToolCall, b: ToolCall) -> float:
    if a.name != b.name:
        return 0.0
    if a.arguments is None or b.arguments is None:  # unparseable arguments: only the exact text agrees
        return 0.5 if a.raw_arguments.strip() == b.raw_arguments.strip() else 0.25
    return 0.5 + 0.5 * value_agreement(a.arguments, b.arguments)


def calls_agreement(scored: Sequence[ToolCall], other: Sequence[ToolCall]) -> float:
    """Agreement of two sets of calls in [0, 1]: each scored call is paired with the other's
    best-matching call of the same function (once each). A pair counts half for the same
    function and half for the arguments' agreement; unpaired calls on either side count 0."""
    if not scored and not other:
        return 1.0
    if not scored or not other:
        return 0.0
    left = list(other)
    total = 0.0
    for call in scored:
        if not left:
            break
        best = max(range(len(left)), key=lambda i: _one_agreement(call, left[i]))
        total += _one_agreement(call, left.pop(best))
    return total / max(len(scored), len(other))
