"""End to end: the real ``openai`` client calls ``responses.create`` (plain and streamed) against
a real ``tlm-hooks serve`` process on the embedded model; and a hooked client scores its own
Responses calls with that server as the model."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import tlm_hooks

sys.path.insert(0, str(Path(__file__).parent.parent / "server"))
from serve_process import ServeProcess  # noqa: E402

pytestmark = pytest.mark.embedded_model

KEY = "sk-responses-embedded"
QUESTION = "What is the capital of France?"
TLM = {"quality_preset": "base", "options": {"log": ["explanation"]}}


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    args = ["--timeout", "300", "--log-level", "warning", "--max-concurrency", "1"]
    with ServeProcess(args, env={"TLM_HOOKS_API_KEYS": KEY}) as running:
        running.warm_up([{"role": "user", "content": QUESTION}], {"authorization": f"Bearer {KEY}"})
        yield running
    assert KEY not in running.output()


def _score(metadata: Any) -> float:
    score = metadata["trustworthiness_score"]
    assert isinstance(score, float) and 0.0 <= score <= 1.0, metadata
    return score


def test_plain_and_streamed_with_extra_body(server: ServeProcess) -> None:
    client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=KEY, max_retries=0, timeout=300)
    plain = client.responses.create(model="smollm2", input=QUESTION, max_output_tokens=16, extra_body=TLM)
    answer = plain.output_text
    assert answer.strip()
    score = _score(plain.tlm_metadata)
    assert plain.tlm_metadata["log"]["explanation"]

    stream = client.responses.create(model="smollm2", input=QUESTION, max_output_tokens=16, stream=True, extra_body=TLM)
    events = list(stream)
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == answer  # greedy: same answer
    assert events[-1].type in ("response.completed", "response.incomplete")
    assert _score(events[-1].response.tlm_metadata) == pytest.approx(score, abs=0.03)


async def test_hooked_async_client_scores_its_own_calls(server: ServeProcess) -> None:
    """Score mode against the embedded model: the hook asks for logprobs with ``include`` and
    scores them itself (the server's own ``tlm_metadata`` is not what the hook reports)."""
    client = openai.AsyncOpenAI(base_url=f"{server.base_url}/api", api_key=KEY, max_retries=0, timeout=300)
    recorded: list[tlm_hooks.ScoreRequest] = []

    def scorer(request: tlm_hooks.ScoreRequest) -> float:
        recorded.append(request)
        return 0.5

    tlm_hooks.patch(client)
    try:
        reply = await client.responses.create(model="smollm2", instructions="Answer in one word.", input=QUESTION, max_output_tokens=8)
        assert reply.output[0].content[0].logprobs  # asked for by the hook, sent by the server
        score = _score(reply.tlm_metadata)
        assert reply.tlm_metadata["log"]["per_component_score"]["token_probability_geometric_mean"] == pytest.approx(score)

        tlm_hooks.patch(client, scorer=scorer)
        stream = await client.responses.create(model="smollm2", input=QUESTION, max_output_tokens=8, stream=True)
        text = "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])
        assert stream.tlm_metadata["trustworthiness_score"] == 0.5
        assert recorded[0].response == text and recorded[0].prompt_lines() == [f"user: {QUESTION}"]
    finally:
        tlm_hooks.unpatch(client)
        await client.close()
