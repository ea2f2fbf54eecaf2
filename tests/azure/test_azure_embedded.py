"""The real azure-ai-inference client, hooked by tlm-hooks, against the real server (`tlm-hooks
serve` in-process) generating and scoring with the real embedded model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.embedded_model

inference = pytest.importorskip("azure.ai.inference", reason="azure-ai-inference is not installed")

from azure.ai.inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient  # noqa: E402
from azure.ai.inference.models import ChatCompletions, SystemMessage, UserMessage  # noqa: E402
from azure.core.credentials import AzureKeyCredential  # noqa: E402

import tlm_hooks  # noqa: E402

KEY = "sk-azure-embedded"
QUESTION = [SystemMessage("Answer in a few words."), UserMessage("What is the capital of France?")]
# set on the client itself: the hook must send these along with route()'s options
CLIENT_EXTRAS = {"options": {"num_self_reflections": 1, "num_consistency_samples": 0}}


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    from tlm_hooks.llm.local import LocalBackend
    from tlm_hooks.local import LocalModel
    from tlm_hooks.server import DefaultScorers, Limits, ServerThread, create_app

    model = LocalModel()
    app = create_app(
        model, scorer=DefaultScorers(judge=LocalBackend(model)), api_keys=[KEY], limits=Limits(timeout=300)
    )
    with ServerThread(app) as running:
        yield running
    model.close()


def _score(metadata: Any) -> float:
    score = metadata["trustworthiness_score"]
    assert isinstance(score, float) and 0.0 <= score <= 1.0, metadata
    return score


def _client(server: Any) -> Any:
    return inference.ChatCompletionsClient(
        endpoint=f"{server.base_url}/api", credential=AzureKeyCredential(KEY), model_extras=CLIENT_EXTRAS, retry_total=0
    )


def test_routed_client_reads_the_servers_scores(server: Any) -> None:
    client = tlm_hooks.route(_client(server), quality_preset="low", options={"log": ["explanation"]})
    try:
        response = client.complete(model="smollm2", messages=QUESTION, max_tokens=16)
        assert type(response) is ChatCompletions and response.choices[0].message.content.strip()
        metadata = response.tlm_metadata
        _score(metadata)
        assert metadata["log"]["explanation"]  # route()'s `log` option reached the server
        components = metadata["log"]["per_component_score"]
        assert "self_reflection" in components  # the client's own num_self_reflections=1 did too
        assert "consistency" not in components  # ... and num_consistency_samples=0
        assert response["tlm_metadata"] is metadata and response.as_dict()["tlm_metadata"] == metadata

        stream = client.complete(model="smollm2", messages=QUESTION, max_tokens=16, stream=True)
        text = "".join(u.choices[0].delta.content or "" for u in stream if u.choices)
        assert text == response.choices[0].message.content  # greedy: the same answer
        assert _score(stream.tlm_metadata) == pytest.approx(metadata["trustworthiness_score"], abs=0.05)

        raw = client.complete(body={"model": "smollm2", "messages": [m.as_dict() for m in QUESTION], "max_tokens": 16})
        assert raw.choices[0].message.content == text
        _score(raw.tlm_metadata)  # a raw body went with the options and the pass-through header
    finally:
        tlm_hooks.unpatch(client)
        client.close()


def test_patched_client_scores_with_logprobs_it_asked_for(server: Any) -> None:
    client = tlm_hooks.patch(_client(server))  # default scorer: the answer's own token probabilities
    try:
        response = client.complete(model="smollm2", messages=QUESTION, max_tokens=16)
        score = _score(response.tlm_metadata)
        assert "error" not in response.tlm_metadata
        assert response.tlm_metadata["log"]["per_component_score"]["token_probability_geometric_mean"] == score
    finally:
        tlm_hooks.unpatch(client)
        client.close()


async def test_routed_async_stream(server: Any) -> None:
    client = AsyncChatCompletionsClient(endpoint=f"{server.base_url}/api", credential=AzureKeyCredential(KEY))
    tlm_hooks.route(client, quality_preset="base", options={"log": ["explanation"]})
    try:
        stream = await client.complete(model="smollm2", messages=QUESTION, max_tokens=16, stream=True)
        text = "".join([u.choices[0].delta.content or "" async for u in stream if u.choices])
        assert text.strip()
        _score(stream.tlm_metadata)
        assert stream.tlm_metadata["log"]["explanation"]
        assert stream.tlm_response.choices[0].message.content == text
    finally:
        tlm_hooks.unpatch(client)
        await client.close()
