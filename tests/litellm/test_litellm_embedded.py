"""The real litellm, through its OpenAI-compatible provider, against a real ``tlm-hooks serve``
process on the embedded model: route mode (TLM options in ``extra_body``, the server's
``tlm_metadata`` read back) plain and streamed, via a Router, and score mode on the server's
token logprobs."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest

import tlm_hooks

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))
from serve_process import ServeProcess  # noqa: E402

pytestmark = pytest.mark.embedded_model

KEY = "sk-litellm-embedded-key"
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    args = ["--timeout", "300", "--log-level", "warning", "--max-concurrency", "1"]
    with ServeProcess(args, env={"TLM_HOOKS_API_KEYS": KEY}) as running:
        running.warm_up(QUESTION, {"authorization": f"Bearer {KEY}"})
        yield running


def _provider(server: ServeProcess) -> dict[str, Any]:
    return {
        "model": f"openai/{server.served_model}",
        "api_base": f"{server.base_url}/v1",
        "api_key": KEY,
        "timeout": 300,
    }


def _score(metadata: Any) -> float:
    score = metadata["trustworthiness_score"]
    assert isinstance(score, float) and 0.0 <= score <= 1.0, metadata
    return score


def test_route_plain_and_streamed(server: ServeProcess) -> None:
    tlm_hooks.route(litellm, quality_preset="base", options={"log": ["explanation"]})
    reply = litellm.completion(**_provider(server), messages=QUESTION, max_tokens=16)
    answer = reply.choices[0].message.content
    assert answer.strip()
    score = _score(reply.tlm_metadata)
    assert reply.tlm_metadata["log"]["explanation"]
    assert reply._hidden_params["tlm_metadata"] == reply.tlm_metadata

    stream = litellm.completion(**_provider(server), messages=QUESTION, max_tokens=16, stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer  # greedy: same answer
    assert _score(stream.tlm_metadata) == pytest.approx(score, abs=0.03)


async def test_route_through_a_router_async_stream(server: ServeProcess) -> None:
    router = litellm.Router(model_list=[{"model_name": "smol", "litellm_params": _provider(server)}], num_retries=0)
    tlm_hooks.route(router, quality_preset="base")
    stream = await router.acompletion(model="smol", messages=QUESTION, max_tokens=16, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.strip()
    _score(stream.tlm_metadata)
    assert stream.tlm_response.choices[0].message.content == text


def test_score_mode_on_the_servers_logprobs(server: ServeProcess) -> None:
    tlm_hooks.patch(litellm)  # LogprobScorer: asks the server for logprobs, scores them here
    reply = litellm.completion(**_provider(server), messages=QUESTION, max_tokens=16)
    tokens = reply.choices[0].logprobs.content
    assert tokens
    expected = math.exp(sum(t.logprob for t in tokens) / len(tokens))
    assert _score(reply.tlm_metadata) == pytest.approx(expected)
