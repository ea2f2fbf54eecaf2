"""Fallbacks acting on Azure AI Inference responses: the answer rewritten, re-asked, escalated
or refused, on plain and streamed calls, sync and async; the result stays a `ChatCompletions`."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("azure.ai.inference")

from azure.ai.inference.models import ChatCompletions, StreamingChatCompletionsUpdate  # noqa: E402
from azutil import MESSAGES, drain, resolve, score_of, text_of_updates  # noqa: E402
from fake_openai import Reply  # noqa: E402

import tlm_hooks  # noqa: E402
from tlm_hooks import fallbacks  # noqa: E402
from tlm_hooks.errors import UntrustworthyResponseError  # noqa: E402


def by_text(scores: dict[str, float]) -> Any:
    """A scorer that gives each answer text its own score."""
    return lambda request: scores[request.response]


def _policy(*handlers: Any, threshold: float = 0.5) -> tlm_hooks.TrustPolicy:
    return tlm_hooks.TrustPolicy(threshold=threshold, on_low_trust=list(handlers))


async def test_append_warning_on_a_plain_answer(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client, scorer=lambda r: 0.2, policy=_policy(fallbacks.AppendWarning(" [check: {score:.1f}]")))
    fake.push(Reply(text="Paris."))
    response = await resolve(client.complete(messages=MESSAGES))
    assert type(response) is ChatCompletions
    assert response.choices[0].message.content == "Paris. [check: 0.2]"
    assert response["choices"][0]["message"]["content"] == "Paris. [check: 0.2]"
    assert response.tlm_metadata["fallbacks"] == ["append_warning"]
    assert response.as_dict()["tlm_metadata"] == response.tlm_metadata
    assert response.id == "chatcmpl-fake" and response.usage.total_tokens == 10  # the rest is kept


async def test_append_warning_on_a_stream_sends_one_more_update(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client, scorer=lambda r: 0.2, policy=_policy(fallbacks.AppendWarning(" [unsure]")))
    fake.push(Reply(text="Paris is the capital."))
    stream = await resolve(client.complete(messages=MESSAGES, stream=True))
    updates = await drain(stream, is_async=is_async)
    assert type(updates[-1]) is StreamingChatCompletionsUpdate
    assert updates[-1].choices[0].delta.content == " [unsure]"
    assert updates[-1].id == "chatcmpl-fake"
    assert text_of_updates(updates) == "Paris is the capital. [unsure]"
    assert stream.tlm_metadata["fallbacks"] == ["append_warning"]


async def test_replace_response_plain_and_streamed(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client, scorer=lambda r: 0.1, policy=_policy(fallbacks.ReplaceResponse("I don't know.")))
    response = await resolve(client.complete(messages=MESSAGES))
    assert type(response) is ChatCompletions and response.choices[0].message.content == "I don't know."
    assert response.tlm_metadata["fallbacks"] == ["replace_response"]

    stream = await resolve(client.complete(messages=MESSAGES, stream=True))
    updates = await drain(stream, is_async=is_async)
    assert text_of_updates(updates) == "The answer is 4."  # already sent: not un-sent
    replacement = stream.tlm_fallback_response
    assert type(replacement) is ChatCompletions and replacement.choices[0].message.content == "I don't know."
    assert replacement["tlm_metadata"]["fallbacks"] == ["replace_response"]


@pytest.mark.parametrize("form", ["keywords", "body"])
async def test_regenerate_keeps_the_best_answer(fake: Any, make_client: Any, is_async: bool, form: str) -> None:
    client = make_client(is_async)
    scores = {"Lyon.": 0.2, "Marseille.": 0.3, "Paris.": 0.9}
    tlm_hooks.patch(client, scorer=by_text(scores), policy=_policy(fallbacks.Regenerate(attempts=3, temperature=0.9)))
    fake.push(Reply(text="Lyon."), Reply(text="Marseille."), Reply(text="Paris."), Reply(text="unused"))
    call = (
        {"messages": MESSAGES, "stream": True}
        if form == "keywords"
        else {"body": {"messages": MESSAGES, "stream": True}}
    )
    stream = await resolve(client.complete(**call))
    await drain(stream, is_async=is_async)  # the stream ends with its content; Regenerate runs after
    assert await resolve(stream.wait_fallbacks(30))
    assert len(fake.requests) == 3  # stopped once an answer reached the threshold
    for again in fake.requests[1:]:
        assert again.body["temperature"] == 0.9 and "stream" not in again.body  # one full answer each
    best = stream.tlm_fallback_response
    assert type(best) is ChatCompletions and best.choices[0].message.content == "Paris."
    assert score_of(best) == 0.9 and best.tlm_metadata["fallbacks"] == ["regenerate"]


async def test_escalate_to_another_client_and_model(fake: Any, make_client: Any, is_async: bool) -> None:
    client, stronger = make_client(is_async), make_client(is_async)
    scores = {"Lyon.": 0.2, "Paris.": 0.95}
    tlm_hooks.patch(client, scorer=by_text(scores), policy=_policy(fallbacks.Escalate(client=stronger, model="big")))
    fake.push(Reply(text="Lyon."), Reply(text="Paris."))
    response = await resolve(client.complete(messages=MESSAGES, model="small"))
    assert type(response) is ChatCompletions and response.choices[0].message.content == "Paris."
    assert [seen.body["model"] for seen in fake.requests] == ["small", "big"]
    assert score_of(response) == 0.95 and response.tlm_metadata["fallbacks"] == ["escalate"]
    assert not tlm_hooks.is_patched(stronger)


async def test_raise_refuses_a_low_trust_answer(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.route(client, policy=_policy(fallbacks.Raise(), threshold=0.8))
    fake.push(Reply(text="Maybe.", tlm_score=0.3))
    with pytest.raises(UntrustworthyResponseError) as info:
        await resolve(client.complete(messages=MESSAGES))
    assert info.value.result.trustworthiness_score == 0.3
    assert type(info.value.response) is ChatCompletions


async def test_custom_fallback_sees_the_azure_response(fake: Any, make_client: Any, is_async: bool) -> None:
    seen: list[Any] = []

    def handler(event: Any) -> Any:
        seen.append((event.text, dict(event.kwargs)))
        return event.with_text(event.text.upper())

    client = make_client(is_async)
    tlm_hooks.route(client, policy=_policy(handler))
    fake.push(Reply(text="paris.", tlm_score=0.1))
    response = await resolve(client.complete(messages=MESSAGES))
    assert seen == [("paris.", {"messages": MESSAGES})]
    assert response.choices[0].message.content == "PARIS."
    assert response.tlm_metadata == {"trustworthiness_score": 0.1, "fallbacks": ["handler"]}
