"""A LlamaIndex OpenAILike LLM over the openai SDK, against the loopback fake server: scored
once when both layers are hooked, and routed to a TLM backend. Needs llama-index-llms-openai-like
(installed in .venv-openai2 only: it pins openai<3)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("llama_index.llms.openai_like", reason="llama-index-llms-openai-like is not installed")

from fake_openai import FakeOpenAI, Reply  # noqa: E402
from li_util import CountingScorer, metadata  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage  # noqa: E402
from llama_index.llms.openai_like import OpenAILike  # noqa: E402

import tlm_hooks  # noqa: E402

QUESTION = [ChatMessage(role="user", content="What is 2+2?")]


def make_llm(fake: FakeOpenAI, **kwargs: Any) -> OpenAILike:
    return OpenAILike(
        model="fake-model", api_base=fake.url, api_key="test-key", is_chat_model=True, max_retries=0, **kwargs
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_llm_on_a_patch_all_client_is_scored_once(fake: FakeOpenAI, stream: bool) -> None:
    client_scorer, llm_scorer = CountingScorer(0.2), CountingScorer(0.7)
    tlm_hooks.patch_all(scorer=client_scorer)  # hooks the openai client OpenAILike makes inside
    llm = tlm_hooks.patch(make_llm(fake), scorer=llm_scorer)
    if stream:
        out = llm.stream_chat(list(QUESTION))
        assert "".join(c.delta or "" for c in out) == "The answer is 4."
        response = out.tlm_response
    else:
        response = await llm.achat(list(QUESTION))
    assert llm_scorer.calls == 1 and client_scorer.calls == 0
    assert metadata(response) == {"trustworthiness_score": 0.7}
    assert llm_scorer.requests[0].messages == ({"role": "user", "content": "What is 2+2?"},)
    assert len(fake.requests) == 1  # one HTTP call


def test_llm_alone_on_a_patched_client_is_scored_once_by_the_client_hook(fake: FakeOpenAI) -> None:
    client_scorer = CountingScorer(0.2)
    tlm_hooks.patch_all(scorer=client_scorer)
    response = make_llm(fake).chat(list(QUESTION))
    assert client_scorer.calls == 1
    assert response.raw.tlm_metadata == {"trustworthiness_score": 0.2}  # on the openai completion LlamaIndex kept
    assert "tlm_metadata" not in response.additional_kwargs


def test_default_logprob_scorer_gets_token_logprobs_from_an_openai_llm(fake: FakeOpenAI) -> None:
    fake.push(Reply(text="Four.", logprob=-0.5))
    llm = tlm_hooks.patch(make_llm(fake))  # LogprobScorer: asks for logprobs itself
    response = llm.chat(list(QUESTION))
    assert fake.requests[0].body["logprobs"] is True
    assert metadata(response)["trustworthiness_score"] == pytest.approx(0.6065, abs=1e-3)  # exp(-0.5)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_route_sends_tlm_options_and_reads_the_backends_score(fake: FakeOpenAI, stream: bool) -> None:
    fake.push(Reply(text="Four.", tlm_score=0.91))
    llm = make_llm(fake, additional_kwargs={"user": "u1"})
    tlm_hooks.route(llm, quality_preset="low", options={"log": ["explanation"]})
    if stream:
        out = llm.stream_chat(list(QUESTION), extra_body={"call_key": 2})
        assert "".join(c.delta or "" for c in out) == "Four."
        data = out.tlm_metadata
    else:
        data = metadata(llm.chat(list(QUESTION), extra_body={"call_key": 2}))
    assert data == {"trustworthiness_score": 0.91, "log": {"explanation": "scripted explanation"}}
    body = fake.requests[0].body
    assert body["quality_preset"] == "low" and body["options"] == {"log": ["explanation"]}
    assert body["call_key"] == 2 and body["user"] == "u1"  # the caller's extra_body and the LLM's kwargs are kept


def test_route_refuses_an_llm_whose_own_extra_body_would_replace_ours(fake: FakeOpenAI) -> None:
    llm = make_llm(fake, additional_kwargs={"extra_body": {"user_key": 1}})
    with pytest.raises(tlm_hooks.PatchError, match="additional_kwargs has an 'extra_body'"):
        tlm_hooks.route(llm)
    assert not tlm_hooks.is_patched(llm)


def test_route_policy_acts_on_the_backends_score(fake: FakeOpenAI) -> None:
    fake.push(Reply(text="Five.", tlm_score=0.1))
    llm = tlm_hooks.route(
        make_llm(fake),
        policy=tlm_hooks.TrustPolicy(threshold=0.5, on_low_trust=[tlm_hooks.fallbacks.ReplaceResponse("Unsure.")]),
    )
    response = llm.chat(list(QUESTION))
    assert response.message.content == "Unsure."
    assert metadata(response) == {"trustworthiness_score": 0.1, "fallbacks": ["replace_response"]}
