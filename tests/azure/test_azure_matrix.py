"""One call through every combination: {sync, async} x {keyword call, raw body} x {plain, stream}
x {ok, API error} x {score, route}. The result is the SDK's own type, the score is what the fake
server's answer implies, and API errors are the SDK's own, raised after exactly one request."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("azure.ai.inference")

from azure.ai.inference.models import (  # noqa: E402
    AsyncStreamingChatCompletions,
    ChatCompletions,
    StreamingChatCompletions,
    StreamingChatCompletionsUpdate,
)
from azure.core.exceptions import HttpResponseError  # noqa: E402
from azutil import MESSAGES, drain, prob, resolve, score_of, text_of_updates  # noqa: E402
from fake_openai import Reply  # noqa: E402

import tlm_hooks  # noqa: E402

LOGPROB = -0.4  # per token, in score mode
ROUTE_SCORE = 0.37  # what the fake "TLM backend" reports, in route mode
TEXT = "Two plus two is 4."


def _call_args(form: str, stream: bool) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if form == "keywords":
        return (), {"messages": MESSAGES, "model": "m", **({"stream": True} if stream else {})}
    body = {"messages": MESSAGES, "model": "m", **({"stream": True} if stream else {})}
    return (body,), {}  # the SDK's positional `body`


@pytest.mark.parametrize("mode", ["score", "route"])
@pytest.mark.parametrize("outcome", ["ok", "api_error"])
@pytest.mark.parametrize("shape", ["plain", "stream"])
@pytest.mark.parametrize("form", ["keywords", "body"])
async def test_call_matrix(
    fake: Any, make_client: Any, is_async: bool, form: str, shape: str, outcome: str, mode: str
) -> None:
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
    args, kwargs = _call_args(form, shape == "stream")

    if outcome == "api_error":
        with pytest.raises(HttpResponseError) as info:
            await resolve(client.complete(*args, **kwargs))
        err = info.value
        assert type(err) is HttpResponseError and err.status_code == 400
        assert "scripted failure (messages)" in str(err)
        assert err.__cause__ is None
        assert len(fake.requests) == 1  # the original was called exactly once, never retried
        return

    result = await resolve(client.complete(*args, **kwargs))
    assert len(fake.requests) == 1
    seen = fake.requests[0]
    assert seen.path.startswith("/v1/chat/completions?api-version=")
    if mode == "score":
        assert seen.body["logprobs"] is True
        assert "quality_preset" not in seen.body
    else:
        assert seen.body["quality_preset"] == "low" and "logprobs" not in seen.body
        assert seen.headers["extra-parameters"] == "pass-through"

    if shape == "plain":
        assert type(result) is ChatCompletions
        assert result.choices[0].message.content == TEXT
        assert score_of(result) == pytest.approx(expected)
        assert result["tlm_metadata"] is result.tlm_metadata
        assert json.loads(str(result))["tlm_metadata"]["trustworthiness_score"] == pytest.approx(expected)
    else:
        assert isinstance(result, AsyncStreamingChatCompletions if is_async else StreamingChatCompletions)
        assert result.tlm_metadata is None  # nothing is scored before the end
        updates = await drain(result, is_async=is_async)
        assert all(type(u) is StreamingChatCompletionsUpdate for u in updates)
        assert text_of_updates(updates) == TEXT
        assert score_of(result) == pytest.approx(expected)
        assert type(result.tlm_response) is ChatCompletions
        assert result.tlm_response.choices[0].message.content == TEXT
        assert result.tlm_response.as_dict()["tlm_metadata"]["trustworthiness_score"] == pytest.approx(expected)
