"""The hand-made tool-choice set of ``benchmarks/tool_calls.py`` is what its README says it is."""

from __future__ import annotations

import json
from pathlib import Path

from tlm_hooks.scorers.signals.structural import ToolCall, calls_agreement

ITEMS = Path(__file__).resolve().parents[2] / "benchmarks" / "tool_calls" / "items.json"


def test_every_question_has_a_right_call_and_a_structurally_different_wrong_one() -> None:
    data = json.loads(ITEMS.read_text())
    items = data["items"]
    assert len(items) >= 60
    for right, wrong in zip(items[::2], items[1::2], strict=True):
        assert right["question"] == wrong["question"] and right["tools"] == wrong["tools"]
        assert (right["correct"], wrong["correct"]) == (True, False)
        assert set(right["tools"]) <= set(data["tools"]) and right["call"]["name"] in right["tools"]
        schema = data["tools"][right["call"]["name"]]["function"]["parameters"]
        assert set(schema["required"]) <= set(right["call"]["arguments"])  # right calls are complete
        a = ToolCall(right["call"]["name"], right["call"]["arguments"])
        b = ToolCall(wrong["call"]["name"], wrong["call"]["arguments"])
        assert calls_agreement([a], [b]) < 1.0
        kind = "tool" if a.name != b.name else "args"
        assert wrong["wrong_kind"] == kind
