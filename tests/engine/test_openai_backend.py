"""OpenAICompatibleBackend over real loopback HTTP (tests/fake_openai.py): logprobs, n>1,
retries with Retry-After, timeouts, and the hooked client as its own judge."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest
from fake_openai import Reply

import tlm_hooks
from tlm_hooks import TLMScorer
from tlm_hooks.errors import JudgeTimeoutError
from tlm_hooks.llm import AdaptiveLimiter, OpenAICompatibleBackend, RetryPolicy, metered

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]
FAST = RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.02, max_retry_after=1.0)


def backend(fake: Any, **kwargs: Any) -> OpenAICompatibleBackend:
    kwargs.setdefault("retry", FAST)
    return OpenAICompatibleBackend(model="judge-model", base_url=fake.url, api_key="k", **kwargs)


async def test_text_logprobs_and_usage(fake: Any) -> None:
    fake.push(Reply(text="The answer is 4", logprob=-0.5))
    with metered() as usage:
        [gen] = await backend(fake).acomplete(MESSAGES, logprobs=True, top_logprobs=3, max_tokens=9, stop=["\n"])
    assert gen.text == "The answer is 4" and gen.finish_reason == "stop"
    assert [t.token for t in gen.logprobs or ()] == ["The", " answer", " is", " 4"]
    assert all(t.logprob == -0.5 for t in gen.logprobs or ())
    body = fake.requests[0].body
    assert body["model"] == "judge-model" and body["logprobs"] is True and body["top_logprobs"] == 3
    assert body["max_tokens"] == 9 and body["stop"] == ["\n"] and "n" not in body
    assert (usage.calls, usage.prompt_tokens, usage.completion_tokens) == (1, 5, 5)


@pytest.mark.parametrize("make", [openai.OpenAI, openai.AsyncOpenAI], ids=["sync_client", "async_client"])
async def test_from_an_existing_client(fake: Any, make: Any) -> None:
    client = make(base_url=fake.url, api_key="k")
    gens = await OpenAICompatibleBackend.from_client(client, "m2").acomplete(MESSAGES)
    assert gens[0].text == "The answer is 4." and fake.requests[0].body["model"] == "m2"


async def test_n_in_one_request_when_the_server_honours_it(fake: Any) -> None:
    fake.honour_n = True
    fake.push(Reply(text="4", choices=["four", "4.0"]))
    judge = backend(fake)
    with metered() as usage:
        gens = await judge.acomplete(MESSAGES, n=3, temperature=1.0)
    assert [g.text for g in gens] == ["4", "four", "4.0"]
    assert len(fake.requests) == 1 and fake.requests[0].body["n"] == 3
    assert judge.n_honoured is True and usage.calls == 1


async def test_short_n_reply_falls_back_to_parallel_seeds_and_is_remembered(fake: Any) -> None:
    judge = backend(fake)
    gens = await judge.acomplete(MESSAGES, n=3, temperature=1.0, seed=10)
    assert len(gens) == 3 and judge.n_honoured is False
    first, *rest = fake.requests
    assert first.body["n"] == 3 and all("n" not in r.body for r in rest)
    assert sorted(r.body["seed"] for r in fake.requests) == [10, 11, 12]
    fake.reset()
    await judge.acomplete(MESSAGES, n=3, temperature=1.0)
    assert len(fake.requests) == 3 and all("n" not in r.body for r in fake.requests)
    assert len({r.body["seed"] for r in fake.requests}) == 3


async def test_n_rejected_with_400_falls_back(fake: Any) -> None:
    fake.push(Reply(status=400, error_param="n"))
    judge = backend(fake)
    gens = await judge.acomplete(MESSAGES, n=2, temperature=1.0)
    assert len(gens) == 2 and len(fake.requests) == 3 and judge.n_honoured is False


async def test_429_waits_for_retry_after_then_succeeds(fake: Any) -> None:
    fake.push(Reply(status=429, headers={"Retry-After": "0.3"}), Reply(text="ok"))
    limiter = AdaptiveLimiter(8)
    started = time.perf_counter()
    with metered() as usage:
        gens = await backend(fake, limiter=limiter).acomplete(MESSAGES)
    assert gens[0].text == "ok" and len(fake.requests) == 2
    assert time.perf_counter() - started >= 0.3
    assert usage.retries == 1 and usage.calls == 1
    assert limiter.limit == 4  # the 429 halved the concurrency limit


async def test_retry_after_is_capped(fake: Any) -> None:
    fake.push(Reply(status=429, headers={"Retry-After": "3600"}), Reply(text="ok"))
    policy = RetryPolicy(max_retries=2, max_retry_after=0.2)
    started = time.perf_counter()
    gens = await backend(fake, retry=policy).acomplete(MESSAGES)
    assert gens[0].text == "ok" and time.perf_counter() - started < 2.0


async def test_5xx_retries_are_bounded(fake: Any) -> None:
    fake.push(*[Reply(status=503) for _ in range(10)])
    with pytest.raises(openai.InternalServerError):
        await backend(fake, retry=RetryPolicy(max_retries=2, base_delay=0.01)).acomplete(MESSAGES)
    assert len(fake.requests) == 3


async def test_client_errors_are_not_retried(fake: Any) -> None:
    fake.push(Reply(status=401))
    with pytest.raises(openai.AuthenticationError):
        await backend(fake).acomplete(MESSAGES)
    assert len(fake.requests) == 1


async def test_per_call_timeout_with_bounded_retries(fake: Any) -> None:
    fake.push(Reply(delay=1.5), Reply(delay=1.5))
    judge = backend(fake, timeout=0.3, retry=RetryPolicy(max_retries=1, base_delay=0.01))
    started = time.perf_counter()
    with pytest.raises(JudgeTimeoutError) as info:
        await judge.acomplete(MESSAGES)
    assert time.perf_counter() - started < 1.5 and len(fake.requests) == 2
    assert isinstance(info.value.__cause__, openai.APITimeoutError) and fake.url in str(info.value)
    assert "'judge-model'" in str(info.value) and "2 attempts" in str(info.value)


def test_the_hooked_client_is_its_own_judge_and_is_not_scored_again(fake: Any) -> None:
    client = openai.OpenAI(base_url=fake.url, api_key="k")
    tlm_hooks.patch(client, scorer=TLMScorer("medium"))
    fake.push(Reply(text="4", logprob=-0.1))
    response = client.chat.completions.create(model="app-model", messages=MESSAGES)
    meta = response.tlm_metadata
    assert meta["trustworthiness_score"] is not None, meta
    assert {r.body["model"] for r in fake.requests} == {"app-model"}
    # 1 app call + 2 reflections + 4 samples (this server ignores n: 1 short + 3 more); hooked
    # judge calls would each have been scored again and multiplied this
    assert len(fake.requests) == 1 + 2 + 1 + 3
    assert meta["log"]["per_component_score"]["llm_calls"] == 6


async def test_a_hooked_async_client_is_its_own_judge(fake: Any) -> None:
    client = openai.AsyncOpenAI(base_url=fake.url, api_key="k")
    tlm_hooks.patch(client, scorer=TLMScorer("low"))
    fake.honour_n = True
    response = await client.chat.completions.create(model="app-model", messages=MESSAGES)
    assert response.tlm_metadata["trustworthiness_score"] is not None, response.tlm_metadata
    assert len(fake.requests) == 1 + 1 + 1  # app call, one reflection, one sampling request with n=3
    assert fake.requests[-1].body.get("n") == 3 or fake.requests[-2].body.get("n") == 3
