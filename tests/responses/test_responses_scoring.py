"""What a hooked Responses call scores and how the score is carried: the prompt built from
``instructions`` + ``input``, earlier turns the request cannot show, function calls in the chat
shape, logprobs asked for with ``include`` (once; a refusal remembered), ``parse()``, copies."""

from __future__ import annotations

import copy
import json
import math
import pickle
from typing import Any

import openai
import pytest
from fake_responses import LOGPROBS_INCLUDE, Answer
from openai.types.responses import ParsedResponse, Response
from pydantic import BaseModel

import tlm_hooks
from tlm_hooks.adapters.openai_responses import EARLIER_TURNS_UNSEEN
from tlm_hooks.adapters.openai_responses import TARGETS as ADAPTER_TARGETS
from tlm_hooks.hooks.families import family_named


class Recorder:
    """A scoring function that keeps every ScoreRequest and scores 0.8."""

    def __init__(self) -> None:
        self.requests: list[tlm_hooks.ScoreRequest] = []

    def __call__(self, request: tlm_hooks.ScoreRequest) -> float:
        self.requests.append(request)
        return 0.8


async def call(client: Any, method: str = "create", **kwargs: Any) -> Any:
    result = getattr(client.responses, method)(**kwargs)
    return await result if hasattr(result, "__await__") else result


async def test_prompt_from_instructions_and_input_items(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    recorder = Recorder()
    tlm_hooks.patch(client, scorer=recorder)
    items = [
        {"role": "developer", "content": "Answer briefly."},
        {"role": "user", "content": [
            {"type": "input_text", "text": "What is in this picture and file?"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
            {"type": "input_file", "filename": "report.pdf", "file_data": "data:application/pdf;base64,AAAA"},
        ]},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": '{"q": "x"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "found x"},
    ]  # fmt: skip
    before = copy.deepcopy(items)
    result = await call(client, model="m", instructions="You are terse.", input=items)
    assert items == before  # nothing the caller passed is changed
    assert result.tlm_metadata["trustworthiness_score"] == 0.8
    (request,) = recorder.requests
    assert request.response == result.output_text
    assert request.prompt_lines() == [
        "system: You are terse.",
        "system: Answer briefly.",
        "user: What is in this picture and file?\n[image]\n[file: report.pdf]",
        'assistant: [tool calls: lookup({"q": "x"})]',  # an earlier call is shown to the scorer
        "tool: found x",
    ]
    assert request.messages[3]["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    ]
    assert request.messages[4]["tool_call_id"] == "c1"
    assert request.warnings == ()
    assert "log" not in result.tlm_metadata or "warnings" not in result.tlm_metadata["log"]


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("previous_response_id", "resp_123", "previous_response_id 'resp_123'"),
        ("conversation", "conv_9", "conversation 'conv_9'"),
        ("conversation", {"id": "conv_9"}, "conversation 'conv_9'"),
    ],
)
async def test_earlier_turns_are_reported(rfake: Any, make_client: Any, key: str, value: Any, shown: str) -> None:
    client = make_client()
    recorder = Recorder()
    tlm_hooks.patch(client, scorer=recorder)
    result = await call(client, model="m", input="And then?", **{key: value})
    assert result.tlm_metadata["trustworthiness_score"] == 0.8  # scored with what the request holds
    assert recorder.requests[0].prompt_lines() == ["user: And then?"]
    assert result.tlm_metadata["log"]["warnings"] == [EARLIER_TURNS_UNSEEN.format(what=shown)]


async def test_item_reference_is_reported(rfake: Any, make_client: Any) -> None:
    client = make_client()
    tlm_hooks.patch(client, scorer=Recorder())
    result = await call(
        client, model="m", input=[{"type": "item_reference", "id": "msg_7"}, {"role": "user", "content": "ok?"}]
    )
    assert "item_reference 'msg_7'" in result.tlm_metadata["log"]["warnings"][0]


async def test_function_call_answer_and_tools_in_chat_shape(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    recorder = Recorder()
    tlm_hooks.patch(client, scorer=recorder)
    rfake.push(Answer(function_call={"name": "get_weather", "arguments": '{"city": "Paris"}'}))
    tools = [
        {"type": "function", "name": "get_weather", "description": "Weather of a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": True},
        {"type": "web_search"},
    ]  # fmt: skip
    result = await call(client, model="m", input="Weather in Paris?", tools=tools)
    assert result.output[0].type == "function_call"
    (request,) = recorder.requests
    assert request.tool_calls == (
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
    )
    assert request.tools == (
        {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                          "parameters": tools[0]["parameters"], "strict": True}},
        {"type": "web_search"},
    )  # fmt: skip
    assert json.loads(request.response) == [dict(request.tool_calls[0])]
    assert result.tlm_metadata["trustworthiness_score"] == 0.8


async def test_logprobs_asked_once_and_refusal_remembered(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client)  # LogprobScorer: asks for logprobs
    rfake.default = Answer(refuse_include=True)
    first = await call(client, model="no-logprobs", input="q", include=["reasoning.encrypted_content"])
    assert [r.body.get("include") for r in rfake.requests] == [
        ["reasoning.encrypted_content", LOGPROBS_INCLUDE],
        ["reasoning.encrypted_content"],  # called again with the caller's own include only
    ]
    assert first.tlm_metadata["trustworthiness_score"] is None
    assert first.tlm_metadata["error"]["type"] == "MissingLogprobs"
    rfake.requests.clear()
    await call(client, model="no-logprobs", input="q")
    assert len(rfake.requests) == 1 and "include" not in rfake.requests[0].body  # not asked again


async def test_callers_own_logprob_include_is_not_doubled(rfake: Any, make_client: Any) -> None:
    client = make_client()
    tlm_hooks.patch(client)
    result = await call(client, model="m", input="q", include=[LOGPROBS_INCLUDE])
    assert rfake.requests[0].body["include"] == [LOGPROBS_INCLUDE]
    assert result.tlm_metadata["trustworthiness_score"] == pytest.approx(math.exp(Answer().logprob))


async def test_metadata_survives_copies_and_stays_out_of_the_model(rfake: Any, make_client: Any) -> None:
    client = make_client()
    tlm_hooks.patch(client)
    result = await call(client, model="m", input="q")
    data = result.tlm_metadata
    assert data["trustworthiness_score"] == pytest.approx(math.exp(Answer().logprob))
    assert "tlm_metadata" not in result.model_dump()
    assert "tlm_metadata" not in result.to_json()
    for copied in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result), result.model_copy()):
        assert copied.tlm_metadata == data
        assert copied == result
    other = result.model_copy(deep=True)
    del other.tlm_metadata
    assert other == result  # equality is the SDK's own: the score takes no part in it


class Answer4(BaseModel):
    value: int


async def test_parse_gives_parsed_response_with_metadata(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    recorder = Recorder()
    tlm_hooks.patch(client, scorer=recorder)
    rfake.push(Answer(text='{"value": 4}'))
    result = await call(client, "parse", model="m", input="2+2?", text_format=Answer4)
    assert isinstance(result, ParsedResponse)
    assert result.output_parsed == Answer4(value=4)
    assert result.tlm_metadata["trustworthiness_score"] == 0.8
    assert recorder.requests[0].response == '{"value": 4}'
    assert rfake.requests[0].body["text"]["format"]["type"] == "json_schema"


async def test_patch_all_hooks_responses_of_every_client(rfake: Any, make_client: Any) -> None:
    existing = make_client()
    cached = existing.responses.with_raw_response  # built before the patch: must not bypass it
    tlm_hooks.patch_all(scorer=Recorder())
    later = make_client(azure=True)
    for client in (existing, later, existing.with_options(timeout=5)):
        result = await call(client, model="m", input="q")
        assert result.tlm_metadata["trustworthiness_score"] == 0.8
    raw = existing.responses.with_raw_response.create(model="m", input="q")
    assert raw.parse().tlm_metadata["trustworthiness_score"] == 0.8
    assert cached is not existing.responses.with_raw_response


async def test_unpatch_puts_the_sdk_methods_back(rfake: Any, make_client: Any) -> None:
    from openai.resources.responses.responses import AsyncResponses, Responses

    before = {(cls, name): vars(cls)[name] for cls in (Responses, AsyncResponses) for name in ("create", "parse")}
    client = make_client()
    tlm_hooks.patch(client)
    assert all(vars(cls)[name] is not original for (cls, name), original in before.items())
    tlm_hooks.unpatch(client)
    assert all(vars(cls)[name] is original for (cls, name), original in before.items())
    result = await call(client, model="m", input="q")
    with pytest.raises(AttributeError):
        result.tlm_metadata  # noqa: B018


def test_responses_targets_are_in_the_openai_family() -> None:
    family = family_named("openai")
    assert family is not None
    assert set(ADAPTER_TARGETS) <= set(family.targets())  # type: ignore[attr-defined]


def test_unhooked_clients_are_untouched(rfake: Any, make_client: Any) -> None:
    hooked, plain = make_client(), make_client()
    tlm_hooks.patch(hooked)
    result = plain.responses.create(model="m", input="q")
    assert "include" not in rfake.requests[0].body
    assert not hasattr(result, "tlm_metadata") or result.__dict__.get("tlm_metadata") is None
    assert isinstance(result, Response) and type(plain) is openai.OpenAI
