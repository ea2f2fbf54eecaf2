"""One call through every combination, via the real litellm to the loopback fake:
{litellm.completion/acompletion, Router.completion/acompletion} x {plain, stream} x {ok, API error}
x {score, route}. The return type is litellm's own, the score is what the fake's answer implies
(token logprobs in score mode, the backend's tlm_metadata in route mode), and an API error is
litellm's own exception, exactly as it is without the hook, after exactly one request."""

from __future__ import annotations

from typing import Any

import litellm
import pytest
from fake_openai import Reply
from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper
from litellm.types.utils import ModelResponse, ModelResponseStream
from litutil import call, drain, prob, text_of_chunks

import tlm_hooks

LOGPROB = -0.4  # per token, in score mode
ROUTE_SCORE = 0.37  # what the fake "TLM backend" reports, in route mode
TEXT = "Two plus two is 4."


def _hook(target: Any, mode: str) -> float:
    if mode == "score":
        tlm_hooks.patch(target)
        return prob(LOGPROB)
    tlm_hooks.route(target, quality_preset="low")
    return ROUTE_SCORE


async def _error_unhooked(entry: str, is_async: bool, shape: str, fake: Any, provider: Any, router: Any) -> Exception:
    fake.push(Reply(status=400, error_param="messages"))
    with pytest.raises(Exception) as info:
        await call(entry, is_async, provider, router, **({"stream": True} if shape == "stream" else {}))
    return info.value


@pytest.mark.parametrize("mode", ["score", "route"])
@pytest.mark.parametrize("outcome", ["ok", "api_error"])
@pytest.mark.parametrize("shape", ["plain", "stream"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("entry", ["litellm", "router"])
async def test_call_matrix(
    fake: Any, provider: Any, router: Any, entry: str, is_async: bool, shape: str, outcome: str, mode: str
) -> None:
    kwargs: dict[str, Any] = {"stream": True} if shape == "stream" else {}
    if outcome == "api_error":
        baseline = await _error_unhooked(entry, is_async, shape, fake, provider, router)
        fake.reset()
        _hook(litellm if entry == "litellm" else router, mode)
        fake.push(Reply(status=400, error_param="messages"))
        with pytest.raises(Exception) as info:
            result = await call(entry, is_async, provider, router, **kwargs)
            await drain(result, is_async=is_async)  # (litellm raises before any chunk; drain just in case)
        err = info.value
        assert type(err) is type(baseline) and isinstance(err, litellm.BadRequestError)
        assert str(err) == str(baseline)
        assert err.status_code == baseline.status_code == 400
        assert type(err.__cause__) is type(baseline.__cause__)
        assert len(fake.requests) == 1  # the original was called exactly once, never retried
        return

    expected = _hook(litellm if entry == "litellm" else router, mode)
    fake.push(Reply(text=TEXT, logprob=LOGPROB, tlm_score=ROUTE_SCORE if mode == "route" else None))
    result = await call(entry, is_async, provider, router, **kwargs)
    if shape == "stream":
        assert isinstance(result, CustomStreamWrapper)
        assert result.tlm_metadata is None  # nothing is scored before the end
        chunks = await drain(result, is_async=is_async)
        assert chunks and all(type(c) is ModelResponseStream for c in chunks)
        assert text_of_chunks(chunks) == TEXT
        answer = result.tlm_response
        assert result.tlm_metadata["trustworthiness_score"] == pytest.approx(expected)
    else:
        answer = result
    assert type(answer) is ModelResponse
    assert answer.choices[0].message.content == TEXT
    assert answer.tlm_metadata["trustworthiness_score"] == pytest.approx(expected)
    assert answer._hidden_params["tlm_metadata"] == answer.tlm_metadata

    assert len(fake.requests) == 1
    sent = fake.requests[0].body
    assert sent["model"] == "m"
    if mode == "score":
        assert sent["logprobs"] is True
        assert "quality_preset" not in sent
    else:
        assert sent["quality_preset"] == "low"  # extra_body, merged into the request body
        assert "logprobs" not in sent
