"""Patch lifecycle for Azure AI Inference clients: per-client scope, idempotence, patch_all,
unpatch restoring the SDK's exact methods, early-closed streams scored once."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("azure.ai.inference")

from azure.ai.inference import ChatCompletionsClient  # noqa: E402
from azure.ai.inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient  # noqa: E402
from azutil import MESSAGES, ORIGINALS, assert_restored, metadata_of, resolve, score_of  # noqa: E402
from fake_openai import Reply  # noqa: E402

import tlm_hooks  # noqa: E402


def _wrapped_once() -> None:
    for owner, attr in ORIGINALS:
        method = vars(owner)[attr]
        assert method is not ORIGINALS[(owner, attr)]
        assert getattr(method, "__wrapped__", None) is ORIGINALS[(owner, attr)]  # one layer, not two


async def test_patch_is_per_client_idempotent_and_undone(fake: Any, make_client: Any, is_async: bool) -> None:
    client, other = make_client(is_async), make_client(is_async)
    tlm_hooks.patch(client, scorer=lambda r: 0.3)
    tlm_hooks.patch(client, scorer=lambda r: 0.4)  # re-patching replaces the configuration
    _wrapped_once()
    assert tlm_hooks.is_patched(client) and not tlm_hooks.is_patched(other)
    assert score_of(await resolve(client.complete(messages=MESSAGES))) == 0.4
    untouched = await resolve(other.complete(messages=MESSAGES))
    assert metadata_of(untouched) is None and "logprobs" not in fake.requests[-1].body

    assert tlm_hooks.unpatch(client) is True
    assert tlm_hooks.unpatch(client) is False
    assert_restored()
    plain = await resolve(client.complete(messages=MESSAGES))
    assert metadata_of(plain) is None and "tlm_metadata" not in plain.as_dict()


async def test_route_then_unpatch_sends_nothing_extra(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.route(client, quality_preset="low")
    await resolve(client.complete(messages=MESSAGES))
    tlm_hooks.unpatch(client)
    await resolve(client.complete(messages=MESSAGES))
    assert "quality_preset" in fake.requests[0].body
    assert fake.requests[1].body == {"messages": MESSAGES}
    assert "extra-parameters" not in fake.requests[1].headers


async def test_patch_all_covers_azure_clients_created_later(fake: Any, make_client: Any, is_async: bool) -> None:
    tlm_hooks.patch_all(scorer=lambda r: 0.55)
    _wrapped_once()
    client = make_client(is_async)
    assert tlm_hooks.is_patched(client)
    assert score_of(await resolve(client.complete(messages=MESSAGES))) == 0.55
    own = make_client(is_async)
    tlm_hooks.route(own)  # a client's own configuration wins over patch_all
    fake.push(Reply(tlm_score=0.15))
    assert score_of(await resolve(own.complete(messages=MESSAGES))) == 0.15
    tlm_hooks.unpatch_all()
    assert_restored()
    assert metadata_of(await resolve(make_client(is_async).complete(messages=MESSAGES))) is None


def test_patch_all_can_name_the_azure_sdk_alone(fake: Any, make_client: Any) -> None:
    tlm_hooks.patch_all(scorer=lambda r: 0.5, sdks=("azure",))
    _wrapped_once()
    assert score_of(make_client().complete(messages=MESSAGES)) == 0.5
    tlm_hooks.unpatch_all()
    assert_restored()


def test_sync_stream_closed_early_is_scored_once(fake: Any, make_client: Any) -> None:
    calls: list[str] = []
    client = make_client()
    tlm_hooks.patch(client, scorer=lambda r: calls.append(r.response) or 0.5)
    fake.push(Reply(text="one two three four"))
    with client.complete(messages=MESSAGES, stream=True) as stream:
        first = [next(stream), next(stream)]
    stream.close()  # closing again scores nothing more
    assert calls == ["one"] and stream.tlm_metadata["trustworthiness_score"] == 0.5
    assert first[1].choices[0].delta.content == "one"


async def test_async_stream_aclose_and_context_manager_score_once(fake: Any, make_client: Any) -> None:
    calls: list[str] = []
    client = make_client(True)
    tlm_hooks.patch(client, scorer=lambda r: calls.append(r.response) or 0.5)
    fake.push(Reply(text="one two three"), Reply(text="four five six"))
    stream = await client.complete(messages=MESSAGES, stream=True)
    await stream.__anext__()
    await stream.__anext__()
    await stream.aclose()  # the azure stream's own close method
    await stream.aclose()
    async with await client.complete(messages=MESSAGES, stream=True) as second:
        async for _update in second:
            pass
    assert calls == ["one", "four five six"]
    assert stream.tlm_metadata["trustworthiness_score"] == second.tlm_metadata["trustworthiness_score"] == 0.5


def test_client_classes_are_the_patched_targets() -> None:
    assert set(ORIGINALS) == {(ChatCompletionsClient, "complete"), (AsyncChatCompletionsClient, "complete")}
