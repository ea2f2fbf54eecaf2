"""Every way a hooked stream can end finalises it exactly once: exhausted, closed, its ``with``
block left, an SDK exception mid-stream (what came is scored and marked partial, the SDK's
exception is raised unchanged), or dropped without closing (no score, no warning, no leak).

The SDK error comes from the real `openai` client reading an SSE ``error`` event that an
in-process transport sends after two chunks."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import weakref
from typing import Any

import openai
import pytest
from hookutil import MESSAGES, CountingScorer, resolve

import tlm_hooks

try:  # openai 3.x uses httpx2, 2.x httpx
    import httpx2 as http
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx as http  # type: ignore[no-redef]

WORDS = ["It ", "is ", "four."]


def _sse(events: list[Any]) -> bytes:
    return b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events)


def _chunk(text: str) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }


def _client(is_async: bool, *, fail_after: int | None) -> Any:
    """A real OpenAI/AsyncOpenAI client whose transport streams ``WORDS`` (or the first
    ``fail_after`` of them, then an SSE error event)."""
    if fail_after is None:
        body = _sse([_chunk(w) for w in WORDS] + [b"[DONE]"])
    else:
        body = _sse(
            [_chunk(w) for w in WORDS[:fail_after]]
            + [{"error": {"message": "upstream overloaded", "type": "server_error"}}]
        )

    def answer(request: Any) -> Any:
        return http.Response(200, content=body, headers={"content-type": "text/event-stream"})

    transport = http.MockTransport(answer)
    if is_async:
        return openai.AsyncOpenAI(
            base_url="http://stream.invalid/v1",
            api_key="k",
            max_retries=0,
            http_client=http.AsyncClient(transport=transport),
        )
    return openai.OpenAI(
        base_url="http://stream.invalid/v1", api_key="k", max_retries=0, http_client=http.Client(transport=transport)
    )


async def _open(client: Any) -> Any:
    return await resolve(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))


async def _next(stream: Any, is_async: bool) -> Any:
    return await stream.__anext__() if is_async else next(stream)


async def _read_all(stream: Any, is_async: bool) -> list[Any]:
    if is_async:
        return [c async for c in stream]
    return list(stream)


def _partial_notes(stream: Any) -> list[str]:
    return [w for w in stream.tlm_metadata.get("log", {}).get("warnings", []) if w.startswith("partial:")]


@pytest.mark.parametrize("ending", ["exhausted", "closed", "context_exit"])
async def test_each_ending_scores_once(ending: str, is_async: bool) -> None:
    client = _client(is_async, fail_after=None)
    scorer = CountingScorer(0.7)
    tlm_hooks.patch(client, scorer=scorer)
    stream = await _open(client)
    if ending == "exhausted":
        assert len(await _read_all(stream, is_async)) == 3
    elif ending == "closed":
        await _next(stream, is_async)
        await resolve(stream.close())
    elif is_async:
        async with stream:
            await stream.__anext__()
    else:
        with stream:
            next(stream)
    await resolve(stream.close())  # closing again (or after the end) does not score again
    assert scorer.calls == 1
    assert stream.tlm_metadata["trustworthiness_score"] == 0.7
    if ending == "exhausted":
        assert scorer.requests[0].response == "It is four." and _partial_notes(stream) == []
    else:
        assert scorer.requests[0].response == "It "
        assert _partial_notes(stream) == [
            "partial: the stream was closed after 1 chunk(s); only the answer received so far was scored"
        ]


async def _sdk_error(
    is_async: bool, *, patched: bool, fail_after: int
) -> tuple[BaseException, list[Any], Any, CountingScorer]:
    client = _client(is_async, fail_after=fail_after)
    scorer = CountingScorer(0.6)
    if patched:
        tlm_hooks.patch(client, scorer=scorer)
    stream = await _open(client)
    received: list[Any] = []
    with pytest.raises(openai.APIError) as caught:
        while True:
            received.append(await _next(stream, is_async))
    return caught.value, received, stream, scorer


async def test_an_sdk_error_mid_stream_scores_what_came_and_raises_the_sdks_exception(is_async: bool) -> None:
    plain_error, plain_received, _, _ = await _sdk_error(is_async, patched=False, fail_after=2)
    error, received, stream, scorer = await _sdk_error(is_async, patched=True, fail_after=2)
    # the app sees exactly what it would see unhooked: the same chunks, then the same exception
    assert [c.model_dump() for c in received] == [c.model_dump() for c in plain_received]
    assert type(error) is type(plain_error) and str(error) == str(plain_error) == "upstream overloaded"
    assert error.body == plain_error.body == {"message": "upstream overloaded", "type": "server_error"}
    assert error.__cause__ is None and error.__context__ is None
    # what came was scored once, and the score says it is partial and why
    assert scorer.calls == 1 and scorer.requests[0].response == "It is "
    assert stream.tlm_metadata["trustworthiness_score"] == 0.6
    assert _partial_notes(stream) == [
        "partial: the stream failed (APIError: upstream overloaded) after 2 chunk(s); only the answer received so far was scored"
    ]
    await resolve(stream.close())
    assert scorer.calls == 1


async def test_an_sdk_error_before_the_first_chunk_scores_nothing_and_says_so(is_async: bool) -> None:
    error, received, stream, scorer = await _sdk_error(is_async, patched=True, fail_after=0)
    assert received == [] and str(error) == "upstream overloaded"
    assert scorer.calls == 0
    assert stream.tlm_metadata["trustworthiness_score"] is None
    assert stream.tlm_metadata["error"]["type"] == "StreamFailed"


async def test_a_dropped_stream_is_not_scored_warns_nothing_and_is_freed(
    is_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(is_async, fail_after=None)
    scorer = CountingScorer()
    tlm_hooks.patch(client, scorer=scorer)
    stream = await _open(client)
    await _next(stream, is_async)
    proxy_ref, inner_ref = weakref.ref(stream), weakref.ref(stream.__wrapped__)
    with caplog.at_level(logging.DEBUG, logger="tlm_hooks"):
        del stream
        for _ in range(3):  # an abandoned async generator is closed by the event loop on its next turn
            gc.collect()
            await asyncio.sleep(0)
    assert proxy_ref() is None and inner_ref() is None
    assert scorer.calls == 0
    assert [r for r in caplog.records if r.name == "tlm_hooks"] == []
