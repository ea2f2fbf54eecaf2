"""The fallbacks that call a model again, on hooked litellm calls: `Regenerate` asks litellm
again with the call's own arguments, `Escalate` asks a stronger model (another model name, or
another Router). Real litellm against the loopback fake; the scores are the default
LogprobScorer's, from the token logprobs the fake answers with."""

from __future__ import annotations

from typing import Any

import litellm
import pytest
from fake_openai import Reply
from litellm.types.utils import ModelResponse
from litutil import MESSAGES, call, drain, prob, text_of_chunks

import tlm_hooks
from tlm_hooks import TrustPolicy, fallbacks

LOW, MID, GOOD, POOR = -3.0, -1.0, -0.3, -2.0  # token logprobs: scores ~0.05, 0.37, 0.74, 0.14
THRESHOLD = 0.9  # above every score here: each fallback runs its course

ENTRIES = pytest.mark.parametrize("entry", ["litellm", "router"])
ASYNC = pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


def _hook(entry: str, router: Any, *handlers: Any) -> None:
    tlm_hooks.patch(
        router if entry == "router" else litellm, policy=TrustPolicy(THRESHOLD, on_low_trust=list(handlers))
    )


async def _ask(entry: str, is_async: bool, provider: Any, router: Any, stream: bool) -> tuple[str, Any]:
    """The text the app received and the final answer: the same response on a plain call; on a
    stream, the streamed text and the fallback's response (once it is done)."""
    result = await call(entry, is_async, provider, router, **({"stream": True} if stream else {}))
    if not stream:
        assert type(result) is ModelResponse
        return result.choices[0].message.content, result
    received = text_of_chunks(await drain(result, is_async=is_async))
    if is_async:
        assert await result.wait_fallbacks(60)
    final = result.tlm_fallback_response
    assert type(final) is ModelResponse
    assert final.tlm_metadata == result.tlm_metadata
    return received, final


@pytest.fixture
def strong(fake: Any) -> Any:
    """A second Router whose group ``grp`` is served by the stronger model ``big``."""
    params = {"model": "openai/big", "api_base": fake.url, "api_key": "test-key"}
    return litellm.Router(model_list=[{"model_name": "grp", "litellm_params": params}], num_retries=0)


@pytest.fixture
def two_groups(fake: Any) -> Any:
    """A Router with the usual group ``grp`` (model ``m``) and a stronger group ``big`` (model ``big``)."""
    deployments = [
        {
            "model_name": name,
            "litellm_params": {"model": f"openai/{model}", "api_base": fake.url, "api_key": "test-key"},
        }
        for name, model in (("grp", "m"), ("big", "big"))
    ]
    return litellm.Router(model_list=deployments, num_retries=0)


@ENTRIES
@STREAM
@ASYNC
async def test_regenerate_asks_litellm_again_and_keeps_the_best(
    fake: Any, provider: Any, router: Any, entry: str, is_async: bool, stream: bool
) -> None:
    _hook(entry, router, fallbacks.Regenerate(attempts=3, temperature=1.0))
    fake.push(
        Reply(text="Maybe 5.", logprob=LOW),
        Reply(text="Four, I think.", logprob=MID),
        Reply(text="It is 4.", logprob=GOOD),
        Reply(text="Could be 3.", logprob=POOR),
    )
    received, final = await _ask(entry, is_async, provider, router, stream)
    if stream:  # its text had reached the app before the score
        assert received == "Maybe 5."
    assert final.choices[0].message.content == "It is 4."
    assert final.tlm_metadata["trustworthiness_score"] == pytest.approx(prob(GOOD))
    assert final.tlm_metadata["fallbacks"] == ["regenerate"]
    assert final._hidden_params["tlm_metadata"] == final.tlm_metadata  # where litellm users look

    assert len(fake.requests) == 4  # the call, then three attempts (none reached the threshold)
    first, *again = (seen.body for seen in fake.requests)
    assert bool(first.get("stream")) is stream
    for body in again:  # the same request, not streamed, with the overrides
        assert body["model"] == "m" and body["messages"] == MESSAGES and body["logprobs"] is True
        assert not body.get("stream") and body["temperature"] == 1.0
    assert first.get("temperature") is None


@ENTRIES
@ASYNC
async def test_regenerate_keeps_the_original_when_nothing_is_better(
    fake: Any, provider: Any, router: Any, entry: str, is_async: bool
) -> None:
    _hook(entry, router, fallbacks.Regenerate(attempts=2))
    fake.push(Reply(text="first", logprob=MID), Reply(text="second", logprob=POOR), Reply(text="third", logprob=LOW))
    received, final = await _ask(entry, is_async, provider, router, stream=False)
    assert received == "first"
    assert final.tlm_metadata["trustworthiness_score"] == pytest.approx(prob(MID))
    assert final.tlm_metadata["fallbacks"] == ["regenerate"]  # it ran, and kept the first answer
    assert len(fake.requests) == 3


@ENTRIES
@STREAM
@ASYNC
async def test_escalate_to_a_stronger_model(
    fake: Any, provider: Any, two_groups: Any, entry: str, is_async: bool, stream: bool
) -> None:
    # the module is called with a provider model name, a Router with a model group name
    _hook(entry, two_groups, fallbacks.Escalate(model="big" if entry == "router" else "openai/big"))
    fake.push(Reply(text="Maybe 5.", logprob=LOW), Reply(text="Exactly 4.", logprob=GOOD))
    received, final = await _ask(entry, is_async, provider, two_groups, stream)
    assert received == ("Maybe 5." if stream else "Exactly 4.")
    assert [seen.body["model"] for seen in fake.requests] == ["m", "big"]
    escalated = fake.requests[1].body
    assert not escalated.get("stream") and escalated["messages"] == MESSAGES
    assert final.choices[0].message.content == "Exactly 4."
    assert final.model.endswith("big")
    assert final.tlm_metadata["trustworthiness_score"] == pytest.approx(prob(GOOD))
    assert final.tlm_metadata["fallbacks"] == ["escalate"]


@STREAM
@ASYNC
async def test_escalate_to_another_router(
    fake: Any, provider: Any, router: Any, strong: Any, is_async: bool, stream: bool
) -> None:
    _hook("router", router, fallbacks.Escalate(client=strong))
    fake.push(Reply(text="Maybe 5.", logprob=LOW), Reply(text="Exactly 4.", logprob=GOOD))
    received, final = await _ask("router", is_async, provider, router, stream)
    assert received == ("Maybe 5." if stream else "Exactly 4.")
    assert [seen.body["model"] for seen in fake.requests] == ["m", "big"]  # the same group, on the strong Router
    assert final.choices[0].message.content == "Exactly 4."
    assert final.tlm_metadata["trustworthiness_score"] == pytest.approx(prob(GOOD))
    assert final.tlm_metadata["fallbacks"] == ["escalate"]
    assert not tlm_hooks.is_patched(strong)  # only the hooked Router's calls are scored


@ASYNC
async def test_a_litellm_call_escalates_to_a_router(fake: Any, provider: Any, strong: Any, is_async: bool) -> None:
    """From the module to a Router: the call's arguments go along, the Router's group name replaces the model."""
    _hook("litellm", strong, fallbacks.Escalate(client=strong, model="grp"))
    fake.push(Reply(text="Maybe 5.", logprob=LOW), Reply(text="Exactly 4.", logprob=GOOD))
    received, final = await _ask("litellm", is_async, provider, strong, stream=False)
    assert received == "Exactly 4."
    assert [seen.body["model"] for seen in fake.requests] == ["m", "big"]
    assert final.choices[0].message.content == "Exactly 4."
    assert final.tlm_metadata["fallbacks"] == ["escalate"]


@ASYNC
async def test_escalate_refuses_a_client_litellm_cannot_call(
    fake: Any, provider: Any, router: Any, is_async: bool
) -> None:
    """An OpenAI client is not a litellm "client": the fallback fails, is logged and skipped (fail-open)."""
    import openai

    _hook("litellm", router, fallbacks.Escalate(client=openai.OpenAI(api_key="k", base_url=fake.url)))
    fake.push(Reply(text="Maybe 5.", logprob=LOW))
    received, final = await _ask("litellm", is_async, provider, router, stream=False)
    assert received == "Maybe 5."
    assert len(fake.requests) == 1
    assert "fallbacks" not in final.tlm_metadata


@ASYNC
async def test_a_router_call_escalates_to_the_litellm_module(
    fake: Any, provider: Any, router: Any, is_async: bool
) -> None:
    """From a Router to the module, itself hooked: the overrides say where the stronger model is, and
    the escalated call is neither hooked nor scored a second time (one more request, one score)."""
    strong = {"model": "openai/big", "api_base": fake.url, "api_key": "test-key"}
    module_scores: list[str] = []  # the module's own hook: it must not see the escalated call
    tlm_hooks.patch(litellm, scorer=lambda request: module_scores.append(request.response) or 0.5)
    _hook("router", router, fallbacks.Escalate(client=litellm, **strong))
    fake.push(Reply(text="Maybe 5.", logprob=LOW), Reply(text="Exactly 4.", logprob=GOOD))
    received, final = await _ask("router", is_async, provider, router, stream=False)
    assert received == "Exactly 4."
    assert [seen.body["model"] for seen in fake.requests] == ["m", "big"]
    assert final.tlm_metadata["trustworthiness_score"] == pytest.approx(prob(GOOD))
    assert final.tlm_metadata["fallbacks"] == ["escalate"]
    assert module_scores == []


async def test_the_litellm_judge_is_offered_tools_and_its_calls_are_read_back(fake: Any, provider: Any) -> None:
    from tlm_hooks.llm import LiteLLMBackend

    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    call = {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    backend = LiteLLMBackend(provider["model"], api_base=provider["api_base"], api_key=provider["api_key"])
    assert backend.native_tools is True
    fake.push(Reply(tool_call=call))
    generations = await backend.acomplete(MESSAGES, temperature=0.7, tools=[tool])
    assert fake.requests[0].body["tools"] == [tool]
    assert generations[0].tool_calls == (call,) and generations[0].text == ""
