"""Rebuilding the scored request from what tracers record (no server, no SDK needed)."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from tlm_hooks import ScoreRequest
from tlm_hooks.integrations._openinference import flatten, request_from_attributes
from tlm_hooks.integrations._payloads import request_from_payload
from tlm_hooks.integrations.mlflow import request_from_trace, score_mlflow_traces

SYSTEM = {"role": "system", "content": "You are a trivia master."}
USER = {"role": "user", "content": "What is the capital of France?"}


def chat_completion(content: Any = "Paris.", **message: Any) -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message}}],
    }


def test_chat_request_keeps_system_messages_and_model() -> None:
    request = request_from_payload({"model": "gpt-x", "messages": [SYSTEM, USER]}, chat_completion())
    assert request == ScoreRequest(response="Paris.", messages=(SYSTEM, USER), model="gpt-x")
    assert request.prompt_text().startswith("system: You are a trivia master.\nuser: What is")


def test_json_strings_and_content_parts() -> None:
    parts = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image_url", "image_url": {}},
            {"type": "text", "text": "what?"},
        ],
    }
    request = request_from_payload(
        json.dumps({"messages": [SYSTEM, parts]}), json.dumps(chat_completion([{"type": "text", "text": "A cat."}]))
    )
    assert request is not None
    assert request.messages == (SYSTEM, {"role": "user", "content": "Look:\nwhat?"})
    assert request.response == "A cat."


def test_tool_calls_and_tools() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
    request = request_from_payload({"messages": [USER], "tools": tools}, chat_completion(None, tool_calls=[call]))
    assert request is not None
    assert (request.response, request.tool_calls, request.tools) == ("", (call,), tuple(tools))


def test_recorded_logprobs_are_kept() -> None:
    outputs = chat_completion("Paris.")
    outputs["choices"][0]["logprobs"] = {
        "content": [
            {"token": "Paris", "logprob": -0.1, "top_logprobs": [{"token": "Lyon", "logprob": -3.0}]},
            {"token": ".", "logprob": -0.01},
        ]
    }
    request = request_from_payload({"messages": [USER]}, outputs)
    assert request is not None and request.response_logprobs is not None
    assert [(t.token, t.logprob, t.top_logprobs) for t in request.response_logprobs] == [
        ("Paris", -0.1, (("Lyon", -3.0),)),
        (".", -0.01, ()),
    ]


def test_completions_and_responses_api() -> None:
    completion = request_from_payload({"model": "m", "prompt": ["Say hi"]}, {"choices": [{"text": "hi"}]})
    assert completion == ScoreRequest(response="hi", prompt="Say hi", model="m")

    responses = request_from_payload(
        {"instructions": "Be terse.", "input": [{"role": "user", "content": [{"type": "input_text", "text": "2+2?"}]}]},
        {"output": [{"type": "message", "content": [{"type": "output_text", "text": "4"}]}]},
    )
    assert responses is not None
    assert responses.messages == ({"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"})
    assert responses.response == "4"
    short = request_from_payload({"instructions": "Be terse.", "input": "2+2?"}, {"output": [], "output_text": "4"})
    assert short is not None and short.messages == (
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "2+2?"},
    )


@pytest.mark.parametrize(
    ("inputs", "prompt"),
    [
        ("What is 2+2?", "What is 2+2?"),
        ({"question": "What is 2+2?"}, "What is 2+2?"),
        ({"q": "What is 2+2?"}, "What is 2+2?"),
        ({"input": "What is 2+2?"}, "What is 2+2?"),
        ({"question": "Which year?", "context": "Doc A"}, "question: Which year?\ncontext: Doc A"),  # all count
        ({"context": "Doc A", "n": 3, "unset": None}, "context: Doc A\nn: 3"),
        (["a", {"b": 1}], '["a", {"b": 1}]'),
    ],
)
def test_traced_function_arguments(inputs: Any, prompt: str) -> None:
    request = request_from_payload(inputs, {"answer": "4"})
    assert request == ScoreRequest(response="4", prompt=prompt)


@pytest.mark.parametrize(
    ("inputs", "outputs"),
    [
        ({"messages": [USER]}, None),
        ({"messages": [USER]}, ""),
        ({"messages": [USER]}, 42),
        ({"messages": [USER]}, {"status": "ok"}),
        ({"messages": [USER]}, ["a", "b"]),
        ({"messages": [USER]}, chat_completion(None)),
        (None, "Paris."),
        ({}, "Paris."),
    ],
)
def test_nothing_to_score(inputs: Any, outputs: Any) -> None:
    assert request_from_payload(inputs, outputs) is None


def test_openinference_flat_attributes() -> None:
    attributes = {
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": SYSTEM["content"],
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "Capital",
        "llm.input_messages.1.message.contents.1.message_content.text": "of France?",
        "llm.input_messages.2.message.role": "assistant",
        "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "lookup",
        "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": "{}",
        "llm.input_messages.3.message.role": "tool",
        "llm.input_messages.3.message.content": "Paris",
        "llm.input_messages.3.message.tool_call_id": "c1",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "Paris.",
        "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {"name": "lookup"}}),
        "llm.model_name": "gpt-x",
        "input.value": "ignored when messages are recorded",
    }
    request = request_from_attributes(attributes)
    assert request is not None
    assert request.messages == (
        SYSTEM,
        {"role": "user", "content": "Capital\nof France?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
        },
        {"role": "tool", "content": "Paris", "tool_call_id": "c1"},
    )
    assert (request.response, request.model) == ("Paris.", "gpt-x")
    assert request.tools == ({"type": "function", "function": {"name": "lookup"}},)


def test_openinference_dataframe_shape_is_flattened() -> None:
    nested = {
        "llm": {
            "input_messages": [
                {"message.role": "system", "message.content": "Sys."},
                {"message.role": "user", "message.content": "Hi"},
            ],
            "output_messages": [{"message.role": "assistant", "message.content": "Hello"}],
        }
    }
    assert flatten(nested)["llm.input_messages.1.message.content"] == "Hi"
    request = request_from_attributes(nested)
    assert request is not None
    assert request.messages == ({"role": "system", "content": "Sys."}, {"role": "user", "content": "Hi"})
    assert request.response == "Hello"


def test_openinference_fallbacks_to_input_and_output_values() -> None:
    from_json = request_from_attributes(
        {"input.value": json.dumps({"messages": [SYSTEM, USER]}), "output.value": json.dumps(chat_completion())}
    )
    assert from_json == ScoreRequest(response="Paris.", messages=(SYSTEM, USER))
    from_text = request_from_attributes({"input.value": "Say hi", "output.value": "hi"})
    assert from_text == ScoreRequest(response="hi", prompt="Say hi")
    prompts = request_from_attributes({"llm.prompts": ["Say hi"], "llm.choices.0.completion.text": "hi"})
    assert prompts == ScoreRequest(response="hi", prompt="Say hi")
    assert request_from_attributes({"input.value": "Say hi"}) is None  # no answer (e.g. a failed call)


def _span(name: str, span_type: str, inputs: Any, outputs: Any, *, parent: str | None, end: int) -> Any:
    return SimpleNamespace(
        name=name, span_id=name, span_type=span_type, inputs=inputs, outputs=outputs, parent_id=parent, end_time_ns=end
    )


def test_mlflow_trace_uses_the_last_llm_call_or_the_root() -> None:
    root = _span("agent", "AGENT", {"question": "Weather?"}, "Sunny.", parent=None, end=30)
    plan = _span(
        "plan", "CHAT_MODEL", {"messages": [SYSTEM, USER]}, chat_completion("Use a tool."), parent="agent", end=10
    )
    final = _span(
        "final",
        "CHAT_MODEL",
        {"messages": [SYSTEM, USER, {"role": "tool", "content": "sun"}]},
        chat_completion("Sunny."),
        parent="agent",
        end=20,
    )
    trace = SimpleNamespace(data=SimpleNamespace(spans=[root, plan, final]))
    auto = request_from_trace(trace)  # type: ignore[arg-type]
    assert auto is not None and auto.response == "Sunny." and len(auto.messages or ()) == 3
    assert request_from_trace(trace, span="root") == ScoreRequest(response="Sunny.", prompt="Weather?")  # type: ignore[arg-type]
    alone = SimpleNamespace(data=SimpleNamespace(spans=[root]))
    assert request_from_trace(alone) == ScoreRequest(response="Sunny.", prompt="Weather?")  # type: ignore[arg-type]


@pytest.mark.parametrize("blocked", [("mlflow",), ("phoenix", "phoenix.client")])
def test_missing_sdk_says_what_to_install(blocked: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    from tlm_hooks import MissingDependencyError
    from tlm_hooks.integrations.phoenix import score_phoenix_spans

    for name in blocked:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=rf"tlm-hooks\[{blocked[0]}\]"):
        if blocked[0] == "mlflow":
            score_mlflow_traces("1", scorer=lambda r: 1.0)
        else:
            score_phoenix_spans("p", scorer=lambda r: 1.0)
