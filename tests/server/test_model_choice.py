"""Per-request model choice: ``options.model`` / ``options.model_provider`` pick the model that
generates AND judges; what a request may pick is the operator's decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from fake_openai import FakeOpenAI
from server_fakes import FakeModel
from starlette.testclient import TestClient

from tlm_hooks.llm.base import Generation
from tlm_hooks.options import TLMOptions
from tlm_hooks.server import DefaultScorers, UpstreamModel, create_app
from tlm_hooks.server.errors import ApiError
from tlm_hooks.server.models import BackendChatModel, ModelPolicy
from tlm_hooks.types import TokenLogprob

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
CHAT = "/v1/chat/completions"


def _upstream_app(fake: FakeOpenAI, **kwargs: Any) -> TestClient:
    model = UpstreamModel(fake.url, **kwargs)
    return TestClient(create_app(model, scorer=DefaultScorers(), allowed_models=()), raise_server_exceptions=False)


def test_upstream_judge_asks_for_the_requests_model(fake: FakeOpenAI) -> None:
    # no --upstream-model: the engine's judge calls must name the request's model too
    client = _upstream_app(fake)
    reply = client.post(CHAT, json={"model": "gpt-x", "messages": QUESTION, "quality_preset": "low"})
    assert reply.status_code == 200, reply.text
    metadata = reply.json()["tlm_metadata"]
    assert "error" not in metadata and 0.0 <= metadata["trustworthiness_score"] <= 1.0
    assert len(fake.requests) > 1  # generation plus judge calls
    assert {seen.body["model"] for seen in fake.requests} == {"gpt-x"}


def test_options_model_generates_and_judges_upstream(fake: FakeOpenAI) -> None:
    client = _upstream_app(fake)
    body = {"model": "gpt-x", "messages": QUESTION, "quality_preset": "low", "options": {"model": "bigger-model"}}
    reply = client.post(CHAT, json=body)
    assert reply.status_code == 200, reply.text
    assert len(fake.requests) > 1
    assert {seen.body["model"] for seen in fake.requests} == {"bigger-model"}


def test_fixed_upstream_model_answers_another_options_model_and_says_so(fake: FakeOpenAI) -> None:
    client = _upstream_app(fake, model="served")
    reply = client.post(CHAT, json={"messages": QUESTION, "quality_preset": "base", "options": {"model": "other"}})
    assert reply.status_code == 200, reply.text
    assert {seen.body["model"] for seen in fake.requests} == {"served"}
    assert reply.headers["x-tlm-hooks-model"] == "served"
    assert reply.json()["tlm_metadata"]["log"]["warnings"] == [
        "options.model 'other' is not served here; answered by 'served'"
    ]
    ok = client.post(CHAT, json={"messages": QUESTION, "quality_preset": "base", "options": {"model": "served"}})
    assert ok.status_code == 200 and "warnings" not in ok.json()["tlm_metadata"].get("log", {})
    assert ok.headers["x-tlm-hooks-model"] == "served"


def test_strict_models_refuses_a_model_not_served(fake: FakeOpenAI) -> None:
    model = UpstreamModel(fake.url, model="served")
    client = TestClient(create_app(model, scorer=DefaultScorers(), strict_models=True), raise_server_exceptions=False)
    refused = client.post(CHAT, json={"messages": QUESTION, "options": {"model": "other"}})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == "options.model" and "'served'" in error["message"] and "'other'" in error["message"]
    assert fake.requests == []  # refused before any model call
    ok = client.post(CHAT, json={"messages": QUESTION, "options": {"model": "served"}})
    assert ok.status_code == 200 and fake.requests[-1].body["model"] == "served"


def test_local_model_answers_any_model_name_and_says_which() -> None:
    model = FakeModel()
    client = TestClient(create_app(model, scorer=DefaultScorers()), raise_server_exceptions=False)
    body = {"messages": QUESTION, "quality_preset": "base", "options": {"model": "gpt-4.1-mini"}}
    reply = client.post(CHAT, json=body)
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-tlm-hooks-model"] == "fake-model" and reply.json()["model"] == "fake-model"
    assert reply.json()["tlm_metadata"]["log"]["warnings"] == [
        "options.model 'gpt-4.1-mini' is not served here; answered by 'fake-model'"
    ]
    assert "model" not in model.calls[-1]  # a local model is not asked for a name
    streamed = client.post(CHAT, json={**body, "stream": True})
    assert streamed.headers["x-tlm-hooks-model"] == "fake-model"
    assert "is not served here; answered by 'fake-model'" in streamed.text
    for name in ("fake-model", "local"):
        reply = client.post(CHAT, json={"messages": QUESTION, "quality_preset": "base", "options": {"model": name}})
        assert reply.status_code == 200, reply.text
        assert "warnings" not in reply.json()["tlm_metadata"].get("log", {})
    strict = TestClient(create_app(model, scorer=DefaultScorers(), strict_models=True), raise_server_exceptions=False)
    refused = strict.post(CHAT, json=body)
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert "'gpt-4.1-mini'" in message and "'fake-model'" in message and "--allow-model" in message
    assert "x-tlm-hooks-model" not in refused.headers


def test_model_alias_answers_with_its_target_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    class StubLiteLLM:
        def __init__(self, model: str) -> None:
            self.name = model

    monkeypatch.setattr("tlm_hooks.llm.litellm_backend.LiteLLMBackend", StubLiteLLM)
    policy = ModelPolicy(allowed=("openai/*",), aliases={"gpt-4.1-mini": "openai/gpt-4.1-mini", "fast": "local"})
    policy.check_aliases(FakeModel())
    choice = policy.choose(FakeModel(), TLMOptions(options={"model": "gpt-4.1-mini"}), None)
    assert isinstance(choice.model, BackendChatModel) and choice.answered_by == "openai/gpt-4.1-mini"
    assert choice.warning is not None and "--model-alias" in choice.warning and "'gpt-4.1-mini'" in choice.warning
    local = policy.choose(FakeModel(), TLMOptions(options={"model": "fast"}), None)
    assert isinstance(local.model, FakeModel) and local.answered_by == "fake-model" and local.asked == "fast"
    with pytest.raises(ValueError, match="--model-alias x=anthropic/claude"):
        ModelPolicy(allowed=("openai/*",), aliases={"x": "anthropic/claude"}).check_aliases(FakeModel())
    with pytest.raises(ValueError, match="--model-alias"):
        create_app(FakeModel(), scorer=DefaultScorers(), model_aliases={"x": "not-served"})


def test_alias_on_an_upstream_that_forwards_names(fake: FakeOpenAI) -> None:
    client = TestClient(
        create_app(UpstreamModel(fake.url), scorer=DefaultScorers(), model_aliases={"gpt-4.1-mini": "llama-3"}),
        raise_server_exceptions=False,
    )
    reply = client.post(
        CHAT, json={"messages": QUESTION, "quality_preset": "base", "options": {"model": "gpt-4.1-mini"}}
    )
    assert reply.status_code == 200, reply.text
    assert fake.requests[-1].body["model"] == "llama-3" and reply.headers["x-tlm-hooks-model"] == "llama-3"
    other = client.post(CHAT, json={"messages": QUESTION, "quality_preset": "base", "options": {"model": "x-model"}})
    assert fake.requests[-1].body["model"] == "x-model" and "warnings" not in other.json()["tlm_metadata"].get(
        "log", {}
    )


def test_substitution_is_reported_by_the_rest_endpoints() -> None:
    client = TestClient(create_app(FakeModel(), scorer=DefaultScorers()), raise_server_exceptions=False)
    options = {"model": "gpt-4o-mini"}
    expected = "options.model 'gpt-4o-mini' is not served here; answered by 'fake-model'"
    prompt = client.post(
        "/api/v0/trustworthy_llm/prompt", json={"prompt": "2+2?", "quality": "base", "options": options}
    )
    assert prompt.status_code == 200, prompt.text
    assert prompt.headers["x-tlm-hooks-model"] == "fake-model" and prompt.json()["log"]["warnings"] == [expected]
    rag = client.post(
        "/api/v1/rag_trustworthy_llm/score",
        json={"query": "2+2?", "context": "2+2=4", "response": {"response": "4"}, "quality": "base", "evals": [],
              "options": options},
    )  # fmt: skip
    assert rag.status_code == 200, rag.text
    assert rag.json()["trustworthiness"]["log"]["warnings"] == [expected]


def test_allowed_patterns_go_to_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    class StubLiteLLM:
        def __init__(self, model: str) -> None:
            self.name = model

    monkeypatch.setattr("tlm_hooks.llm.litellm_backend.LiteLLMBackend", StubLiteLLM)
    policy = ModelPolicy(allowed=("openai/gpt-4o*",))
    choice = policy.choose(FakeModel(), TLMOptions(options={"model": "openai/gpt-4o-mini"}), None)
    assert isinstance(choice.model, BackendChatModel) and isinstance(choice.model.backend, StubLiteLLM)
    assert choice.model.name == "openai/gpt-4o-mini"
    assert choice.model is policy.choose(FakeModel(), TLMOptions(options={"model": "openai/gpt-4o-mini"}), None).model
    for i in range(40):  # any name the pattern admits: the cache stays bounded
        policy.choose(FakeModel(), TLMOptions(options={"model": f"openai/gpt-4o-{i}"}), None)
    assert len(policy._cache) == 16 and "openai/gpt-4o-39" in policy._cache
    assert (
        policy.choose(FakeModel(), TLMOptions(options={"model": "anthropic/claude"}), None).asked == "anthropic/claude"
    )
    with pytest.raises(ApiError) as info:
        ModelPolicy(allowed=("openai/gpt-4o*",), strict=True).choose(
            FakeModel(), TLMOptions(options={"model": "anthropic/claude"}), None
        )
    assert "'openai/gpt-4o*'" in info.value.message


def test_model_provider_generates_at_the_provider_when_allowed(fake: FakeOpenAI) -> None:
    model = FakeModel()
    app = create_app(model, scorer=DefaultScorers(allow_model_provider=True))
    client = TestClient(app, raise_server_exceptions=False)
    options = {"model": "provider-model", "model_provider": {"api_base": fake.url, "api_key": "sk-p"}}
    reply = client.post(CHAT, json={"messages": QUESTION, "quality_preset": "low", "options": options})
    assert reply.status_code == 200, reply.text
    assert model.calls == []  # the server's own model did nothing
    assert len(fake.requests) > 1 and {seen.body["model"] for seen in fake.requests} == {"provider-model"}
    assert reply.json()["choices"][0]["message"]["content"] == "The answer is 4."
    streamed = client.post(CHAT, json={"messages": QUESTION, "stream": True, "options": options})
    assert streamed.status_code == 200 and '"model": "provider-model"' in streamed.text
    assert fake.requests[-1].body["model"] == "provider-model" and "tlm_metadata" in streamed.text


class ScriptedBackend:
    name = "scripted"

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def acomplete(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> list[Generation]:
        self.calls.append(kwargs)
        logprobs = (TokenLogprob("Four", -0.2, (("Four", -0.2), ("Five", -2.0))), TokenLogprob(".", -0.01))
        return [Generation("Four.", logprobs, "stop", prompt_tokens=7, completion_tokens=2)]


def test_backend_chat_model_speaks_openai_shapes_through_the_server() -> None:
    backend = ScriptedBackend()
    client = TestClient(create_app(BackendChatModel(backend), scorer=DefaultScorers()), raise_server_exceptions=False)
    reply = client.post(CHAT, json={"messages": QUESTION, "logprobs": True, "max_tokens": 9, "stop": "\n"})
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["choices"][0]["message"]["content"] == "Four."
    assert [e["token"] for e in data["choices"][0]["logprobs"]["content"]] == ["Four", "."]
    assert data["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    assert backend.calls[-1]["max_tokens"] == 9 and backend.calls[-1]["stop"] == ["\n"]
    assert 0.0 < data["tlm_metadata"]["trustworthiness_score"] <= 1.0
    streamed = client.post(CHAT, json={"messages": QUESTION, "stream": True, "stream_options": {"include_usage": True}})
    events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and '"Four."' in events[0] and '"usage"' in events[-2]
    assert "tlm_metadata" in events[-2]
