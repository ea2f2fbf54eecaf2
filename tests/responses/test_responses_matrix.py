"""Responses API calls through every combination: {OpenAI, Azure} x {sync, async} x {plain,
stream, raw} x {ok, API error} x {score, route}. The return type is exactly the SDK's, the score
is what the fake server's answer implies, and API errors are the SDK's own, raised after one request."""

from __future__ import annotations

import inspect
import math
from typing import Any

import openai
import pytest
from fake_responses import LOGPROBS_INCLUDE, Answer
from openai.types.responses import Response

import tlm_hooks

LOGPROB = -0.4  # per token, in score mode
ROUTE_SCORE = 0.37  # what the fake "TLM backend" reports, in route mode
TEXT = "Two plus two is 4."


async def resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def drain(stream: Any, *, is_async: bool) -> list[Any]:
    if is_async:
        return [event async for event in stream]
    return list(stream)


def delta_text(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


@pytest.mark.parametrize("mode", ["score", "route"])
@pytest.mark.parametrize("outcome", ["ok", "api_error"])
@pytest.mark.parametrize("shape", ["plain", "stream", "raw"])
@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure"])
async def test_call_matrix(
    rfake: Any, make_client: Any, is_async: bool, azure: bool, shape: str, outcome: str, mode: str
) -> None:
    client = make_client(is_async, azure=azure)
    if mode == "score":
        tlm_hooks.patch(client)
        expected = math.exp(LOGPROB)
    else:
        tlm_hooks.route(client, quality_preset="low")
        expected = ROUTE_SCORE
    if outcome == "api_error":
        rfake.push(Answer(status=400, error_param="input"))
    else:
        rfake.push(Answer(text=TEXT, logprob=LOGPROB, tlm_score=ROUTE_SCORE if mode == "route" else None))

    responses = client.responses
    create = responses.with_raw_response.create if shape == "raw" else responses.create
    kwargs: dict[str, Any] = {"model": "m", "input": "What is 2+2?"}
    if shape == "stream":
        kwargs["stream"] = True

    if outcome == "api_error":
        with pytest.raises(openai.BadRequestError) as info:
            await resolve(create(**kwargs))
        err = info.value
        assert type(err) is openai.BadRequestError
        assert isinstance(err.body, dict) and err.body["param"] == "input"
        assert err.__cause__ is None
        assert len(rfake.requests) == 1
        return

    result = await resolve(create(**kwargs))
    assert len(rfake.requests) == 1
    seen = rfake.requests[0]
    assert seen.path.split("?")[0].endswith("/responses")
    if mode == "score":
        assert seen.body["include"] == [LOGPROBS_INCLUDE]
        assert "quality_preset" not in seen.body
    else:
        assert seen.body["quality_preset"] == "low"
        assert "include" not in seen.body

    if shape == "plain":
        assert type(result) is Response
        assert result.output_text == TEXT
        assert result.tlm_metadata["trustworthiness_score"] == pytest.approx(expected)
    elif shape == "stream":
        assert isinstance(result, openai.AsyncStream if is_async else openai.Stream)
        assert result.tlm_metadata is None  # nothing is scored before the end
        events = await drain(result, is_async=is_async)
        assert [e.type for e in events][-1] == "response.completed"
        assert delta_text(events) == TEXT
        assert result.tlm_metadata["trustworthiness_score"] == pytest.approx(expected)
        # the completed event carries the scored response, as a TLM backend sends it
        assert events[-1].response.tlm_metadata["trustworthiness_score"] == pytest.approx(expected)
        assert type(result.tlm_response) is Response
        assert result.tlm_response.output_text == TEXT
    else:
        assert result.status_code == 200
        parsed = result.parse()
        assert type(parsed) is Response
        assert parsed.output_text == TEXT
        assert parsed.tlm_metadata["trustworthiness_score"] == pytest.approx(expected)
        assert result.parse() is parsed


@pytest.mark.parametrize("mode", ["score", "route"])
async def test_raw_stream_is_scored(rfake: Any, make_client: Any, is_async: bool, mode: str) -> None:
    client = make_client(is_async)
    if mode == "score":
        tlm_hooks.patch(client)
        expected = math.exp(LOGPROB)
    else:
        tlm_hooks.route(client)
        expected = ROUTE_SCORE
    rfake.push(Answer(text=TEXT, logprob=LOGPROB, tlm_score=ROUTE_SCORE if mode == "route" else None))
    raw = await resolve(client.responses.with_raw_response.create(model="m", input="q", stream=True))
    assert raw.headers["content-type"].startswith("text/event-stream")
    stream = raw.parse()
    assert raw.parse() is stream
    events = await drain(stream, is_async=is_async)
    assert delta_text(events) == TEXT
    assert stream.tlm_metadata["trustworthiness_score"] == pytest.approx(expected)
