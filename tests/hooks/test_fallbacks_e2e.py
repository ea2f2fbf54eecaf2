"""Fallbacks end to end through a patched client, sync and async."""

from __future__ import annotations

import queue
from typing import Any

import pytest
from fake_openai import Reply
from hookutil import MESSAGES, prob, resolve, score_of
from openai.types.chat import ChatCompletion

import tlm_hooks
from tlm_hooks import TrustPolicy, UntrustworthyResponseError, fallbacks

LOW, HIGH = -3.0, -0.01  # exp(-3) ~ 0.05, exp(-0.01) ~ 0.99
THRESHOLD = 0.5


def _patched(make_client: Any, is_async: bool, *handlers: Any, threshold: float = THRESHOLD) -> Any:
    client = make_client(is_async)
    tlm_hooks.patch(client, policy=TrustPolicy(threshold=threshold, on_low_trust=list(handlers)))
    return client


async def _ask(client: Any) -> Any:
    return await resolve(client.chat.completions.create(model="m", messages=MESSAGES))


async def test_append_warning(fake: Any, make_client: Any, is_async: bool) -> None:
    client = _patched(make_client, is_async, fallbacks.AppendWarning())
    fake.push(Reply(text="Maybe 5.", logprob=LOW))
    result = await _ask(client)
    assert type(result) is ChatCompletion
    warning = fallbacks.DEFAULT_WARNING.format(score=prob(LOW), threshold=THRESHOLD)
    assert result.choices[0].message.content == "Maybe 5." + warning
    assert result.tlm_metadata["fallbacks"] == ["append_warning"]
    assert score_of(result) == pytest.approx(prob(LOW))
    assert len(fake.requests) == 1


async def test_trusted_answer_runs_no_fallback(fake: Any, make_client: Any, is_async: bool) -> None:
    client = _patched(make_client, is_async, fallbacks.AppendWarning(), fallbacks.Raise())
    fake.push(Reply(text="4.", logprob=HIGH))
    result = await _ask(client)
    assert result.choices[0].message.content == "4."
    assert "fallbacks" not in result.tlm_metadata
    assert score_of(result) == pytest.approx(prob(HIGH))


async def test_replace_response(fake: Any, make_client: Any, is_async: bool) -> None:
    client = _patched(make_client, is_async, fallbacks.ReplaceResponse("I can't say (score {score:.2f})."))
    fake.push(Reply(text="Maybe 5.", logprob=LOW))
    result = await _ask(client)
    assert type(result) is ChatCompletion
    assert result.choices[0].message.content == f"I can't say (score {prob(LOW):.2f})."
    assert result.tlm_metadata["fallbacks"] == ["replace_response"]
    assert score_of(result) == pytest.approx(prob(LOW))


async def test_regenerate_returns_the_better_answer(fake: Any, make_client: Any, is_async: bool) -> None:
    client = _patched(make_client, is_async, fallbacks.Regenerate(attempts=3))
    fake.push(Reply(text="Maybe 5.", logprob=LOW), Reply(text="It is 4.", logprob=HIGH), Reply(text="never asked"))
    result = await _ask(client)
    assert type(result) is ChatCompletion
    assert result.choices[0].message.content == "It is 4."
    assert score_of(result) == pytest.approx(prob(HIGH))
    assert result.tlm_metadata["fallbacks"] == ["regenerate"]
    assert len(fake.requests) == 2  # stopped once an answer reached the threshold
    assert all(seen.body["logprobs"] is True for seen in fake.requests)
    assert fake.requests[0].body["messages"] == fake.requests[1].body["messages"]


async def test_regenerate_keeps_original_when_nothing_is_better(fake: Any, make_client: Any, is_async: bool) -> None:
    client = _patched(make_client, is_async, fallbacks.Regenerate(attempts=2, temperature=1.0))
    fake.push(Reply(text="first", logprob=-2.0), Reply(text="second", logprob=-2.5), Reply(text="third", logprob=-2.2))
    result = await _ask(client)
    assert result.choices[0].message.content == "first"
    assert score_of(result) == pytest.approx(prob(-2.0))
    assert len(fake.requests) == 3
    assert [seen.body.get("temperature") for seen in fake.requests] == [None, 1.0, 1.0]


async def test_escalate_to_another_client_and_model(fake: Any, make_client: Any, is_async: bool) -> None:
    big = make_client(is_async, default_headers={"X-Which": "big-client"})
    client = _patched(make_client, is_async, fallbacks.Escalate(client=big, model="big"))
    fake.push(Reply(text="Maybe 5.", logprob=LOW), Reply(text="Exactly 4.", logprob=HIGH))
    result = await _ask(client)
    assert type(result) is ChatCompletion
    assert len(fake.requests) == 2
    escalated = fake.requests[1]
    assert escalated.body["model"] == "big"
    assert escalated.headers.get("x-which") == "big-client"
    assert "x-which" not in fake.requests[0].headers
    assert result.choices[0].message.content == "Exactly 4."
    assert score_of(result) == pytest.approx(prob(HIGH))
    assert result.tlm_metadata["fallbacks"] == ["escalate"]
    assert not tlm_hooks.is_patched(big)


async def test_escalate_model_only(fake: Any, make_client: Any, is_async: bool) -> None:
    client = _patched(make_client, is_async, fallbacks.Escalate(model="big"))
    fake.push(Reply(logprob=LOW), Reply(text="big answer", logprob=HIGH))
    result = await _ask(client)
    assert [seen.body["model"] for seen in fake.requests] == ["m", "big"]
    assert result.choices[0].message.content == "big answer"
    assert score_of(result) == pytest.approx(prob(HIGH))


async def test_human_review_queue(fake: Any, make_client: Any, is_async: bool) -> None:
    reviews: queue.Queue[Any] = queue.Queue()
    client = _patched(
        make_client,
        is_async,
        fallbacks.HumanReview(queue=reviews, holding_text="A person will check (score {score:.2f})."),
    )
    fake.push(Reply(text="Maybe 5.", logprob=LOW))
    result = await _ask(client)
    assert result.choices[0].message.content == f"A person will check (score {prob(LOW):.2f})."
    assert result.tlm_metadata["fallbacks"] == ["human_review"]
    event = reviews.get_nowait()
    assert reviews.empty()
    assert isinstance(event, tlm_hooks.LowTrustEvent)
    assert event.text == "Maybe 5."
    assert event.score == pytest.approx(prob(LOW))
    assert event.kwargs["model"] == "m"
    assert event.is_async is is_async


async def test_human_review_callback(fake: Any, make_client: Any, is_async: bool) -> None:
    seen: list[Any] = []
    client = _patched(make_client, is_async, fallbacks.HumanReview(seen.append))
    fake.push(Reply(text="Maybe 5.", logprob=LOW))
    result = await _ask(client)
    assert result.choices[0].message.content == fallbacks.DEFAULT_HOLDING
    assert len(seen) == 1 and seen[0].text == "Maybe 5."


async def test_raise(fake: Any, make_client: Any, is_async: bool) -> None:
    client = _patched(make_client, is_async, fallbacks.Raise())
    fake.push(Reply(text="Maybe 5.", logprob=LOW))
    with pytest.raises(UntrustworthyResponseError) as info:
        await _ask(client)
    err = info.value
    assert err.result.trustworthiness_score == pytest.approx(prob(LOW))
    assert err.threshold == THRESHOLD
    assert type(err.response) is ChatCompletion
    assert err.response.choices[0].message.content == "Maybe 5."
    assert f"{prob(LOW):.3f}" in str(err)


async def test_chain_stops_once_trust_is_restored(fake: Any, make_client: Any, is_async: bool) -> None:
    client = _patched(
        make_client, is_async, fallbacks.Regenerate(attempts=1), fallbacks.AppendWarning(), fallbacks.Raise()
    )
    fake.push(Reply(text="Maybe 5.", logprob=LOW), Reply(text="It is 4.", logprob=HIGH))
    result = await _ask(client)  # Raise would have raised had the chain gone on
    assert result.choices[0].message.content == "It is 4."
    assert result.tlm_metadata["fallbacks"] == ["regenerate"]
    assert len(fake.requests) == 2


async def test_chain_continues_while_still_low(fake: Any, make_client: Any, is_async: bool) -> None:
    client = _patched(make_client, is_async, fallbacks.Regenerate(attempts=1), fallbacks.AppendWarning("!"))
    fake.push(Reply(text="a", logprob=-3.0), Reply(text="b", logprob=-2.0))
    result = await _ask(client)
    assert result.choices[0].message.content == "b!"
    assert result.tlm_metadata["fallbacks"] == ["regenerate", "append_warning"]
    assert score_of(result) == pytest.approx(prob(-2.0))


async def test_failing_fallback_is_skipped(fake: Any, make_client: Any, is_async: bool, caplog: Any) -> None:
    def broken(event: Any) -> Any:
        raise ValueError("handler bug")

    client = _patched(make_client, is_async, broken, fallbacks.AppendWarning("!"))
    fake.push(Reply(text="a", logprob=LOW))
    result = await _ask(client)
    assert result.choices[0].message.content == "a!"
    assert result.tlm_metadata["fallbacks"] == ["append_warning"]
    assert any("handler bug" in r.getMessage() for r in caplog.records)


async def test_fallback_on_stream_keeps_replacement_aside(fake: Any, make_client: Any, is_async: bool) -> None:
    """A streamed answer cannot be un-sent: the replacement is offered as tlm_fallback_response."""
    client = _patched(make_client, is_async, fallbacks.ReplaceResponse("replaced"))
    fake.push(Reply(text="Maybe 5.", logprob=LOW))
    stream = await resolve(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    if is_async:
        chunks = [c async for c in stream]
    else:
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Maybe 5."
    assert stream.tlm_fallback_response.choices[0].message.content == "replaced"
    assert stream.tlm_metadata["fallbacks"] == ["replace_response"]


async def test_raise_on_stream_after_last_chunk(fake: Any, make_client: Any, is_async: bool) -> None:
    client = _patched(make_client, is_async, fallbacks.Raise())
    fake.push(Reply(text="Maybe five.", logprob=LOW))
    stream = await resolve(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    received: list[Any] = []
    with pytest.raises(UntrustworthyResponseError) as info:
        if is_async:
            async for chunk in stream:
                received.append(chunk)
        else:
            for chunk in stream:
                received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "Maybe five."
    assert info.value.result.trustworthiness_score == pytest.approx(prob(LOW))


async def test_regenerate_on_raw_response(fake: Any, make_client: Any, is_async: bool) -> None:
    """The repeated call is a plain call (no raw-response header), and parse() returns the winner."""
    client = _patched(make_client, is_async, fallbacks.Regenerate(attempts=1))
    fake.push(Reply(text="Maybe 5.", logprob=LOW), Reply(text="It is 4.", logprob=HIGH))
    raw = await resolve(client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES))
    assert raw.headers["content-type"].startswith("application/json")
    parsed = raw.parse()
    assert type(parsed) is ChatCompletion
    assert parsed.choices[0].message.content == "It is 4."
    assert score_of(parsed) == pytest.approx(prob(HIGH))
    assert raw.parse() is parsed
    assert len(fake.requests) == 2
    assert fake.requests[1].headers.get("x-stainless-raw-response") is None
