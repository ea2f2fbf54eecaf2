"""Streams: chunks pass through unchanged and in order; scoring runs once, at the end or on
close; AppendWarning adds one chunk; the SDK's `chat.completions.stream()` helper still works."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from fake_openai import Reply
from hookutil import MESSAGES, CountingScorer, close, drain, prob, resolve, score_of, text_of_chunks
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel

import tlm_hooks
from tlm_hooks import fallbacks

TEXT = "It is four, as you know."


async def _stream(client: Any, **kwargs: Any) -> Any:
    return await resolve(client.chat.completions.create(model="m", messages=MESSAGES, stream=True, **kwargs))


async def test_chunks_pass_through_unchanged_and_in_order(fake: Any, make_client: Any, is_async: bool) -> None:
    plain, hooked = make_client(is_async), make_client(is_async)
    tlm_hooks.patch(hooked)
    fake.push(Reply(text=TEXT, logprob=-0.2), Reply(text=TEXT, logprob=-0.2))
    # the caller asks for logprobs itself, so both requests are identical
    expected = await drain(await _stream(plain, logprobs=True), is_async=is_async)
    stream = await _stream(hooked, logprobs=True)
    got = await drain(stream, is_async=is_async)
    assert fake.requests[0].body == fake.requests[1].body
    assert len(got) == len(expected) > 3
    assert all(type(c) is ChatCompletionChunk for c in got)
    assert [c.model_dump() for c in got] == [c.model_dump() for c in expected]
    assert score_of(stream) == pytest.approx(prob(-0.2))


async def test_stream_as_context_manager(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    counter = CountingScorer(0.66)
    tlm_hooks.patch(client, scorer=counter)
    fake.push(Reply(text=TEXT))
    stream = await _stream(client)
    if is_async:
        async with stream as s:
            assert s is stream
            chunks = [c async for c in s]
    else:
        with stream as s:
            assert s is stream
            chunks = list(s)
    assert text_of_chunks(chunks) == TEXT
    assert counter.calls == 1  # scored at the end, not again on exit
    assert counter.requests[0].response == TEXT
    assert score_of(stream) == 0.66


async def test_early_break_then_close_scores_once(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    counter = CountingScorer(0.5)
    tlm_hooks.patch(client, scorer=counter)
    fake.push(Reply(text=TEXT))
    stream = await _stream(client)
    received: list[Any] = []
    if is_async:
        async for chunk in stream:
            received.append(chunk)
            if len(received) == 3:
                break
    else:
        for chunk in stream:
            received.append(chunk)
            if len(received) == 3:
                break
    assert counter.calls == 0
    await close(stream)
    await close(stream)  # closing twice does not score twice
    assert counter.calls == 1
    assert counter.requests[0].response == text_of_chunks(received)  # the partial answer
    assert score_of(stream) == 0.5
    assert stream.tlm_metadata.get("fallbacks") is None


async def test_early_exit_from_context_manager_scores_once(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    counter = CountingScorer(0.5)
    tlm_hooks.patch(client, scorer=counter)
    fake.push(Reply(text=TEXT))
    stream = await _stream(client)
    if is_async:
        async with stream:
            await stream.__anext__()
            await stream.__anext__()
    else:
        with stream:
            next(stream)
            next(stream)
    await close(stream)
    assert counter.calls == 1
    assert score_of(stream) == 0.5


async def test_include_usage_final_chunk(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client)
    fake.push(Reply(text=TEXT, logprob=-0.3))
    stream = await _stream(client, stream_options={"include_usage": True})
    chunks = await drain(stream, is_async=is_async)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert text_of_chunks(chunks) == TEXT
    assert score_of(stream) == pytest.approx(prob(-0.3))
    assert stream.tlm_response.usage.total_tokens == chunks[-1].usage.total_tokens


@pytest.mark.parametrize("usage", [False, True], ids=["plain", "include_usage"])
async def test_append_warning_adds_one_chunk(fake: Any, make_client: Any, is_async: bool, usage: bool) -> None:
    plain, hooked = make_client(is_async), make_client(is_async)
    policy = tlm_hooks.TrustPolicy(
        threshold=0.9, on_low_trust=[fallbacks.AppendWarning("\n[low trust {score:.3f} < {threshold}]")]
    )
    tlm_hooks.patch(hooked, policy=policy)
    extra = {"stream_options": {"include_usage": True}} if usage else {}
    fake.push(Reply(text=TEXT, logprob=-0.5), Reply(text=TEXT, logprob=-0.5))
    baseline = await drain(await _stream(plain, logprobs=True, **extra), is_async=is_async)
    stream = await _stream(hooked, logprobs=True, **extra)
    got = await drain(stream, is_async=is_async)
    assert len(got) == len(baseline) + 1
    assert [c.model_dump() for c in got[:-1]] == [c.model_dump() for c in baseline]
    warning = f"\n[low trust {prob(-0.5):.3f} < 0.9]"
    assert type(got[-1]) is ChatCompletionChunk
    assert got[-1].choices[0].delta.content == warning
    assert text_of_chunks(got) == TEXT + warning
    assert stream.tlm_metadata["fallbacks"] == ["append_warning"]
    assert score_of(stream) == pytest.approx(prob(-0.5))
    # iterating a finished stream again yields nothing more
    assert await drain(stream, is_async=is_async) == []


async def test_stream_helper_on_patched_client(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    counter = CountingScorer(0.9)
    tlm_hooks.patch(client, scorer=counter)
    fake.push(Reply(text=TEXT))
    manager = client.chat.completions.stream(model="m", messages=MESSAGES)
    if is_async:
        async with manager as stream:
            events = [event async for event in stream]
            final = await stream.get_final_completion()
    else:
        with manager as stream:
            events = list(stream)
            final = stream.get_final_completion()
    deltas = "".join(e.delta for e in events if e.type == "content.delta")
    assert deltas == TEXT
    assert final.choices[0].message.content == TEXT
    assert counter.calls == 1
    assert counter.requests[0].response == TEXT
    assert len(fake.requests) == 1 and fake.requests[0].body["stream"] is True


class Answer(BaseModel):
    answer: int
    unit: str


async def test_parse_returns_parsed_completion_with_metadata(fake: Any, make_client: Any, is_async: bool) -> None:
    from openai.types.chat import ParsedChatCompletion

    client = make_client(is_async)
    tlm_hooks.patch(client)
    fake.push(Reply(text='{"answer": 4, "unit": "apples"}', logprob=-0.1))
    completion = await resolve(client.chat.completions.parse(model="m", messages=MESSAGES, response_format=Answer))
    assert isinstance(completion, ParsedChatCompletion)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Answer) and parsed == Answer(answer=4, unit="apples")
    assert score_of(completion) == pytest.approx(prob(-0.1))
    body = fake.requests[0].body
    assert body["logprobs"] is True
    assert body["response_format"]["type"] == "json_schema"
    assert len(fake.requests) == 1


async def test_async_stream_type_is_sdk_type(fake: Any, make_client: Any) -> None:
    client = make_client(True)
    tlm_hooks.patch(client)
    stream = await _stream(client)
    assert isinstance(stream, openai.AsyncStream)
    assert not isinstance(stream, openai.Stream)
    await drain(stream, is_async=True)
    assert stream.tlm_metadata["trustworthiness_score"] == pytest.approx(prob(Reply().logprob))


async def test_raw_parse_of_structured_output(fake: Any, make_client: Any, is_async: bool) -> None:
    from openai.types.chat import ParsedChatCompletion

    client = make_client(is_async)
    tlm_hooks.patch(client)
    fake.push(Reply(text='{"answer": 4, "unit": "pears"}', logprob=-0.2))
    raw = await resolve(
        client.chat.completions.with_raw_response.parse(model="m", messages=MESSAGES, response_format=Answer)
    )
    assert raw.headers["content-type"].startswith("application/json")
    completion = raw.parse()
    assert isinstance(completion, ParsedChatCompletion)
    assert completion.choices[0].message.parsed == Answer(answer=4, unit="pears")
    assert score_of(completion) == pytest.approx(prob(-0.2))
    assert raw.parse() is completion
