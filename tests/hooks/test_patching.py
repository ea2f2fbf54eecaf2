"""Patching semantics: one wrapper however often or concurrently we patch, exact restoration,
per-client scope, derived clients, patch_all, cached raw-response wrappers, bad targets."""

from __future__ import annotations

import threading
from typing import Any

import openai
import pytest
import wrapt
from fake_openai import Reply
from hookutil import MESSAGES, ORIGINALS, metadata_of, prob, resolve, score_of
from openai.resources.chat.completions.completions import AsyncCompletions, Completions

import tlm_hooks
from tlm_hooks import PatchError

CREATE_OWNERS = {False: Completions, True: AsyncCompletions}


def assert_single_wrapper() -> None:
    """Every patched class attribute is one FunctionWrapper around the captured original."""
    for (owner, attr), original in ORIGINALS.items():
        current = vars(owner)[attr]
        assert isinstance(current, wrapt.FunctionWrapper), (owner, attr)
        assert current.__wrapped__ is original, (owner, attr)
        assert not isinstance(current.__wrapped__, wrapt.ObjectProxy)


def assert_restored() -> None:
    for (owner, attr), original in ORIGINALS.items():
        assert vars(owner)[attr] is original, (owner, attr)


async def _ask(client: Any, **kwargs: Any) -> Any:
    return await resolve(client.chat.completions.create(model=kwargs.pop("model", "m"), messages=MESSAGES, **kwargs))


async def test_patch_twice_installs_one_wrapper(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client, scorer=lambda request: 0.2)
    tlm_hooks.patch(client, scorer=lambda request: 0.7)  # replaces the config, never wraps twice
    assert_single_wrapper()
    result = await _ask(client)
    assert score_of(result) == 0.7
    assert len(fake.requests) == 1


async def test_patch_unpatch_patch(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    tlm_hooks.patch(client)
    assert tlm_hooks.is_patched(client)
    assert score_of(await _ask(client)) == pytest.approx(prob(Reply().logprob))

    assert tlm_hooks.unpatch(client) is True
    assert tlm_hooks.unpatch(client) is False
    assert not tlm_hooks.is_patched(client)
    assert_restored()  # the last hooked client is gone: originals are back
    assert metadata_of(await _ask(client)) is None
    assert "logprobs" not in fake.requests[-1].body

    tlm_hooks.patch(client, scorer=lambda request: 0.25)
    assert_single_wrapper()
    assert score_of(await _ask(client)) == 0.25


async def test_unpatch_all_restores_exact_originals(fake: Any, make_client: Any) -> None:
    sync_client, async_client = make_client(False), make_client(True)
    tlm_hooks.patch(sync_client)
    tlm_hooks.route(async_client)
    tlm_hooks.patch_all()
    assert_single_wrapper()
    tlm_hooks.unpatch_all()
    assert_restored()
    assert not tlm_hooks.is_patched(sync_client) and not tlm_hooks.is_patched(async_client)
    assert metadata_of(await _ask(sync_client)) is None
    assert metadata_of(await _ask(async_client)) is None
    assert all("logprobs" not in seen.body for seen in fake.requests)


async def test_unpatching_one_client_keeps_the_other(fake: Any, make_client: Any, is_async: bool) -> None:
    first, second = make_client(is_async), make_client(is_async)
    tlm_hooks.patch(first, scorer=lambda request: 0.3)
    tlm_hooks.patch(second, scorer=lambda request: 0.6)
    tlm_hooks.unpatch(first)
    assert_single_wrapper()
    assert metadata_of(await _ask(first)) is None
    assert score_of(await _ask(second)) == 0.6


async def test_unpatched_client_of_same_class_is_not_scored(fake: Any, make_client: Any, is_async: bool) -> None:
    hooked, other = make_client(is_async), make_client(is_async)
    tlm_hooks.patch(hooked)
    result = await _ask(other)
    assert metadata_of(result) is None
    assert "tlm_metadata" not in (result.model_extra or {})
    assert "logprobs" not in fake.requests[-1].body
    assert not tlm_hooks.is_patched(other)
    # ... and the hooked one still is
    assert score_of(await _ask(hooked)) == pytest.approx(prob(Reply().logprob))
    assert fake.requests[-1].body["logprobs"] is True


@pytest.mark.parametrize("derive", ["with_options", "copy"])
async def test_derived_clients_inherit_the_hook(fake: Any, make_client: Any, is_async: bool, derive: str) -> None:
    parent = make_client(is_async)
    tlm_hooks.patch(parent, scorer=lambda request: 0.45)
    child = getattr(parent, derive)(timeout=7.0)
    assert child is not parent
    assert tlm_hooks.is_patched(child)
    assert score_of(await _ask(child)) == 0.45
    grandchild = child.with_options(max_retries=0)
    assert score_of(await _ask(grandchild)) == 0.45
    # a copy of an unhooked client is not hooked
    stranger = getattr(make_client(is_async), derive)(timeout=7.0)
    assert not tlm_hooks.is_patched(stranger)
    assert metadata_of(await _ask(stranger)) is None


def _azure(fake: Any, is_async: bool) -> Any:
    endpoint = fake.url[: -len("/v1")]
    cls = openai.AsyncAzureOpenAI if is_async else openai.AzureOpenAI
    return cls(api_key="k", api_version="2024-06-01", azure_endpoint=endpoint, max_retries=0)


async def test_azure_client_is_scored_and_derived_clients_too(fake: Any, is_async: bool) -> None:
    client = _azure(fake, is_async)
    tlm_hooks.patch(client)
    fake.push(Reply(logprob=-0.7), Reply(logprob=-0.1))
    result = await resolve(client.chat.completions.create(model="my-deploy", messages=MESSAGES))
    assert type(result).__name__ == "ChatCompletion"
    assert score_of(result) == pytest.approx(prob(-0.7))
    seen = fake.requests[0]
    assert seen.path.split("?")[0] == "/openai/deployments/my-deploy/chat/completions"
    assert "api-version=2024-06-01" in seen.path
    assert seen.body["logprobs"] is True

    derived = client.with_options(timeout=9.0)
    assert isinstance(derived, type(client))
    result = await resolve(derived.chat.completions.create(model="my-deploy", messages=MESSAGES))
    assert score_of(result) == pytest.approx(prob(-0.1))
    assert fake.requests[1].path.startswith("/openai/deployments/my-deploy/chat/completions")
    await resolve(client.close())


async def test_patch_all_scores_clients_created_afterwards(fake: Any, make_client: Any, is_async: bool) -> None:
    tlm_hooks.patch_all(scorer=lambda request: 0.55)
    client = make_client(is_async)
    assert tlm_hooks.is_patched(client)
    assert score_of(await _ask(client)) == 0.55
    own = make_client(is_async)
    tlm_hooks.patch(own, scorer=lambda request: 0.15)  # a client's own patch wins over patch_all
    assert score_of(await _ask(own)) == 0.15
    tlm_hooks.unpatch_all()
    assert metadata_of(await _ask(make_client(is_async))) is None


def test_patch_all_rejects_unknown_sdk() -> None:
    with pytest.raises(PatchError, match="'openai'"):
        tlm_hooks.patch_all(sdks=("nope",))


def test_concurrent_patching_leaves_one_wrapper(fake: Any, make_client: Any) -> None:
    clients = [make_client() for _ in range(8)]
    barrier = threading.Barrier(len(clients))
    errors: list[BaseException] = []

    def work(client: Any) -> None:
        try:
            barrier.wait(timeout=10)
            tlm_hooks.patch(client, scorer=lambda request: 0.35)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors
    assert_single_wrapper()
    for client in clients:
        result = client.chat.completions.create(model="m", messages=MESSAGES)
        assert score_of(result) == 0.35
    assert len(fake.requests) == len(clients)


async def test_raw_response_accessed_before_patch_is_scored(fake: Any, make_client: Any, is_async: bool) -> None:
    client = make_client(is_async)
    early_resource = client.chat.completions.with_raw_response  # cached before the patch
    early_client_level = client.with_raw_response
    assert early_client_level is client.with_raw_response  # the SDK does cache it
    tlm_hooks.patch(client)
    fake.push(Reply(logprob=-0.3), Reply(logprob=-0.6))
    raw = await resolve(client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES))
    assert score_of(raw.parse()) == pytest.approx(prob(-0.3))
    raw = await resolve(client.with_raw_response.chat.completions.create(model="m", messages=MESSAGES))
    assert score_of(raw.parse()) == pytest.approx(prob(-0.6))
    assert early_resource is not client.chat.completions.with_raw_response
    assert all(seen.body["logprobs"] is True for seen in fake.requests)


async def test_raw_response_accessed_before_patch_all_is_scored(fake: Any, make_client: Any, is_async: bool) -> None:
    """The real openai client caches ``with_raw_response`` (a cached_property) on the client and
    on its resources; ``patch_all()`` drops those of clients that already exist, as ``patch`` does."""
    client = make_client(is_async)
    early_resource = client.chat.completions.with_raw_response
    early_client_level = client.with_raw_response
    assert early_resource is client.chat.completions.with_raw_response  # the SDK does cache it
    tlm_hooks.patch_all(scorer=lambda request: 0.45)
    raw = await resolve(client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES))
    assert score_of(raw.parse()) == 0.45
    raw = await resolve(client.with_raw_response.chat.completions.create(model="m", messages=MESSAGES))
    assert score_of(raw.parse()) == 0.45
    assert early_resource is not client.chat.completions.with_raw_response
    assert early_client_level is not client.with_raw_response


def test_patch_all_does_not_load_the_module_level_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding existing clients must not touch `openai.chat` & co.: lazy proxies that build
    openai's module-level client when asked for their class."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setattr(openai, "_client", None)
    tlm_hooks.patch_all(scorer=lambda request: 0.5)
    assert openai._client is None


async def test_with_streaming_response_still_works(fake: Any, make_client: Any) -> None:
    """`with_streaming_response` hands back the SDK's own response object (headers, lazy body)."""
    client = make_client()
    tlm_hooks.patch(client)
    with client.chat.completions.with_streaming_response.create(model="m", messages=MESSAGES) as response:
        assert response.headers["content-type"].startswith("application/json")
        parsed = response.parse()
    assert parsed.choices[0].message.content == Reply().text
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "target, type_name",
    [
        (object(), "builtins.object"),
        ("a string", "builtins.str"),
        (None, "builtins.NoneType"),
    ],
)
def test_patching_a_non_client_raises(target: Any, type_name: str) -> None:
    for entry in (tlm_hooks.patch, tlm_hooks.route, tlm_hooks.unpatch):
        with pytest.raises(PatchError) as info:
            entry(target)
        message = str(info.value)
        assert type_name in message
        for allowed in ("OpenAI", "AsyncOpenAI", "AzureOpenAI", "AsyncAzureOpenAI"):
            assert allowed in message
    assert_restored()


def test_patching_a_resource_instead_of_its_client_raises(make_client: Any) -> None:
    completions = make_client().chat.completions
    with pytest.raises(PatchError) as info:
        tlm_hooks.patch(completions)
    assert "Completions" in str(info.value)
    assert "AzureOpenAI" in str(info.value)
    assert isinstance(info.value, TypeError)
    assert_restored()
