"""``POST /v1/responses`` on the server, driven by the real openai clients: plain and streamed
replies the SDK parses into its own types, ``tlm_metadata`` on them, TLM options in
``extra_body``, ``tlm_hooks.route`` on such a client, and the errors and warnings of bad bodies."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.responses import Response
from starlette.testclient import TestClient

import tlm_hooks
from tlm_hooks.server import ServerThread, create_app
from tlm_hooks.server.responses import RESPONSES_PATHS

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))
from server_fakes import FakeModel, RecordingScorer  # noqa: E402

TLM = {"quality_preset": "base", "options": {"log": ["explanation"]}}
ANSWER = "The answer is 4."


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ServerThread, FakeModel, RecordingScorer]]:
    model, scorer = FakeModel(), RecordingScorer()
    with ServerThread(create_app(model, scorer=lambda options: scorer)) as running:
        yield running, model, scorer


@pytest.fixture
def server(served: Any) -> tuple[ServerThread, FakeModel, RecordingScorer]:
    running, model, scorer = served
    model.calls.clear()
    scorer.requests.clear()
    return running, model, scorer


def test_plain_reply_is_an_sdk_response_with_metadata(server: Any) -> None:
    running, model, scorer = server
    client = openai.OpenAI(base_url=f"{running.base_url}/v1", api_key="k", max_retries=0)
    reply = client.responses.create(
        model="m", instructions="Be brief.", input=[{"role": "user", "content": [{"type": "input_text", "text": "2+2?"}]}],
        max_output_tokens=20, temperature=0.0, extra_body=TLM,
    )  # fmt: skip
    assert type(reply) is Response
    assert reply.output_text == ANSWER and reply.status == "completed"
    assert reply.output[0].content[0].logprobs == []  # not asked for
    metadata = reply.tlm_metadata
    assert 0.0 <= metadata["trustworthiness_score"] <= 1.0
    assert "explanation" in metadata["log"]  # options.log reached the scorer
    (call,) = model.calls
    assert call["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "2+2?"}]},
    ]
    assert call["max_tokens"] == 20 and call["temperature"] == 0.0
    assert scorer.requests[0].options.quality_preset == "base"
    assert reply.usage.output_tokens == len(FakeModel().words)


async def test_stream_events_parse_and_carry_metadata_on_completed(server: Any) -> None:
    running, _, _ = server
    client = openai.AsyncOpenAI(base_url=f"{running.base_url}/api", api_key="k", max_retries=0)
    stream = await client.responses.create(
        model="m", input="2+2?", stream=True, include=["message.output_text.logprobs"]
    )
    events = [event async for event in stream]
    await client.close()
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert "".join(d.delta for d in deltas) == ANSWER
    assert all(len(d.logprobs) == 1 for d in deltas)  # asked for with include
    completed = events[-1].response
    assert completed.output_text == ANSWER
    assert 0.0 <= completed.tlm_metadata["trustworthiness_score"] <= 1.0


def test_stream_helper_and_route_mode_on_the_server(server: Any) -> None:
    running, _, _ = server
    client = tlm_hooks.route(
        openai.OpenAI(base_url=f"{running.base_url}/v1", api_key="k", max_retries=0), quality_preset="base"
    )
    plain = client.responses.create(model="m", input="2+2?")
    score = plain.tlm_metadata["trustworthiness_score"]
    with client.responses.stream(model="m", input="2+2?") as stream:
        list(stream)
        final = stream.get_final_response()
    assert final.output_text == ANSWER
    assert final.tlm_metadata["trustworthiness_score"] == pytest.approx(score)


def test_earlier_turns_and_ignored_parameters_are_reported(server: Any) -> None:
    running, model, _ = server
    client = openai.OpenAI(base_url=f"{running.base_url}/v1", api_key="k", max_retries=0)
    reply = client.responses.create(
        model="m",
        input="and then?",
        previous_response_id="resp_1",
        tools=[{"type": "web_search"}],
        extra_body={"colour": 1},
    )
    warnings = reply.tlm_metadata["log"]["warnings"]
    assert any("previous_response_id resp_1" in w and "earlier turns were not seen" in w for w in warnings)
    assert "parameter 'tools' is not supported by this server and was ignored" in warnings
    assert "ignored unknown parameter 'colour'" in warnings
    assert model.calls[0]["messages"] == [{"role": "user", "content": "and then?"}]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "input"),
        ({"input": []}, "input"),
        ({"input": [1]}, "input"),
        ({"input": "q", "instructions": 3}, "instructions"),
        ({"input": "q", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "q", "include": "message.output_text.logprobs"}, "include"),
        ({"input": "q", "log": ["explanation"]}, "log"),  # a TLM option outside `options`
        ({"input": "q", "quality_preset": "best-ever"}, "quality_preset"),
        ({"input": [{"role": "assistant", "content": "hi"}]}, "input"),
    ],
)
def test_bad_bodies_are_refused_before_the_model_runs(server: Any, body: dict[str, Any], param: str) -> None:
    running, model, _ = server
    client = openai.OpenAI(base_url=f"{running.base_url}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.post("/responses", body=body, cast_to=Response)
    assert info.value.body["param"] == param
    assert model.calls == []


@pytest.mark.parametrize("path", RESPONSES_PATHS)
def test_every_path_answers(path: str) -> None:
    with TestClient(create_app(FakeModel())) as client:
        reply = client.post(path, json={"input": "q"})
    assert reply.status_code == 200
    assert reply.json()["object"] == "response"
    assert "tlm_metadata" not in reply.json()  # a server without a scorer does not score


def test_azure_openai_client(server: Any) -> None:
    running, _, _ = server
    client = openai.AzureOpenAI(
        azure_endpoint=running.base_url, api_key="k", api_version="2025-04-01-preview", max_retries=0
    )
    reply = client.responses.create(model="gpt-4o-mini", input="2+2?")
    assert reply.output_text == ANSWER
    assert 0.0 <= reply.tlm_metadata["trustworthiness_score"] <= 1.0


def test_mid_stream_failure_is_an_error_event(server: Any) -> None:
    running, model, _ = server
    model.fail_mid_stream = True
    try:
        client = openai.OpenAI(base_url=f"{running.base_url}/v1", api_key="k", max_retries=0)
        events = list(client.responses.create(model="m", input="q", stream=True))
    finally:
        model.fail_mid_stream = False
    assert events[-1].type == "error"
    assert events[-1].message
    assert "response.completed" not in [e.type for e in events]
