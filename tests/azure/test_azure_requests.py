"""What a hooked Azure AI Inference call sends: `model_extras` merged (the client's, the call's,
ours), raw bodies (dict, bytes, file, positional) with the pass-through header, logprobs asked for
and dropped when refused, SDK message objects read for scoring, and the caller's objects untouched."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest

pytest.importorskip("azure.ai.inference")

from azure.ai.inference.models import (  # noqa: E402
    AssistantMessage,
    ChatCompletionsToolDefinition,
    FunctionDefinition,
    SystemMessage,
    TextContentItem,
    ToolMessage,
    UserMessage,
)
from azure.core.exceptions import HttpResponseError  # noqa: E402
from azutil import MESSAGES, CountingScorer, drain, metadata_of, prob, resolve, score_of  # noqa: E402
from fake_openai import Reply  # noqa: E402

import tlm_hooks  # noqa: E402
from tlm_hooks.adapters.azure import ADAPTER  # noqa: E402
from tlm_hooks.errors import PatchError, TrustScoringError  # noqa: E402

ROUTE = {"quality_preset": "low", "options": {"num_self_reflections": 2, "log": ["per_component_score"]}}


async def test_route_merges_client_call_and_route_model_extras(fake: Any, make_client: Any, is_async: bool) -> None:
    client_extras = {"options": {"max_tokens": 64, "log": ["explanation"]}, "client_flag": 1, "shared": "client"}
    client = make_client(is_async, model_extras=client_extras)
    tlm_hooks.route(client, quality_preset=ROUTE["quality_preset"], options=ROUTE["options"])
    call_extras = {"quality_preset": "high", "shared": "call", "options": {"num_self_reflections": 1}}
    before = copy.deepcopy((client_extras, call_extras))
    fake.push(Reply(tlm_score=0.61))
    response = await resolve(client.complete(messages=MESSAGES, model_extras=call_extras))

    sent = fake.requests[0]
    assert sent.headers["extra-parameters"] == "pass-through"
    assert sent.body["quality_preset"] == "high"  # the call's keys win over ours
    assert sent.body["shared"] == "call"  # ... and over the client's
    assert sent.body["client_flag"] == 1  # the client's own are not dropped (the SDK alone would)
    assert sent.body["options"] == {"num_self_reflections": 1, "log": ["explanation"], "max_tokens": 64}
    assert score_of(response) == 0.61
    assert (client_extras, call_extras) == before


async def test_route_keeps_the_client_level_extras_when_the_call_has_none(
    fake: Any, make_client: Any, is_async: bool
) -> None:
    client = make_client(is_async, model_extras={"options": {"log": ["explanation"]}, "quality_preset": "best"})
    tlm_hooks.route(client, quality_preset="low", options={"max_tokens": 32})
    fake.push(Reply(tlm_score=0.5))
    response = await resolve(client.complete(messages=MESSAGES))
    body = fake.requests[0].body
    assert body["quality_preset"] == "best"  # the client's own setting wins over route()'s
    assert body["options"] == {"max_tokens": 32, "log": ["explanation"]}
    assert response.tlm_metadata["log"]["explanation"] == "scripted explanation"


@pytest.mark.parametrize("form", ["dict", "bytes", "file", "positional"])
async def test_route_with_a_raw_body_merges_into_a_copy_and_sets_the_header(
    fake: Any, make_client: Any, is_async: bool, form: str
) -> None:
    client = make_client(is_async, model_extras={"client_flag": 1})  # the SDK ignores these with a raw body
    tlm_hooks.route(client, **ROUTE)
    body = {"messages": MESSAGES, "model": "m", "quality_preset": "base", "options": {"log": ["explanation"]}}
    original = copy.deepcopy(body)
    headers = {"x-trace": "abc"}
    raw: Any = {
        "dict": body,
        "positional": body,
        "bytes": json.dumps(body).encode(),
        "file": io.BytesIO(json.dumps(body).encode()),
    }[form]
    fake.push(Reply(tlm_score=0.44))
    if form == "positional":
        response = await resolve(client.complete(raw, headers=headers))
    else:
        response = await resolve(client.complete(body=raw, headers=headers))

    sent = fake.requests[0]
    assert sent.headers["extra-parameters"] == "pass-through"  # the SDK sets it only for model_extras
    assert sent.headers["x-trace"] == "abc"
    assert sent.body["quality_preset"] == "base"  # the caller's body wins
    assert sent.body["options"] == {"num_self_reflections": 2, "log": ["explanation"]}
    assert "client_flag" not in sent.body  # a raw body is the whole payload, as without the hook
    assert score_of(response) == 0.44 and response.tlm_metadata["log"]["explanation"] == "scripted explanation"
    assert body == original and headers == {"x-trace": "abc"}


async def test_route_keeps_the_callers_own_extra_parameters_header(fake: Any, make_client: Any) -> None:
    client = make_client()
    tlm_hooks.route(client, quality_preset="low")
    fake.push(Reply(tlm_score=0.5))
    client.complete(body={"messages": MESSAGES}, headers={"Extra-Parameters": "drop"})
    assert fake.requests[0].headers["extra-parameters"] == "drop"


def test_an_unreadable_raw_body_passes_through_untouched() -> None:
    for raw in (b"\x00not json", b"[1, 2]"):
        new, added = ADAPTER.prepare_kwargs({"body": raw}, client=None, route_body={"quality_preset": "low"}, add_logprobs=True)
        assert new["body"] is raw and not added
        assert new["headers"] == {"extra-parameters": "pass-through"}
        with pytest.raises(ValueError, match="not a JSON object"):
            ADAPTER.score_request(new, None, None)


async def test_score_mode_asks_for_logprobs_in_model_extras_keeping_the_clients(
    fake: Any, make_client: Any, is_async: bool
) -> None:
    client = make_client(is_async, model_extras={"safe_mode": True})
    tlm_hooks.patch(client)
    fake.push(Reply(logprob=-0.2))
    response = await resolve(client.complete(messages=MESSAGES))
    sent = fake.requests[0]
    assert sent.body["logprobs"] is True and sent.body["safe_mode"] is True
    assert sent.headers["extra-parameters"] == "pass-through"
    assert score_of(response) == pytest.approx(prob(-0.2))


async def test_score_mode_with_a_raw_body_asks_for_logprobs_without_the_header(
    fake: Any, make_client: Any, is_async: bool
) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client)
    body = {"messages": MESSAGES}
    fake.push(Reply(logprob=-0.3))
    response = await resolve(client.complete(body=body))
    sent = fake.requests[0]
    assert sent.body == {"messages": MESSAGES, "logprobs": True}
    assert "extra-parameters" not in sent.headers  # the caller's request mode is not changed
    assert score_of(response) == pytest.approx(prob(-0.3))
    assert body == {"messages": MESSAGES}


@pytest.mark.parametrize("form", ["keywords", "body"])
async def test_refused_logprobs_are_dropped_and_not_asked_again(
    fake: Any, make_client: Any, is_async: bool, form: str
) -> None:
    client = make_client(is_async)  # no model name: the refusal is remembered for the client
    tlm_hooks.patch(client)
    call = {"messages": MESSAGES} if form == "keywords" else {"body": {"messages": MESSAGES}}
    fake.push(Reply(status=422, error_param="logprobs"), Reply(text="first"), Reply(text="second"))
    first = await resolve(client.complete(**call))
    assert first.choices[0].message.content == "first"
    assert [("logprobs" in seen.body) for seen in fake.requests] == [True, False]
    assert first.tlm_metadata["error"]["type"] == "MissingLogprobs"  # reported, not made up
    second = await resolve(client.complete(**call))
    assert second.choices[0].message.content == "second"
    assert len(fake.requests) == 3 and "logprobs" not in fake.requests[2].body
    if form == "keywords":
        assert "extra-parameters" not in fake.requests[2].headers  # no model_extras left to send


async def test_other_api_errors_are_not_retried(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client)
    fake.push(Reply(status=422, error_param="temperature"))
    with pytest.raises(HttpResponseError, match="temperature"):
        await resolve(client.complete(messages=MESSAGES, temperature=9.0))
    assert len(fake.requests) == 1


async def test_without_request_logprobs_the_request_is_what_the_sdk_sends(
    fake: Any, make_client: Any, is_async: bool
) -> None:
    plain = make_client(is_async, model_extras={"client_flag": 1})
    await resolve(plain.complete(messages=MESSAGES, model="m", temperature=0.5))
    hooked = make_client(is_async, model_extras={"client_flag": 1})
    tlm_hooks.patch(hooked, scorer=tlm_hooks.LogprobScorer(request_logprobs=False))
    response = await resolve(hooked.complete(messages=MESSAGES, model="m", temperature=0.5))
    unhooked_seen, hooked_seen = fake.requests
    assert hooked_seen.body == unhooked_seen.body
    assert hooked_seen.headers.get("extra-parameters") == unhooked_seen.headers.get("extra-parameters")
    assert response.tlm_metadata["error"]["type"] == "MissingLogprobs"


async def test_sdk_message_objects_and_tools_become_plain_score_requests(
    fake: Any, make_client: Any, is_async: bool
) -> None:
    client = make_client(is_async, model="client-default-model")
    scorer = CountingScorer(0.66)
    tlm_hooks.patch(client, scorer=scorer)
    tool = ChatCompletionsToolDefinition(function=FunctionDefinition(name="add", parameters={"type": "object"}))
    messages = [
        SystemMessage("Be brief."),
        UserMessage([TextContentItem(text="What is 2+2?")]),
        AssistantMessage(content="Let me add."),
        ToolMessage("4", tool_call_id="call-1"),
        {"role": "user", "content": "So?"},
    ]
    response = await resolve(client.complete(messages=iter(messages), tools=[tool]))  # an iterator: read once
    assert score_of(response) == 0.66
    request = scorer.requests[0]
    assert request.messages == (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
        {"role": "assistant", "content": "Let me add."},
        {"role": "tool", "content": "4", "tool_call_id": "call-1"},
        {"role": "user", "content": "So?"},
    )
    assert all(type(m) is dict for m in request.messages)
    assert json.dumps(request.messages)  # plain JSON, no SDK objects
    assert request.tools == ({"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}},)
    assert request.model == "client-default-model"  # the client's default model, as the SDK sends it
    assert request.response == "The answer is 4."
    assert request.prompt_text().startswith("system: Be brief.\nuser: What is 2+2?")
    assert len(fake.requests[0].body["messages"]) == 5  # the SDK still got every message


async def test_a_file_body_is_read_once_for_both_the_sdk_and_the_scorer(
    fake: Any, make_client: Any, is_async: bool
) -> None:
    client = make_client(is_async)
    scorer = CountingScorer(0.5)
    tlm_hooks.patch(client, scorer=scorer)
    await resolve(client.complete(body=io.BytesIO(json.dumps({"messages": MESSAGES}).encode())))
    assert fake.requests[0].body == {"messages": MESSAGES}
    assert scorer.requests[0].messages == tuple(MESSAGES)


async def test_arguments_are_never_mutated(fake: Any, make_client: Any, is_async: bool) -> None:
    messages = [SystemMessage("Be brief."), {"role": "user", "content": "Hi"}]
    extras = {"options": {"log": ["explanation"]}}
    headers = {"x-a": "1"}
    body = {"messages": [{"role": "user", "content": "Hi"}], "stream": True, "options": {"log": []}}
    snapshot = copy.deepcopy((messages[1], extras, headers, body))
    system_dict = dict(messages[0])
    for hook in (tlm_hooks.patch, lambda c: tlm_hooks.route(c, quality_preset="low", options={"log": ["explanation"]})):
        client = make_client(is_async)
        hook(client)
        fake.push(Reply(tlm_score=0.5), Reply(tlm_score=0.5), Reply(tlm_score=0.5))
        await resolve(client.complete(messages=messages, model_extras=extras, headers=headers))
        await drain(
            await resolve(client.complete(messages=messages, model_extras=extras, stream=True)), is_async=is_async
        )
        await drain(await resolve(client.complete(body=body, headers=headers)), is_async=is_async)
    assert (messages[1], extras, headers, body) == snapshot
    assert dict(messages[0]) == system_dict


async def test_scorer_failures_are_reported_not_raised(fake: Any, make_client: Any, is_async: bool) -> None:
    def broken(request: Any) -> float:
        raise RuntimeError("judge unavailable")

    client = make_client(is_async)
    tlm_hooks.patch(client, scorer=broken)
    response = await resolve(client.complete(messages=MESSAGES))
    assert response.choices[0].message.content == "The answer is 4."
    assert response.tlm_metadata["trustworthiness_score"] is None
    assert "judge unavailable" in response.tlm_metadata["error"]["message"]
    assert response.as_dict()["tlm_metadata"]["error"]["type"] == "RuntimeError"

    strict = make_client(is_async)
    tlm_hooks.patch(strict, scorer=broken, policy=tlm_hooks.TrustPolicy(on_error="raise"))
    with pytest.raises(TrustScoringError, match="judge unavailable"):
        await resolve(strict.complete(messages=MESSAGES))


async def test_route_without_backend_metadata_says_so(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.route(client)
    response = await resolve(client.complete(messages=MESSAGES))
    assert metadata_of(response)["error"]["type"] == "MissingMetadata"
    assert "TLM backend" in response["tlm_metadata"]["error"]["message"]


def test_only_chat_completions_clients_can_be_hooked(fake: Any) -> None:
    from azure.ai.inference import EmbeddingsClient
    from azure.core.credentials import AzureKeyCredential

    embeddings = EmbeddingsClient(endpoint=fake.url, credential=AzureKeyCredential("k"))
    with pytest.raises(PatchError, match="azure.ai.inference ChatCompletionsClient"):
        tlm_hooks.patch(embeddings)
    embeddings.close()
