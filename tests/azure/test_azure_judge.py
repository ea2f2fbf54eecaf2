"""The open engine (`TLMScorer`) scoring an Azure AI Inference client's answer: the judge is the
same Azure client (`AzureInferenceBackend`), called unhooked through the SDK, with SDK retries off."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("azure.ai.inference")

from azure.core.exceptions import HttpResponseError  # noqa: E402
from azutil import MESSAGES, resolve  # noqa: E402
from fake_openai import Reply  # noqa: E402

import tlm_hooks  # noqa: E402
from tlm_hooks.llm.azure_inference import AzureInferenceBackend, is_azure_inference_client  # noqa: E402
from tlm_hooks.llm.resolve import resolve_backend  # noqa: E402
from tlm_hooks.llm.retry import RetryPolicy  # noqa: E402
from tlm_hooks.options import TLMOptions  # noqa: E402
from tlm_hooks.scorers.tlm import TLMScorer  # noqa: E402


def test_resolve_picks_the_azure_client_as_judge(make_client: Any) -> None:
    sync_client, async_client = make_client(False, model="client-model"), make_client(True)
    judge = resolve_backend(TLMOptions(), None, sync_client, "call-model")
    assert isinstance(judge, AzureInferenceBackend) and judge.model == "call-model"
    judge = resolve_backend(TLMOptions(), None, async_client, None)
    assert isinstance(judge, AzureInferenceBackend) and judge.model is None  # the endpoint's own model
    judge = resolve_backend(TLMOptions(options={"model": "judge-model"}), None, sync_client, "call-model")
    assert isinstance(judge, AzureInferenceBackend) and judge.model == "judge-model"
    assert AzureInferenceBackend(sync_client).model == "client-model"
    assert is_azure_inference_client(sync_client) and not is_azure_inference_client(object())
    with pytest.raises(TypeError, match="ChatCompletionsClient"):
        AzureInferenceBackend(object())


async def test_tlm_scorer_judges_with_the_hooked_azure_client(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async, model_extras={"client_flag": 1})
    scorer = TLMScorer("base", options={"num_self_reflections": 1, "log": ["explanation"]})
    tlm_hooks.patch(client, scorer=scorer)
    fake.push(Reply(text="Paris.", logprob=-0.1), Reply(text="A", logprob=-0.05))
    response = await resolve(client.complete(messages=MESSAGES, model="gpt-x"))

    assert len(fake.requests) == 2  # the answer, then one reflection (not hooked: not scored again)
    judge_call = fake.requests[1]
    assert judge_call.path.startswith("/v1/chat/completions?api-version=")
    assert judge_call.body["model"] == "gpt-x"  # the model the app asked for
    assert judge_call.body["logprobs"] is True and judge_call.body["top_logprobs"] == 10
    assert judge_call.body["client_flag"] == 1  # the client's own model_extras kept
    assert judge_call.headers["extra-parameters"] == "pass-through"
    assert "Paris." in judge_call.body["messages"][0]["content"]
    metadata = response.tlm_metadata
    assert 0.0 <= metadata["trustworthiness_score"] <= 1.0
    components = metadata["log"]["per_component_score"]
    assert {"token_probability", "self_reflection"} <= set(components)
    assert components["llm_calls"] == 1  # the judge's one request was counted
    assert metadata["log"]["explanation"]


async def test_n_answers_come_from_parallel_requests_when_n_is_not_honoured(
    fake: Any, make_client: Any, is_async: bool
) -> None:
    backend = AzureInferenceBackend(make_client(is_async), model="m")
    fake.push(Reply(text="one"), Reply(text="two"), Reply(text="three"), Reply(text="four"))
    generations = await backend.acomplete(MESSAGES, n=3, temperature=0.7, max_tokens=20, seed=5)
    assert len(generations) == 3
    first, *rest = fake.requests
    assert first.body["n"] == 3 and first.body["seed"] == 5 and first.body["max_tokens"] == 20
    assert sorted(seen.body["seed"] for seen in rest) == [6, 7] and all("n" not in seen.body for seen in rest)
    assert [g.text for g in generations][0] == "one"


async def test_our_retry_loop_replaces_the_sdks(fake: Any, make_client: Any, is_async: bool) -> None:
    from azure.ai.inference import ChatCompletionsClient
    from azure.ai.inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient
    from azure.core.credentials import AzureKeyCredential

    cls = AsyncChatCompletionsClient if is_async else ChatCompletionsClient
    client = cls(endpoint=fake.url, credential=AzureKeyCredential("k"))  # the SDK's default: 10 retries
    backend = AzureInferenceBackend(client, retry=RetryPolicy(max_retries=1, base_delay=0.01))
    try:
        fake.push(Reply(status=503), Reply(status=503), Reply(text="late"))
        with pytest.raises(HttpResponseError) as info:
            await backend.acomplete(MESSAGES)
        assert info.value.status_code == 503 and len(fake.requests) == 2  # 1 try + 1 retry, none by the SDK
        fake.reset()
        fake.push(Reply(status=503), Reply(text="recovered"))
        assert (await backend.acomplete(MESSAGES))[0].text == "recovered"
        assert len(fake.requests) == 2
    finally:
        await resolve(client.close())


async def test_the_judge_is_offered_tools_and_its_calls_are_read_back(
    fake: Any, make_client: Any, is_async: bool
) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    call = {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    backend = AzureInferenceBackend(make_client(is_async), model="m")
    assert backend.native_tools is True
    fake.push(Reply(tool_call=call))
    generations = await backend.acomplete(MESSAGES, temperature=0.7, tools=[tool])
    assert fake.requests[0].body["tools"] == [tool]
    assert generations[0].tool_calls == (call,) and generations[0].text == ""
