"""Scoring behaviour: the recursion guard, how logprobs are requested, and fail-open /
fail-closed handling of scorer failures and missing backend metadata."""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest
from fake_openai import Reply
from hookutil import MESSAGES, CountingScorer, drain, metadata_of, prob, resolve, score_of

import tlm_hooks
from tlm_hooks import FunctionScorer, TrustPolicy, TrustScoringError


async def _ask(client: Any, **kwargs: Any) -> Any:
    return await resolve(client.chat.completions.create(model=kwargs.pop("model", "m"), messages=MESSAGES, **kwargs))


# -- recursion guard ---------------------------------------------------------------------------


def test_scorer_calling_the_same_patched_client_is_not_rescored(fake: Any, make_client: Any) -> None:
    client = make_client()
    inner_results: list[Any] = []

    def judge(request: tlm_hooks.ScoreRequest) -> float:
        verdict = client.chat.completions.create(
            model="judge", messages=[{"role": "user", "content": f"Rate: {request.response}"}]
        )
        inner_results.append(verdict)
        return 0.5 if verdict.choices[0].message.content == "judged" else 0.1

    tlm_hooks.patch(client, scorer=FunctionScorer(judge, wants_logprobs=True))
    fake.push(Reply(text="answer"), Reply(text="judged"))
    result = client.chat.completions.create(model="m", messages=MESSAGES)
    assert score_of(result) == 0.5
    assert len(fake.requests) == 2
    assert [seen.body["model"] for seen in fake.requests] == ["m", "judge"]
    assert fake.requests[0].body["logprobs"] is True
    assert "logprobs" not in fake.requests[1].body  # the inner call was not hooked
    assert metadata_of(inner_results[0]) is None


@pytest.mark.parametrize("async_fn", [False, True], ids=["sync_fn", "async_fn"])
async def test_async_scorer_calling_the_same_patched_client(fake: Any, make_client: Any, async_fn: bool) -> None:
    client = make_client(True)
    inner_results: list[Any] = []

    if async_fn:

        async def judge(request: tlm_hooks.ScoreRequest) -> float:
            verdict = await client.chat.completions.create(
                model="judge", messages=[{"role": "user", "content": "rate"}]
            )
            inner_results.append(verdict)
            return 0.5

    else:
        sync_client = make_client(False)
        tlm_hooks.patch(sync_client)

        def judge(request: tlm_hooks.ScoreRequest) -> float:  # runs in a worker thread
            verdict = sync_client.chat.completions.create(model="judge", messages=[{"role": "user", "content": "rate"}])
            inner_results.append(verdict)
            return 0.5

    tlm_hooks.patch(client, scorer=judge)
    result = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert score_of(result) == 0.5
    assert len(fake.requests) == 2
    assert metadata_of(inner_results[0]) is None
    assert "logprobs" not in fake.requests[1].body


def test_unhooked_block_skips_the_hook(fake: Any, make_client: Any) -> None:
    client = make_client()
    tlm_hooks.patch(client)
    with tlm_hooks.unhooked():
        result = client.chat.completions.create(model="m", messages=MESSAGES)
    assert metadata_of(result) is None
    assert "logprobs" not in fake.requests[0].body


# -- logprobs ----------------------------------------------------------------------------------


async def test_logprobs_added_only_when_caller_did_not_set_them(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client)
    fake.push(Reply(logprob=-0.3), Reply(logprob=-0.3))
    added = await _ask(client)
    assert fake.requests[0].body["logprobs"] is True
    assert score_of(added) == pytest.approx(prob(-0.3))

    refused = await _ask(client, logprobs=False)
    assert fake.requests[1].body["logprobs"] is False
    assert refused.choices[0].logprobs is None
    assert refused.tlm_metadata["trustworthiness_score"] is None
    assert refused.tlm_metadata["error"]["type"] == "MissingLogprobs"


async def test_request_logprobs_false_never_adds_them(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client, scorer=tlm_hooks.LogprobScorer(request_logprobs=False))
    result = await _ask(client)
    assert "logprobs" not in fake.requests[0].body
    assert result.tlm_metadata["error"]["type"] == "MissingLogprobs"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_model_refusing_logprobs_is_retried_once_without(
    fake: Any, make_client: Any, is_async: bool, stream: bool, caplog: Any
) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client)
    fake.push(Reply(status=400, error_param="logprobs"), Reply(text="Four."), Reply(text="Again."))
    result = await _ask(client, model="no-logprobs-model", stream=stream)
    if stream:
        chunks = await drain(result, is_async=is_async)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Four."
    else:
        assert result.choices[0].message.content == "Four."
    assert [seen.body.get("logprobs") for seen in fake.requests] == [True, None]
    assert result.tlm_metadata["trustworthiness_score"] is None
    assert result.tlm_metadata["error"]["type"] == "MissingLogprobs"

    # the model is remembered: no logprobs are sent to it again ...
    again = await _ask(client, model="no-logprobs-model")
    assert again.choices[0].message.content == "Again."
    assert len(fake.requests) == 3
    assert "logprobs" not in fake.requests[2].body
    # ... while other models still get them
    other = await _ask(client, model="other-model")
    assert fake.requests[3].body["logprobs"] is True
    assert score_of(other) == pytest.approx(prob(Reply().logprob))


async def test_a_refusal_is_explained_once_and_forget_logprob_refusals_asks_again(
    fake: Any, make_client: Any, is_async: bool, caplog: Any
) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client)
    fake.push(Reply(status=400, error_param="logprobs"), Reply(text="One."), Reply(text="Two."))
    with caplog.at_level(logging.INFO, logger="tlm_hooks"):
        first = await _ask(client, model="plain-model")
        second = await _ask(client, model="plain-model")
    warned = [r.getMessage() for r in caplog.records if r.name == "tlm_hooks" and "refused" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("tlm-hooks: model 'plain-model' refused the `logprobs` parameter")
    for response in (first, second):  # the score says what happened and how to switch it off, not "send logprobs=True"
        error = response.tlm_metadata["error"]
        assert error["type"] == "MissingLogprobs" and "model 'plain-model' refused" in error["message"]
        assert "LogprobScorer(request_logprobs=False)" in error["message"] and "logprobs=True" not in error["message"]

    tlm_hooks.forget_logprob_refusals()
    fake.push(Reply(logprob=-0.1))
    asked = await _ask(client, model="plain-model")
    assert fake.requests[-1].body["logprobs"] is True
    assert score_of(asked) == pytest.approx(prob(-0.1))


async def test_refusal_of_callers_own_logprobs_propagates(fake: Any, make_client: Any, is_async: bool) -> None:
    """Only a parameter the hook added is dropped and retried; the caller's own is not."""
    client = make_client(is_async)
    tlm_hooks.patch(client)
    fake.push(Reply(status=400, error_param="logprobs"))
    with pytest.raises(openai.BadRequestError) as info:
        await _ask(client, logprobs=True)
    assert info.value.body["param"] == "logprobs"
    assert len(fake.requests) == 1


async def test_other_400_is_not_retried(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client)
    fake.push(Reply(status=400, error_param="temperature"))
    with pytest.raises(openai.BadRequestError):
        await _ask(client, temperature=7)
    assert len(fake.requests) == 1
    fake.push(Reply())
    await _ask(client)
    assert fake.requests[1].body["logprobs"] is True  # the model was not marked as refusing


# -- fail-open / fail-closed -------------------------------------------------------------------


def _broken(request: tlm_hooks.ScoreRequest) -> float:
    raise RuntimeError("judge is down")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_failing_scorer_fails_open(
    fake: Any, make_client: Any, is_async: bool, stream: bool, caplog: Any
) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client, scorer=_broken)
    caplog.set_level(logging.WARNING, logger="tlm_hooks")
    result = await _ask(client, stream=stream)
    if stream:
        chunks = await drain(result, is_async=is_async)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == Reply().text
    else:
        assert result.choices[0].message.content == Reply().text
    meta = result.tlm_metadata
    assert meta["trustworthiness_score"] is None
    assert meta["error"] == {"message": "judge is down", "type": "RuntimeError"}
    warnings = [r for r in caplog.records if r.name == "tlm_hooks" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "judge is down" in warnings[0].getMessage()


async def test_on_error_ignore_logs_no_warning(fake: Any, make_client: Any, is_async: bool, caplog: Any) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client, scorer=_broken, policy=TrustPolicy(on_error="ignore"))
    caplog.set_level(logging.DEBUG, logger="tlm_hooks")
    result = await _ask(client)
    assert result.tlm_metadata["error"]["type"] == "RuntimeError"
    assert not [r for r in caplog.records if r.name == "tlm_hooks" and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_failing_scorer_fails_closed(fake: Any, make_client: Any, is_async: bool, stream: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client, scorer=_broken, policy=TrustPolicy(on_error="raise"))
    with pytest.raises(TrustScoringError) as info:
        result = await _ask(client, stream=stream)
        if stream:
            await drain(result, is_async=is_async)
    assert "judge is down" in str(info.value)
    assert info.value.result is not None
    assert info.value.result.error_type == "RuntimeError"
    assert len(fake.requests) == 1


async def test_scorer_returning_garbage_fails_open(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client, scorer=lambda request: "very trustworthy")
    result = await _ask(client)
    assert result.tlm_metadata["trustworthiness_score"] is None
    assert result.tlm_metadata["error"]["type"] == "TypeError"
    assert "allowed a float" in result.tlm_metadata["error"]["message"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_route_without_backend_metadata(
    fake: Any, make_client: Any, is_async: bool, stream: bool, caplog: Any
) -> None:
    client = make_client(is_async)
    tlm_hooks.route(client)
    caplog.set_level(logging.WARNING, logger="tlm_hooks")
    result = await _ask(client, stream=stream)  # the fake's default reply carries no tlm_metadata
    if stream:
        await drain(result, is_async=is_async)
    meta = result.tlm_metadata
    assert meta["trustworthiness_score"] is None
    assert meta["error"]["type"] == "MissingMetadata"
    assert "no tlm_metadata" in meta["error"]["message"]
    assert any("no tlm_metadata" in r.getMessage() for r in caplog.records)


async def test_route_without_backend_metadata_fail_closed(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.route(client, policy=TrustPolicy(on_error="raise"))
    with pytest.raises(TrustScoringError, match="no tlm_metadata"):
        await _ask(client)


async def test_fallback_calling_the_same_patched_client_is_not_rehooked(
    fake: Any, make_client: Any, is_async: bool
) -> None:
    """Calls made while the policy acts are not hooked again: a custom fallback that asks the
    same (patched) client again must not re-enter the policy (no endless recursion)."""
    client = make_client(is_async)
    inner_results: list[Any] = []

    if is_async:

        async def ask_again(event: Any) -> Any:
            inner = await client.chat.completions.create(model="m", messages=MESSAGES)
            inner_results.append(inner)
            return inner

    else:

        def ask_again(event: Any) -> Any:
            inner = client.chat.completions.create(model="m", messages=MESSAGES)
            inner_results.append(inner)
            return inner

    # every answer is low (score 0.1 < 0.5), so a re-hooked inner call would recurse forever
    scorer = CountingScorer(0.1)
    tlm_hooks.patch(client, scorer=scorer, policy=TrustPolicy(threshold=0.5, on_low_trust=[ask_again]))
    fake.push(Reply(text="first"), Reply(text="second"))
    result = await _ask(client)
    assert len(fake.requests) == 2
    assert len(inner_results) == 1
    assert scorer.calls == 1  # only the outer answer was scored
    assert result is inner_results[0]
    assert result.choices[0].message.content == "second"
    assert result.tlm_metadata["fallbacks"] == ["ask_again"]


def test_messages_given_as_a_generator_reach_server_and_scorer(fake: Any, make_client: Any) -> None:
    client = make_client()
    seen: list[Any] = []
    tlm_hooks.patch(client, scorer=lambda request: seen.append(request) or 0.5)
    result = client.chat.completions.create(model="m", messages=(m for m in MESSAGES))
    assert score_of(result) == 0.5
    assert fake.requests[0].body["messages"] == MESSAGES
    assert [dict(m) for m in seen[0].messages] == MESSAGES
