"""The real ``AzureOpenAI`` / ``AsyncAzureOpenAI`` clients, unchanged, against a real
``tlm-hooks serve`` process on the embedded model: plain, streamed, TLM options in
``extra_body``, and ``tlm_hooks.route`` on an Azure client."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from serve_process import ServeProcess

import tlm_hooks

pytestmark = pytest.mark.embedded_model
openai = pytest.importorskip("openai")

KEY = "sk-azure-embedded-key"
VERSION = "2024-10-21"
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
BASE = {"quality_preset": "base", "options": {"log": ["explanation"]}}


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    args = ["--timeout", "300", "--log-level", "warning", "--max-concurrency", "1"]
    with ServeProcess(args, env={"TLM_HOOKS_API_KEYS": KEY}) as running:
        running.warm_up(QUESTION, {"api-key": KEY})
        yield running
    assert KEY not in running.output()


def _azure(endpoint: str, **kwargs: Any) -> Any:
    return openai.AzureOpenAI(
        azure_endpoint=endpoint, api_key=KEY, api_version=VERSION, max_retries=0, timeout=300, **kwargs
    )


def _score(metadata: Any) -> float:
    score = metadata["trustworthiness_score"]
    assert isinstance(score, float) and 0.0 <= score <= 1.0, metadata
    return score


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_azure_client_plain_and_streamed(server: ServeProcess, prefix: str) -> None:
    client = _azure(server.base_url + prefix)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, max_tokens=16, extra_body=BASE)
    answer = reply.choices[0].message.content
    assert answer.strip()
    assert reply.model == server.served_model  # the model that answered the "gpt-4o-mini" deployment, said so
    score = _score(reply.tlm_metadata)
    assert reply.tlm_metadata["log"]["explanation"]

    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, max_tokens=16, extra_body=BASE, stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer  # greedy: same answer
    assert _score(chunks[-1].tlm_metadata) == pytest.approx(score, abs=0.03)


def test_azure_client_with_the_low_preset(server: ServeProcess) -> None:
    client = _azure(server.base_url + "/api", azure_deployment="gpt-4o-mini")
    extra = {"quality_preset": "low", "options": {"log": ["explanation"], "max_tokens": 16}}
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, max_tokens=16, extra_body=extra)
    _score(reply.tlm_metadata)
    components = reply.tlm_metadata["log"]["per_component_score"]
    assert "self_reflection" in components  # the engine ran at the asked preset, not just token probabilities
    assert reply.tlm_metadata["log"]["explanation"]


def test_async_azure_client_plain_and_streamed(server: ServeProcess) -> None:
    async def run() -> tuple[Any, list[Any]]:
        async with openai.AsyncAzureOpenAI(
            azure_endpoint=server.base_url, api_key=KEY, api_version=VERSION, max_retries=0, timeout=300
        ) as client:
            reply = await client.chat.completions.create(
                model="gpt-4o-mini", messages=QUESTION, max_tokens=16, extra_body=BASE
            )
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=QUESTION, max_tokens=16, extra_body=BASE, stream=True
            )
            return reply, [chunk async for chunk in stream]

    reply, chunks = asyncio.run(run())
    assert reply.tlm_metadata["log"]["explanation"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply.choices[0].message.content
    assert _score(chunks[-1].tlm_metadata) == pytest.approx(_score(reply.tlm_metadata), abs=0.03)


def test_route_on_an_azure_client(server: ServeProcess) -> None:
    seen: list[float] = []

    def record(event: Any) -> None:
        seen.append(event.result.trustworthiness_score)

    client = tlm_hooks.route(
        _azure(server.base_url),
        quality_preset="base",
        options={"log": ["explanation"]},
        policy=tlm_hooks.TrustPolicy(threshold=1.0, on_low_trust=[record]),  # every score below 1 is "low"
    )
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, max_tokens=16)
    assert reply.tlm_metadata["log"]["explanation"]  # route asked for it; the server sent it
    assert seen == [_score(reply.tlm_metadata)]  # the policy acted on the server's score
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, max_tokens=16, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == reply.choices[0].message.content
    assert stream.tlm_metadata["log"]["explanation"] and len(seen) == 2


def test_a_wrong_key_is_the_sdks_authentication_error(server: ServeProcess) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=server.base_url, api_key="sk-wrong", api_version=VERSION, max_retries=0, timeout=30
    )
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, max_tokens=4)
