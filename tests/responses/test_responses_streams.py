"""Streamed Responses calls: every event passes through as it arrives; the score is computed when
``response.completed`` arrives (so it is there on that event) or when the stream is closed early;
``AppendWarning`` sends one ``response.output_text.delta`` before ``response.completed``; the
SDK's ``responses.stream(...)`` helper keeps the score on ``get_final_response()``."""

from __future__ import annotations

import inspect
import math
from typing import Any

import pytest
from fake_responses import Answer, stream_events, tokens

import tlm_hooks
from tlm_hooks import TrustPolicy, UntrustworthyResponseError, fallbacks

LOW, HIGH = -3.0, -0.01
TEXT = "Maybe it is 5."


async def resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def events_of(stream: Any, is_async: bool) -> list[Any]:
    if is_async:
        return [e async for e in stream]
    return list(stream)


async def next_event(stream: Any, is_async: bool) -> Any:
    return await stream.__anext__() if is_async else next(stream)


async def test_events_pass_through_and_score_rides_on_completed(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client)
    rfake.push(Answer(text=TEXT, logprob=HIGH))
    stream = await resolve(client.responses.create(model="m", input="q", stream=True))
    seen: list[Any] = []
    while True:
        event = await next_event(stream, is_async)
        seen.append(event)
        if event.type == "response.completed":
            break
        assert stream.tlm_metadata is None  # scored only once the answer is complete
    # scored by the time the completed event arrives, before the stream itself ended
    assert stream.tlm_metadata["trustworthiness_score"] == pytest.approx(math.exp(HIGH))
    assert seen[-1].response.tlm_metadata == stream.tlm_metadata
    expected = [e["type"] for e in stream_events({"stream": True}, Answer(text=TEXT))]
    assert [e.type for e in seen] == expected
    assert [e.sequence_number for e in seen] == list(range(len(expected)))
    assert [e.delta for e in seen if e.type == "response.output_text.delta"] == tokens(TEXT)
    assert await events_of(stream, is_async) == []  # nothing after the end


async def test_close_early_scores_what_arrived_as_partial(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    recorded: list[str] = []
    tlm_hooks.patch(client, scorer=lambda request: recorded.append(request.response) or 0.9)
    rfake.push(Answer(text=TEXT))
    stream = await resolve(client.responses.create(model="m", input="q", stream=True))
    got = []
    while len(got) < 2:
        event = await next_event(stream, is_async)
        if event.type == "response.output_text.delta":
            got.append(event.delta)
    await resolve(stream.close())
    assert recorded == ["".join(got)]
    assert stream.tlm_metadata["trustworthiness_score"] == 0.9
    assert stream.tlm_response.output_text == "".join(got)
    assert stream.tlm_response.status == "in_progress"


async def test_append_warning_is_one_delta_before_completed(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client, policy=TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.AppendWarning()]))
    rfake.push(Answer(text=TEXT, logprob=LOW))
    stream = await resolve(client.responses.create(model="m", input="q", stream=True))
    events = await events_of(stream, is_async)
    warning = fallbacks.DEFAULT_WARNING.format(score=math.exp(LOW))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert "".join(d.delta for d in deltas) == TEXT + warning
    assert deltas[-1].delta == warning and deltas[-1].item_id == deltas[0].item_id
    assert events[-2] is deltas[-1] and events[-1].type == "response.completed"
    assert events[-1].sequence_number == deltas[-1].sequence_number + 1
    completed = events[-1].response
    assert completed.output_text == TEXT + warning
    assert completed.tlm_metadata["fallbacks"] == ["append_warning"]
    assert stream.tlm_metadata["fallbacks"] == ["append_warning"]


async def test_raise_at_completed_releases_the_stream(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client, policy=TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.Raise()]))
    rfake.push(Answer(text=TEXT, logprob=LOW))
    stream = await resolve(client.responses.create(model="m", input="q", stream=True))
    got: list[str] = []
    with pytest.raises(UntrustworthyResponseError) as info:
        async for event in _aiter(stream, is_async):
            got.append(event.type)
    assert "response.completed" not in got and "response.output_text.done" in got
    assert info.value.result.trustworthiness_score == pytest.approx(math.exp(LOW))
    assert stream.response.is_closed


async def _aiter(stream: Any, is_async: bool) -> Any:
    if is_async:
        async for event in stream:
            yield event
    else:
        for event in stream:
            yield event


async def test_stream_helper_sync(rfake: Any, make_client: Any) -> None:
    client = make_client()
    tlm_hooks.patch(client, policy=TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.AppendWarning()]))
    rfake.push(Answer(text=TEXT, logprob=LOW))
    with client.responses.stream(model="m", input="q") as stream:
        events = list(stream)
        final = stream.get_final_response()
    warning = fallbacks.DEFAULT_WARNING.format(score=math.exp(LOW))
    assert events[-1].type == "response.completed"
    text_events = [e for e in events if e.type == "response.output_text.delta"]
    assert text_events[-1].snapshot == TEXT + warning  # the helper's own accumulation
    assert final.output_text == TEXT + warning
    assert final.tlm_metadata["trustworthiness_score"] == pytest.approx(math.exp(LOW))
    assert final.tlm_metadata["fallbacks"] == ["append_warning"]


async def test_stream_helper_async(rfake: Any, make_client: Any) -> None:
    client = make_client(True)
    tlm_hooks.patch(client)
    rfake.push(Answer(text=TEXT, logprob=HIGH))
    async with client.responses.stream(model="m", input="q") as stream:
        types = [e.type async for e in stream]
        final = await stream.get_final_response()
    assert types[-1] == "response.completed"
    assert final.output_text == TEXT
    assert final.tlm_metadata["trustworthiness_score"] == pytest.approx(math.exp(HIGH))
    assert rfake.requests[0].body["stream"] is True


async def test_route_mode_stream_reads_the_backends_metadata(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async, azure=True)
    tlm_hooks.route(client, options={"log": ["explanation"]})
    rfake.push(Answer(text=TEXT, tlm_score=0.42))
    stream = await resolve(client.responses.create(model="m", input="q", stream=True))
    events = await events_of(stream, is_async)
    assert rfake.requests[0].body["options"] == {"log": ["explanation"]}
    assert stream.tlm_metadata["trustworthiness_score"] == 0.42
    assert events[-1].response.tlm_metadata["trustworthiness_score"] == 0.42
