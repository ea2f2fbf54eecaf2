"""`TLMCallback`'s proxy-only hooks driven directly, with litellm's own types: the streaming hook
(which chunk carries the score, what passes through when, failures) and the pre-call hook (a
client's TLM keys).

The real proxy runs both in tests/litellm/test_litellm_proxy.py; these cases are the ones a scripted
upstream cannot easily produce (a stream without a finish chunk, an error mid-stream, the logging
hook running before the stream ends) and the option rules in full.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litellm.types.utils import Delta, ModelResponse, ModelResponseStream, StreamingChoices, Usage

from tlm_hooks import LogprobScorer, TLMScorer
from tlm_hooks.errors import InvalidOptionError
from tlm_hooks.integrations.litellm import TLMCallback
from tlm_hooks.types import ScoreRequest

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


def chunk(content: str | None = None, finish: str | None = None, role: str | None = None) -> ModelResponseStream:
    return ModelResponseStream(
        id="c1",
        model="m",
        choices=[StreamingChoices(index=0, delta=Delta(content=content, role=role), finish_reason=finish)],
    )


def usage_chunk() -> ModelResponseStream:
    return ModelResponseStream(
        id="c1", model="m", choices=[], usage=Usage(prompt_tokens=5, completion_tokens=2, total_tokens=7)
    )


def story() -> list[ModelResponseStream]:
    """A stream as litellm's proxy receives it: role, two text chunks, the finish chunk."""
    return [chunk("", role="assistant"), chunk("Four"), chunk(", surely."), chunk(finish="stop")]


class Upstream:
    """An async iterator over ``items`` that counts how many were pulled (and can fail after them)."""

    def __init__(self, items: list[Any], error: Exception | None = None) -> None:
        self.items, self.error, self.pulled = items, error, 0

    async def __aiter__(self) -> AsyncIterator[Any]:
        for item in self.items:
            self.pulled += 1
            yield item
        if self.error is not None:
            raise self.error


class Scorer:
    def __init__(self, fail: bool = False) -> None:
        self.requests: list[ScoreRequest] = []
        self.fail = fail

    def __call__(self, request: ScoreRequest) -> float:
        self.requests.append(request)
        if self.fail:
            raise RuntimeError("the judge is down")
        return round(1 / (1 + len(request.response)), 6)


def request_data(call_id: str = "call-1", **extra: Any) -> dict[str, Any]:
    return {"litellm_call_id": call_id, "model": "gpt", "messages": MESSAGES, "stream": True, **extra}


async def through(callback: TLMCallback, upstream: Upstream, data: dict[str, Any]) -> list[tuple[Any, int]]:
    """Each chunk the hook gives the proxy, with how many upstream chunks had been pulled then."""
    out = []
    async for item in callback.async_post_call_streaming_iterator_hook(None, upstream.__aiter__(), data):
        out.append((item, upstream.pulled))
    return out


def metadata_of(item: Any) -> Any:
    return (item.model_extra or {}).get("tlm_metadata")


async def test_text_passes_through_as_it_arrives_and_the_finish_chunk_carries_the_score() -> None:
    scorer = Scorer()
    upstream = Upstream(story())
    out = await through(TLMCallback(scorer, wait=True), upstream, request_data())
    items = [item for item, _ in out]
    assert items == upstream.items  # the same chunk objects, in order, none added or lost
    # a text chunk goes out before the next upstream chunk is asked for; the role-only chunk
    # waits for the first text (it might have been the last); the finish chunk waits for the score
    assert [pulled for _, pulled in out] == [2, 2, 3, 4]
    assert [metadata_of(i) is not None for i in items] == [False, False, False, True]
    assert len(scorer.requests) == 1
    assert scorer.requests[0].response == "Four, surely."
    assert list(scorer.requests[0].messages or ()) == MESSAGES
    assert metadata_of(items[-1])["trustworthiness_score"] == pytest.approx(1 / 14, abs=1e-6)
    # the proxy serialises chunks with model_dump_json: the score is in the JSON the client gets
    assert '"tlm_metadata"' in items[-1].model_dump_json(exclude_none=True, exclude_unset=True)


@pytest.mark.parametrize("stripped", [False, True], ids=["client-asked-usage", "proxy-injected-usage"])
async def test_the_score_rides_on_the_last_chunk_the_client_receives(stripped: bool) -> None:
    upstream = Upstream([*story(), usage_chunk()])
    data = request_data(_litellm_strip_stream_usage=True) if stripped else request_data()
    items = [item for item, _ in await through(TLMCallback(Scorer(), wait=True), upstream, data)]
    assert items == upstream.items
    carriers = [i for i, item in enumerate(items) if metadata_of(item) is not None]
    # the proxy drops a usage chunk it injected itself: the score then goes on the finish chunk
    assert carriers == ([3] if stripped else [4])


async def test_a_stream_without_a_finish_chunk_gets_one_more_chunk_for_the_score() -> None:
    upstream = Upstream([chunk("Four"), chunk(".")])
    items = [item for item, _ in await through(TLMCallback(Scorer(), wait=True), upstream, request_data())]
    assert items[:2] == upstream.items
    assert len(items) == 3
    assert items[2].choices == [] and metadata_of(items[2])["trustworthiness_score"] == pytest.approx(1 / 6, abs=1e-6)


async def test_without_wait_or_for_other_streams_nothing_changes() -> None:
    scorer = Scorer()
    upstream = Upstream(story())
    items = [item for item, _ in await through(TLMCallback(scorer), upstream, request_data())]
    assert items == upstream.items and not any(metadata_of(i) for i in items)
    events = [{"type": "response.output_text.delta", "delta": "x"}, chunk(finish="stop")]  # not a chat stream
    upstream = Upstream(events)
    items = [item for item, _ in await through(TLMCallback(scorer, wait=True), upstream, request_data())]
    assert items == events and metadata_of(events[1]) is None
    assert scorer.requests == []


async def test_an_upstream_error_mid_stream_is_raised_untouched_after_what_came_before() -> None:
    error = ConnectionError("upstream went away")
    scorer = Scorer()
    upstream = Upstream([chunk("", role="assistant"), chunk("Fo"), chunk(finish="length")], error=error)
    got: list[Any] = []
    with pytest.raises(ConnectionError) as raised:
        async for item in TLMCallback(scorer, wait=True).async_post_call_streaming_iterator_hook(
            None, upstream.__aiter__(), request_data()
        ):
            got.append(item)
    assert raised.value is error
    assert got == upstream.items  # the held finish chunk still went out before the error
    assert scorer.requests == [] and not any(metadata_of(i) for i in got)


async def test_a_failed_score_still_ends_the_stream_and_says_why() -> None:
    upstream = Upstream(story())
    items = [item for item, _ in await through(TLMCallback(Scorer(fail=True), wait=True), upstream, request_data())]
    assert items == upstream.items
    metadata = metadata_of(items[-1])
    assert metadata["trustworthiness_score"] is None
    assert "the judge is down" in str(metadata["error"])


async def test_the_logging_hook_waits_for_the_streams_score_instead_of_scoring_again() -> None:
    scorer = Scorer()
    callback = TLMCallback(scorer, wait=True)
    release = asyncio.Event()

    async def slow_upstream() -> AsyncIterator[Any]:
        for item in story()[:-1]:
            yield item
        await release.wait()
        yield chunk(finish="stop")

    data = request_data("call-7")
    streamed = asyncio.ensure_future(
        _collect(callback.async_post_call_streaming_iterator_hook(None, slow_upstream(), data))
    )
    await asyncio.sleep(0.05)  # the stream is under way; litellm logs the call before it ends
    assembled = ModelResponse(choices=[{"message": {"role": "assistant", "content": "Four, surely."}}])
    kwargs = {"litellm_call_id": "call-7", "messages": MESSAGES, "model": "gpt", "standard_logging_object": {}}
    logged = asyncio.ensure_future(callback.async_logging_hook(kwargs, assembled, "acompletion"))
    await asyncio.sleep(0.05)
    assert not logged.done()  # waiting for the stream's score
    release.set()
    items = await streamed
    await logged
    assert len(scorer.requests) == 1
    sent = metadata_of(items[-1])
    assert kwargs["standard_logging_object"]["metadata"]["tlm_metadata"] == sent
    assert assembled.tlm_metadata == sent


async def _collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


async def pre_call(callback: TLMCallback, data: dict[str, Any], call_type: str = "completion") -> Any:
    return await callback.async_pre_call_hook(None, None, data, call_type)


async def test_a_clients_tlm_keys_leave_the_request_and_score_that_call_on_top_of_the_callbacks() -> None:
    scorer = Scorer()
    callback = TLMCallback(scorer, options={"log": ["explanation"], "max_tokens": 64}, wait=True)
    asked = {"quality_preset": "high", "options": {"log": ["per_component_score"]}}
    data = {**request_data("call-9"), **asked, "temperature": 0}
    assert await pre_call(callback, data) is None
    assert data == {**request_data("call-9"), "temperature": 0}  # what goes upstream: no TLM keys
    upstream = Upstream(story())
    await through(callback, upstream, data)
    (request,) = scorer.requests
    assert request.options is not None
    assert request.options.quality_preset == "high"
    assert dict(request.options.options) == {"log": ["per_component_score"], "max_tokens": 64}
    # another call without keys is scored with the callback's own options
    await through(callback, Upstream(story()), request_data("call-10"))
    assert scorer.requests[1].options == callback.options


async def test_the_default_scorer_becomes_the_engine_when_a_client_asks_for_more_than_logprobs() -> None:
    callback = TLMCallback()
    assert isinstance(callback.scorer, LogprobScorer)
    data = {**request_data("call-11"), "quality_preset": "low"}
    await pre_call(callback, data)
    options, scorer = callback._for_call(data)
    assert isinstance(scorer, TLMScorer) and options.quality_preset == "low"
    data2 = {**request_data("call-12"), "quality_preset": "low"}
    await pre_call(callback, data2)
    assert callback._for_call(data2)[1] is scorer  # one scorer per set of options, not per call


@pytest.mark.parametrize(
    "callback, asked, named",
    [
        (TLMCallback(), {"task": "summarise"}, "task"),
        (TLMCallback(), {"options": {"model_provider": {"api_base": "http://x/v1"}}}, "options.model_provider"),
        (TLMCallback(LogprobScorer()), {"quality_preset": "high"}, "quality_preset"),
    ],
    ids=["task", "model_provider", "logprob-scorer"],
)
async def test_keys_that_cannot_be_honoured_are_refused(
    callback: TLMCallback, asked: dict[str, Any], named: str
) -> None:
    with pytest.raises(Exception) as raised:
        await pre_call(callback, {**request_data(), **asked})
    if importlib.util.find_spec("fastapi") is None:  # not a proxy: the error itself
        assert isinstance(raised.value, InvalidOptionError) and raised.value.key == named
        return
    detail = getattr(raised.value, "detail", None)  # FastAPI's HTTPException, which the proxy answers
    assert getattr(raised.value, "status_code", None) == 400, raised.value
    assert detail["param"] == named and detail["error"].startswith(f"invalid {named}=")


async def test_model_provider_from_a_client_is_used_when_allowed_and_other_calls_are_left_alone() -> None:
    scorer = Scorer()
    callback = TLMCallback(scorer, allow_model_provider=True)
    provider = {"api_base": "http://judge.internal/v1", "api_key": "k"}
    data = {**request_data("call-13"), "options": {"model_provider": provider}}
    await pre_call(callback, data)
    assert callback._for_call(data)[0].options["model_provider"] == provider
    embedding = {"input": "text", "task": "retrieval"}  # another call type's own keys are not ours
    await pre_call(callback, embedding, call_type="aembedding")
    assert embedding == {"input": "text", "task": "retrieval"}
    with pytest.raises(TypeError, match="allow_model_provider"):
        TLMCallback(allow_model_provider="yes")  # type: ignore[arg-type]
