"""One call through every combination: {sync, async} x {plain, stream, raw} x {ok, API error}
x {score, route}. The return type is exactly the SDK's, the score is what the fake server's
answer implies, and API errors are the SDK's own, raised after exactly one request."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from fake_openai import Reply
from hookutil import MESSAGES, drain, prob, resolve, score_of, text_of_chunks
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import tlm_hooks

LOGPROB = -0.4  # per token, in score mode
ROUTE_SCORE = 0.37  # what the fake "TLM backend" reports, in route mode
TEXT = "Two plus two is 4."


@pytest.mark.parametrize("mode", ["score", "route"])
@pytest.mark.parametrize("outcome", ["ok", "api_error"])
@pytest.mark.parametrize("shape", ["plain", "stream", "raw"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_call_matrix(fake: Any, make_client: Any, is_async: bool, shape: str, outcome: str, mode: str) -> None:
    client = make_client(is_async)
    if mode == "score":
        tlm_hooks.patch(client)
        expected = prob(LOGPROB)
    else:
        tlm_hooks.route(client, quality_preset="low")
        expected = ROUTE_SCORE
    if outcome == "api_error":
        fake.push(Reply(status=400, error_param="messages"))
    else:
        fake.push(Reply(text=TEXT, logprob=LOGPROB, tlm_score=ROUTE_SCORE if mode == "route" else None))

    completions = client.chat.completions
    create = completions.with_raw_response.create if shape == "raw" else completions.create
    kwargs: dict[str, Any] = {"model": "m", "messages": MESSAGES}
    if shape == "stream":
        kwargs["stream"] = True

    if outcome == "api_error":
        with pytest.raises(openai.BadRequestError) as info:
            result = await resolve(create(**kwargs))
            if shape == "stream":  # (an error is raised before any chunk; drain just in case)
                await drain(result, is_async=is_async)
        err = info.value
        assert type(err) is openai.BadRequestError
        assert err.status_code == 400
        assert isinstance(err.body, dict) and err.body["param"] == "messages"
        assert err.__cause__ is None
        assert len(fake.requests) == 1  # the original was called exactly once, never retried
        return

    result = await resolve(create(**kwargs))
    assert len(fake.requests) == 1
    sent = fake.requests[0].body
    if mode == "score":
        assert sent["logprobs"] is True
        assert "quality_preset" not in sent
    else:
        assert sent["quality_preset"] == "low"
        assert "logprobs" not in sent

    if shape == "plain":
        assert type(result) is ChatCompletion
        assert result.choices[0].message.content == TEXT
        assert score_of(result) == pytest.approx(expected)
    elif shape == "stream":
        assert isinstance(result, openai.AsyncStream if is_async else openai.Stream)
        assert result.tlm_metadata is None  # nothing is scored before the end
        chunks = await drain(result, is_async=is_async)
        assert all(type(c) is ChatCompletionChunk for c in chunks)
        assert text_of_chunks(chunks) == TEXT
        assert score_of(result) == pytest.approx(expected)
        assert type(result.tlm_response) is ChatCompletion
        assert result.tlm_response.choices[0].message.content == TEXT
    else:
        assert result.headers.get("content-type", "").startswith("application/json")
        assert result.status_code == 200
        parsed = result.parse()
        assert type(parsed) is ChatCompletion
        assert parsed.choices[0].message.content == TEXT
        assert score_of(parsed) == pytest.approx(expected)
        assert result.parse() is parsed
        assert len(fake.requests) == 1


@pytest.mark.parametrize("mode", ["score", "route"])
async def test_raw_stream_is_scored(fake: Any, make_client: Any, is_async: bool, mode: str) -> None:
    """``with_raw_response.create(stream=True)``: headers of the event stream, and ``parse()``
    gives the proxied stream (the same object each time), scored at its end."""
    client = make_client(is_async)
    if mode == "score":
        tlm_hooks.patch(client)
        expected = prob(LOGPROB)
    else:
        tlm_hooks.route(client)
        expected = ROUTE_SCORE
    fake.push(Reply(text=TEXT, logprob=LOGPROB, tlm_score=ROUTE_SCORE if mode == "route" else None))
    raw = await resolve(client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, stream=True))
    assert raw.headers["content-type"].startswith("text/event-stream")
    stream = raw.parse()
    assert raw.parse() is stream
    assert isinstance(stream, openai.AsyncStream if is_async else openai.Stream)
    chunks = await drain(stream, is_async=is_async)
    assert text_of_chunks(chunks) == TEXT
    assert score_of(stream) == pytest.approx(expected)
