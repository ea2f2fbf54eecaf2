"""On a stream, fallbacks that call a model (Regenerate, Escalate) run after the stream has ended:
the app's loop over the chunks finishes with the content, not with the fallback."""

from __future__ import annotations

from typing import Any

import pytest
from fake_openai import Reply
from hookutil import MESSAGES, resolve

import tlm_hooks
from tlm_hooks import TrustPolicy, UntrustworthyResponseError, fallbacks
from tlm_hooks.policy import split_for_stream

LOW = -3.0
SLOW = 5.0  # seconds the regenerated answer takes


def _scores(by_text: dict[str, float]) -> Any:
    return lambda request: by_text.get(request.response, 0.1)


async def _stream(client: Any) -> Any:
    return await resolve(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))


async def _drain(stream: Any, is_async: bool) -> str:
    chunks = [c async for c in stream] if is_async else list(stream)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def test_the_stream_ends_before_regenerate_has_answered(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    policy = TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.Regenerate(attempts=1)])
    tlm_hooks.patch(client, scorer=_scores({"Paris.": 0.9}), policy=policy)
    fake.push(Reply(text="Lyon.", logprob=LOW), Reply(text="Paris.", delay=SLOW))
    stream = await _stream(client)
    assert await _drain(stream, is_async) == "Lyon."
    assert not await resolve(stream.wait_fallbacks(0))  # the loop ended; Regenerate is still waiting
    assert await resolve(stream.wait_fallbacks(60))
    assert stream.tlm_fallback_response.choices[0].message.content == "Paris."
    assert stream.tlm_metadata["fallbacks"] == ["regenerate"]
    assert stream.tlm_metadata["trustworthiness_score"] == 0.9


def test_a_sync_streams_metadata_waits_for_the_fallbacks(fake: Any, make_client: Any) -> None:
    client = make_client(False)
    policy = TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.Regenerate(attempts=1)])
    tlm_hooks.patch(client, scorer=_scores({"Paris.": 0.9}), policy=policy)
    fake.push(Reply(text="Lyon.", logprob=LOW), Reply(text="Paris.", delay=1.0))
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Lyon."
    # read at once, without wait_fallbacks: the property waits for the fallback
    assert stream.tlm_metadata["fallbacks"] == ["regenerate"]
    assert stream.tlm_fallback_response.choices[0].message.content == "Paris."


async def test_append_warning_before_regenerate_is_still_streamed(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    policy = TrustPolicy(
        threshold=0.5, on_low_trust=[fallbacks.AppendWarning(" [check this]"), fallbacks.Regenerate(attempts=1)]
    )
    tlm_hooks.patch(client, scorer=_scores({"Paris.": 0.9}), policy=policy)
    fake.push(Reply(text="Lyon.", logprob=LOW), Reply(text="Paris."))
    stream = await _stream(client)
    assert await _drain(stream, is_async) == "Lyon. [check this]"
    assert await resolve(stream.wait_fallbacks(60))
    assert stream.tlm_metadata["fallbacks"] == ["append_warning", "regenerate"]


async def test_raise_after_regenerate_keeps_the_whole_chain_before_the_end(
    fake: Any, make_client: Any, is_async: bool
) -> None:
    client = make_client(is_async)
    policy = TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.Regenerate(attempts=1), fallbacks.Raise()])
    tlm_hooks.patch(client, scorer=_scores({}), policy=policy)  # every answer low
    fake.push(Reply(text="Lyon.", logprob=LOW), Reply(text="Marseille."))
    stream = await _stream(client)
    with pytest.raises(UntrustworthyResponseError):
        await _drain(stream, is_async)
    assert len(fake.requests) == 2  # Regenerate ran before the end, so Raise could reach the loop


def _named(stage: str | None) -> Any:
    def handler(event: Any) -> None:
        return None

    if stage is not None:
        handler.stream_stage = stage  # type: ignore[attr-defined]
    return handler


@pytest.mark.parametrize(
    ("chain", "before", "after"),
    [
        ([fallbacks.AppendWarning(), fallbacks.ReplaceResponse()], 2, 0),
        ([fallbacks.Regenerate()], 0, 1),
        ([fallbacks.AppendWarning(), fallbacks.Regenerate(), fallbacks.HumanReview(callback=print)], 1, 2),
        ([fallbacks.Escalate(model="big"), fallbacks.Raise()], 2, 0),  # Raise must reach the loop
        ([fallbacks.Regenerate(), _named(None)], 2, 0),  # a function that does not say: before the end
        ([fallbacks.Regenerate(), _named("after")], 0, 2),
    ],
)
def test_split_for_stream(chain: list[Any], before: int, after: int) -> None:
    handlers = TrustPolicy(on_low_trust=chain).handlers
    got_before, got_after = split_for_stream(handlers)
    assert (len(got_before), len(got_after)) == (before, after)
    assert (*got_before, *got_after) == handlers  # order kept, nothing lost
