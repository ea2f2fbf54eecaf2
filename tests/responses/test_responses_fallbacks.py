"""Fallbacks on Responses objects, end to end through a patched client, sync and async."""

from __future__ import annotations

import inspect
import math
import queue
from typing import Any

import pytest
from fake_responses import Answer
from openai.types.responses import Response

import tlm_hooks
from tlm_hooks import TrustPolicy, UntrustworthyResponseError, fallbacks

LOW, HIGH = -3.0, -0.01  # exp(-3) ~ 0.05, exp(-0.01) ~ 0.99
THRESHOLD = 0.5


async def resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def patched(make_client: Any, is_async: bool, *handlers: Any) -> Any:
    client = make_client(is_async)
    tlm_hooks.patch(client, policy=TrustPolicy(threshold=THRESHOLD, on_low_trust=list(handlers)))
    return client


async def ask(client: Any, **kwargs: Any) -> Any:
    return await resolve(client.responses.create(model="m", input="What is 2+2?", **kwargs))


async def test_append_warning(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = patched(make_client, is_async, fallbacks.AppendWarning())
    rfake.push(Answer(text="Maybe 5.", logprob=LOW))
    result = await ask(client)
    assert type(result) is Response
    assert result.output_text == "Maybe 5." + fallbacks.DEFAULT_WARNING.format(score=math.exp(LOW))
    assert result.tlm_metadata["fallbacks"] == ["append_warning"]


async def test_replace_response(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = patched(make_client, is_async, fallbacks.ReplaceResponse("I can't say (score {score:.2f})."))
    rfake.push(Answer(text="Maybe 5.", logprob=LOW))
    result = await ask(client)
    assert type(result) is Response
    assert result.output_text == f"I can't say (score {math.exp(LOW):.2f})."
    assert len(result.output[0].content) == 1 and result.output[0].content[0].logprobs == []
    assert result.tlm_metadata["fallbacks"] == ["replace_response"]


async def test_replace_a_function_call_answer_adds_a_message(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    policy = TrustPolicy(threshold=0.9, on_low_trust=[fallbacks.ReplaceResponse("No tool for you.")])
    tlm_hooks.patch(client, scorer=lambda request: 0.1, policy=policy)
    rfake.push(Answer(function_call={"name": "f", "arguments": "{}"}))
    result = await ask(client)
    assert [item.type for item in result.output] == ["function_call", "message"]
    assert result.output_text == "No tool for you."


async def test_regenerate_keeps_the_better_answer(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = patched(make_client, is_async, fallbacks.Regenerate(attempts=2, temperature=1.0))
    rfake.push(Answer(text="Maybe 5.", logprob=LOW), Answer(text="It is 4.", logprob=HIGH))
    result = await ask(client, stream=False)
    assert result.output_text == "It is 4."
    assert result.tlm_metadata["trustworthiness_score"] == pytest.approx(math.exp(HIGH))
    assert len(rfake.requests) == 2  # stopped once an answer reached the threshold
    again = rfake.requests[1].body
    assert again["temperature"] == 1.0 and "stream" not in again and again["input"] == "What is 2+2?"


async def test_escalate_to_another_model(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = patched(make_client, is_async, fallbacks.Escalate(model="big"))
    rfake.push(Answer(text="Maybe 5.", logprob=LOW), Answer(text="4.", logprob=HIGH))
    result = await ask(client)
    assert result.output_text == "4."
    assert rfake.requests[1].body["model"] == "big"
    assert result.tlm_metadata["fallbacks"] == ["escalate"]
    assert result.tlm_metadata["trustworthiness_score"] == pytest.approx(math.exp(HIGH))


async def test_escalate_to_another_client(rfake: Any, make_client: Any, is_async: bool) -> None:
    stronger = make_client(is_async, azure=True)
    client = patched(make_client, is_async, fallbacks.Escalate(client=stronger))
    rfake.push(Answer(text="Maybe 5.", logprob=LOW), Answer(text="4.", logprob=HIGH))
    result = await ask(client)
    assert result.output_text == "4."
    assert rfake.requests[1].headers.get("api-key") == "test-key"  # the Azure client answered
    assert rfake.requests[1].body["include"] == ["message.output_text.logprobs"]  # so it can be scored


async def test_human_review_queue(rfake: Any, make_client: Any, is_async: bool) -> None:
    reviews: queue.Queue[Any] = queue.Queue()
    client = patched(make_client, is_async, fallbacks.HumanReview(queue=reviews, holding_text="A person will check."))
    rfake.push(Answer(text="Maybe 5.", logprob=LOW))
    result = await ask(client)
    assert result.output_text == "A person will check."
    event = reviews.get_nowait()
    assert event.response.output_text == "Maybe 5."  # the reviewer sees the judged answer
    assert event.request is not None and event.request.prompt_lines() == ["user: What is 2+2?"]


async def test_raise(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = patched(make_client, is_async, fallbacks.Raise())
    rfake.push(Answer(text="Maybe 5.", logprob=LOW))
    with pytest.raises(UntrustworthyResponseError) as info:
        await ask(client)
    assert info.value.response.output_text == "Maybe 5."
    assert info.value.result.trustworthiness_score == pytest.approx(math.exp(LOW))


async def test_trusted_answer_runs_no_fallback(rfake: Any, make_client: Any, is_async: bool) -> None:
    client = patched(make_client, is_async, fallbacks.AppendWarning(), fallbacks.Raise())
    rfake.push(Answer(text="4.", logprob=HIGH))
    result = await ask(client)
    assert result.output_text == "4."
    assert "fallbacks" not in result.tlm_metadata
