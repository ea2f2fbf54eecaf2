"""End to end: real openai clients, patched and routed, against the real server on loopback
serving the real embedded model."""

from __future__ import annotations

import math
from collections.abc import Iterator

import openai
import pytest

import tlm_hooks
from tlm_hooks import fallbacks

pytestmark = pytest.mark.embedded_model

QUESTION = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    from tlm_hooks.local import get_default_model
    from tlm_hooks.server.app import create_app
    from tlm_hooks.server.runner import ServerThread

    model = get_default_model()
    with ServerThread(create_app(model, scorer=tlm_hooks.LogprobScorer())) as running:
        yield running.base_url, model.name


def _expected(response: object) -> float:
    tokens = response.choices[0].logprobs.content  # type: ignore[attr-defined]
    return math.exp(sum(t.logprob for t in tokens) / len(tokens))


def test_patched_client_scores_real_logprobs(server: tuple[str, str]) -> None:
    base, model = server
    client = tlm_hooks.patch(openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0))
    response = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=16)
    assert type(response) is openai.types.chat.ChatCompletion
    assert response.choices[0].logprobs is not None  # the hook asked for them
    assert response.tlm_metadata["trustworthiness_score"] == pytest.approx(_expected(response))


async def test_async_stream_scored_once_at_the_end(server: tuple[str, str]) -> None:
    base, model = server
    client = tlm_hooks.patch(openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0))
    stream = await client.chat.completions.create(model=model, messages=QUESTION, max_tokens=16, stream=True)
    pieces = []
    async for chunk in stream:
        assert stream.tlm_metadata is None  # scored only once the stream has ended
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    assert "".join(pieces) == stream.tlm_response.choices[0].message.content
    assert stream.tlm_metadata["trustworthiness_score"] == pytest.approx(_expected(stream.tlm_response))
    await client.close()


def test_routed_client_reads_the_servers_metadata_and_acts(server: tuple[str, str]) -> None:
    base, model = server
    client = tlm_hooks.route(
        openai.OpenAI(base_url=f"{base}/api", api_key="x", max_retries=0),
        quality_preset="base",
        options={"log": ["explanation"]},
        policy=tlm_hooks.TrustPolicy(threshold=1.0, on_low_trust=[fallbacks.ReplaceResponse("held back")]),
    )
    response = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=16)
    assert response.choices[0].message.content == "held back"
    metadata = response.tlm_metadata
    assert 0.0 <= metadata["trustworthiness_score"] < 1.0
    assert "Token probability" in metadata["log"]["explanation"]
    assert metadata["fallbacks"] == ["replace_response"]
