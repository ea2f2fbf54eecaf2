"""The real server with the real embedded model, driven by the real openai and azure-ai-inference clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tlm_hooks.llm.local import LocalBackend
from tlm_hooks.server import DefaultScorers, Limits, ServerThread, create_app

pytestmark = pytest.mark.embedded_model

KEY = "sk-embedded-integration"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
TLM = {"quality_preset": "base", "options": {"log": ["explanation"]}}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    from tlm_hooks.local import LocalModel

    model = LocalModel()
    app = create_app(model, scorer=DefaultScorers(judge=LocalBackend(model)), api_keys=[KEY], limits=Limits(timeout=300))
    with ServerThread(app) as running:
        yield running
    model.close()


def _score(metadata: Any) -> float:
    score = metadata["trustworthiness_score"]
    assert isinstance(score, float) and 0.0 <= score <= 1.0, metadata
    return score


def test_openai_client_plain_streamed_and_extra_body(server: ServerThread) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.base_url}/api", api_key=KEY, max_retries=0, timeout=120)
    plain = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=16)
    assert plain.choices[0].message.content.strip()
    score = _score(plain.tlm_metadata)

    routed = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=16, extra_body=TLM)
    assert routed.choices[0].message.content == plain.choices[0].message.content  # greedy: same answer
    assert _score(routed.tlm_metadata) == pytest.approx(score, abs=0.03)
    assert routed.tlm_metadata["log"]["explanation"]

    stream = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=16, stream=True, extra_body=TLM
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == plain.choices[0].message.content
    assert _score(chunks[-1].tlm_metadata) == pytest.approx(score, abs=0.03)


@pytest.mark.parametrize("base", ["/v1", "/api/v1/openai_trustworthy_llm"])
def test_openai_client_on_the_other_base_paths(server: ServerThread, base: str) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.base_url + base, api_key=KEY, max_retries=0, timeout=120)
    reply = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=8, extra_body=TLM)
    assert reply.choices[0].message.content.strip()
    _score(reply.tlm_metadata)


def test_openai_client_with_a_tlm_preset(server: ServerThread) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.base_url}/api", api_key=KEY, max_retries=0, timeout=300)
    extra = {"quality_preset": "low", "options": {"log": ["explanation"], "max_tokens": 24}}
    reply = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=24, extra_body=extra)
    _score(reply.tlm_metadata)
    assert reply.tlm_metadata["log"]["explanation"]


@pytest.mark.parametrize("path", ["", "/api"])
def test_azure_ai_inference_client_with_model_extras(server: ServerThread, path: str) -> None:
    inference = pytest.importorskip("azure.ai.inference", reason="azure-ai-inference is not installed")
    from azure.core.credentials import AzureKeyCredential

    client = inference.ChatCompletionsClient(endpoint=server.base_url + path, credential=AzureKeyCredential(KEY))
    response = client.complete(model="smollm2", messages=QUESTION, max_tokens=16, model_extras=TLM)
    assert response.choices[0].message.content.strip()
    # azure's ChatCompletions is a mapping: keys it does not model are read by subscript
    assert response["tlm_metadata"]["log"]["explanation"]
    _score(response["tlm_metadata"])
    streamed = list(client.complete(model="smollm2", messages=QUESTION, max_tokens=16, model_extras=TLM, stream=True))
    text = "".join(u.choices[0].delta.content or "" for u in streamed if u.choices)
    assert text == response.choices[0].message.content
    _score(streamed[-1]["tlm_metadata"])
    assert client.get_model_info().model_name == "smollm2-135m-instruct"
    with pytest.raises(Exception) as info:  # noqa: B017 - azure raises HttpResponseError
        inference.ChatCompletionsClient(
            endpoint=server.base_url + path, credential=AzureKeyCredential("wrong")
        ).complete(messages=QUESTION)
    assert getattr(info.value, "status_code", None) == 401
    client.close()


def test_rest_endpoints(server: ServerThread) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=300) as http:
        prompt = http.post(
            "/api/v0/trustworthy_llm/prompt",
            json={
                "task": "default",
                "quality": "base",
                "prompt": "What's the first month of the year?",
                "options": {"log": ["explanation"], "max_tokens": 24},
            },
        ).json()
        assert prompt["response"].strip() and 0 <= prompt["confidence_score"] <= 1 and prompt["log"]["explanation"]

        confidence = http.post(
            "/api/v0/trustworthy_llm/get_confidence_score",
            json={"quality": "base", "prompt": "What is 2+2?", "response": "5", "options": {"max_tokens": 16}},
        ).json()
        assert set(confidence) >= {"confidence_score"}
        context = "The first month of the year is January."
        rag = {
            "context": context,
            "query": "First month?",
            "prompt": f"Context: {context}\nQuestion: First month?",
            "quality": "base",
        }
        generated = http.post(
            "/api/v1/rag_trustworthy_llm/generate", json={**rag, "options": {"max_tokens": 24}}
        ).json()
        assert generated["response"].strip() and 0 <= generated["trustworthiness"]["score"] <= 1
        assert 0 <= generated["response_groundedness"]["score"] <= 1 and "note" not in generated
        scored = http.post(
            "/api/v1/rag_trustworthy_llm/score", json={**rag, "response": {"response": "February"}}
        ).json()
        assert "score" in scored["trustworthiness"] and 0 <= scored["context_sufficiency"]["score"] <= 1

        completion = http.post(
            "/v1/chat/completions", json={"messages": QUESTION, "max_tokens": 24, "logprobs": True}
        ).json()
        again = http.post("/api/chat/score", json={"messages": QUESTION, "response": completion}).json()
        assert again["tlm_metadata"]["trustworthiness_score"] == pytest.approx(
            completion["tlm_metadata"]["trustworthiness_score"]
        )


def test_openai_client_asks_for_several_choices(server: ServerThread) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=KEY, max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=16, n=3, temperature=1.0, seed=4, logprobs=True
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert len({c.message.content for c in reply.choices}) > 1  # drawn separately
    for choice in reply.choices:
        assert "".join(t.token for t in choice.logprobs.content) == choice.message.content
    assert reply.usage.completion_tokens == sum(len(c.logprobs.content) for c in reply.choices)
    assert "n=3: tlm_metadata scores the first choice" in reply.tlm_metadata["log"]["warnings"]
    _score(reply.tlm_metadata)


async def test_the_engine_judging_over_http_gets_its_samples_in_one_request(server: ServerThread) -> None:
    from tlm_hooks import ScoreRequest, TLMScorer
    from tlm_hooks.llm import OpenAICompatibleBackend

    judge = OpenAICompatibleBackend(model="smollm2", base_url=f"{server.base_url}/v1", api_key=KEY, timeout=120.0)
    scorer = TLMScorer("low", judge=judge)  # 1 reflection, 3 samples
    result = await scorer.ascore(ScoreRequest(messages=tuple(QUESTION), response="Paris."))
    assert result.ok, result.error
    assert judge.n_honoured is True
    assert result.components["llm_calls"] == 2  # the reflection and one request for the 3 samples
