"""`trust_scored` and `with_tlm_options`; and a sync client called inside a running loop."""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any

import pytest
from fake_openai import Reply
from hookutil import MESSAGES, CountingScorer, metadata_of, prob
from openai.types.chat import ChatCompletion

import tlm_hooks
from tlm_hooks import FunctionScorer, TrustedText, TrustPolicy, fallbacks, trust_scored, with_tlm_options

# -- trust_scored on str-returning functions ---------------------------------------------------


def test_sync_function_returning_str_positional_args() -> None:
    scorer = CountingScorer(0.72)
    calls: list[tuple[Any, ...]] = []

    @trust_scored(scorer=scorer)
    def answer(question: str, style: str = "short") -> str:
        calls.append((question, style))
        return f"Answer to {question} ({style})"

    result = answer("What is 2+2?", "long")
    assert calls == [("What is 2+2?", "long")]  # called exactly once, positional args intact
    assert isinstance(result, str) and isinstance(result, TrustedText)
    assert result == "Answer to What is 2+2? (long)"
    assert result.tlm_metadata["trustworthiness_score"] == 0.72
    request = scorer.requests[0]
    assert request.prompt == "What is 2+2?"  # the first str argument
    assert request.messages is None
    assert request.response == "Answer to What is 2+2? (long)"
    assert answer.__name__ == "answer"


async def test_async_function_returning_str() -> None:
    scorer = CountingScorer(0.4)

    @trust_scored(scorer=scorer)
    async def answer(n: int, prompt: str) -> str:
        await asyncio.sleep(0)
        return f"{prompt} -> {n}"

    result = await answer(3, prompt="count")
    assert isinstance(result, str) and result == "count -> 3"
    assert result.tlm_metadata["trustworthiness_score"] == 0.4
    assert scorer.requests[0].prompt == "count"  # `prompt` wins over other arguments


def test_prompt_from_messages_argument() -> None:
    scorer = CountingScorer(0.9)

    @trust_scored(scorer=scorer)
    def chat(model: str, messages: list[dict[str, Any]]) -> str:
        return "4"

    result = chat("some-model", MESSAGES)
    assert result.tlm_metadata["trustworthiness_score"] == 0.9
    request = scorer.requests[0]
    assert [dict(m) for m in request.messages] == MESSAGES
    assert request.prompt is None
    assert request.model == "some-model"


def test_prompt_from_custom_extractor_and_missing_prompt() -> None:
    scorer = CountingScorer(0.9)

    @trust_scored(scorer=scorer, prompt_from=lambda args: f"ticket #{args['ticket_id']}")
    def summarize(ticket_id: int) -> str:
        return "summary"

    assert summarize(17).tlm_metadata["trustworthiness_score"] == 0.9
    assert scorer.requests[0].prompt == "ticket #17"

    @trust_scored(scorer=scorer)
    def no_prompt(ticket_id: int) -> str:
        return "summary"

    result = no_prompt(5)  # fail-open: the answer comes back with the error
    assert result == "summary"
    assert result.tlm_metadata["trustworthiness_score"] is None
    assert "prompt" in result.tlm_metadata["error"]["message"]


def test_str_result_with_fallback() -> None:
    @trust_scored(
        scorer=lambda request: 0.1, policy=TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.AppendWarning(" [?]")])
    )
    def answer(question: str) -> str:
        return "maybe"

    result = answer("q")
    assert result == "maybe [?]"
    assert result.tlm_metadata["fallbacks"] == ["append_warning"]


def test_function_returning_completion_from_unpatched_client(fake: Any, make_client: Any) -> None:
    client = make_client()

    @trust_scored()
    def ask(question: str) -> ChatCompletion:
        return client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": question}], logprobs=True
        )

    fake.push(Reply(text="Four.", logprob=-0.35))
    result = ask("What is 2+2?")
    assert type(result) is ChatCompletion
    assert result.choices[0].message.content == "Four."
    assert result.tlm_metadata["trustworthiness_score"] == pytest.approx(prob(-0.35))
    assert not tlm_hooks.is_patched(client)
    assert len(fake.requests) == 1
    # the client itself stays unhooked
    assert metadata_of(client.chat.completions.create(model="m", messages=MESSAGES)) is None


async def test_async_function_returning_completion(fake: Any, make_client: Any) -> None:
    client = make_client(True)
    scorer = CountingScorer(0.66)

    @trust_scored(scorer=scorer)
    async def ask(messages: list[dict[str, Any]]) -> ChatCompletion:
        return await client.chat.completions.create(model="m", messages=messages)

    result = await ask(MESSAGES)
    assert type(result) is ChatCompletion
    assert result.tlm_metadata["trustworthiness_score"] == 0.66
    assert scorer.requests[0].response == Reply().text
    assert [dict(m) for m in scorer.requests[0].messages] == MESSAGES


# -- with_tlm_options -----------------------------------------------------------------------------


def test_with_tlm_options_merges_without_mutating(fake: Any, make_client: Any) -> None:
    client = make_client()

    @with_tlm_options(quality_preset="low", options={"model": "opt-model", "max_tokens": 50})
    def create(**kwargs: Any) -> Any:
        return client.chat.completions.create(**kwargs)

    extra_body = {"options": {"max_tokens": 9, "log": ["explanation"]}, "quality_preset": "high"}
    before = copy.deepcopy(extra_body)
    create(model="m", messages=MESSAGES, extra_body=extra_body)
    create(model="m", messages=MESSAGES)
    assert extra_body == before
    first, second = fake.requests[0].body, fake.requests[1].body
    assert first["quality_preset"] == "high"  # the caller wins
    assert first["options"] == {"model": "opt-model", "max_tokens": 9, "log": ["explanation"]}
    assert second["quality_preset"] == "low"
    assert second["options"] == {"model": "opt-model", "max_tokens": 50}


async def test_with_tlm_options_on_async_function(fake: Any, make_client: Any) -> None:
    client = make_client(True)

    @with_tlm_options(task="classification", options={"constrain_outputs": ["yes", "no"]})
    async def create(**kwargs: Any) -> Any:
        return await client.chat.completions.create(**kwargs)

    extra_body = {"options": {"log": ["explanation"]}}
    before = copy.deepcopy(extra_body)
    result = await create(model="m", messages=MESSAGES, extra_body=extra_body)
    assert type(result) is ChatCompletion
    assert extra_body == before
    body = fake.requests[0].body
    assert body["task"] == "classification"
    assert body["options"] == {"constrain_outputs": ["yes", "no"], "log": ["explanation"]}


def test_with_tlm_options_validates_at_decoration() -> None:
    with pytest.raises(tlm_hooks.InvalidOptionError, match="quality_preset"):
        with_tlm_options(quality_preset="ultra")  # type: ignore[arg-type]


# -- sync path inside a running event loop ------------------------------------------------------


async def test_sync_client_inside_running_loop_with_async_scorer(fake: Any, make_client: Any) -> None:
    client = make_client()
    seen_threads: list[int] = []

    async def judge(request: tlm_hooks.ScoreRequest) -> float:
        await asyncio.sleep(0)
        seen_threads.append(threading.get_ident())
        return 0.3 if request.response == "Four." else 0.0

    tlm_hooks.patch(client, scorer=FunctionScorer(judge))
    asyncio.get_running_loop()  # we are inside a running loop
    fake.push(Reply(text="Four."), Reply(text="Four."))
    result = client.chat.completions.create(model="m", messages=MESSAGES)
    assert type(result) is ChatCompletion
    assert result.tlm_metadata["trustworthiness_score"] == 0.3
    assert "error" not in result.tlm_metadata
    # a stream too
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    list(stream)
    assert stream.tlm_metadata["trustworthiness_score"] == 0.3
    assert len(seen_threads) == 2


async def test_sync_decorated_function_inside_running_loop_with_async_scorer() -> None:
    async def judge(request: tlm_hooks.ScoreRequest) -> float:
        return 0.61

    @trust_scored(scorer=judge)
    def answer(question: str) -> str:
        return "yes"

    result = answer("q?")
    assert result.tlm_metadata == {"trustworthiness_score": 0.61}


def test_trusted_text_pickles_and_copies() -> None:
    import pickle

    @trust_scored(scorer=lambda request: 0.77)
    def answer(question: str) -> str:
        return "yes"

    result = answer("q?")
    for clone in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result), copy.copy(result)):
        assert isinstance(clone, TrustedText) and clone == "yes"
        assert clone.tlm_metadata == {"trustworthiness_score": 0.77}
