"""Fixtures for the Azure AI Inference tests: clients on the loopback fake server (real HTTP
through azure-core's own transports), a clean logprob-refusal memory, a sync/async parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("azure.ai.inference", reason="azure-ai-inference is not installed (extra [azure])")

import azutil  # noqa: E402,F401  (captures the SDK's original methods before any test patches)


@pytest.fixture(autouse=True)
def _forget_logprob_refusals() -> Iterator[None]:
    """Refusals of `logprobs` are remembered per model (per client for calls naming none); each test starts clean."""
    import tlm_hooks

    tlm_hooks.forget_logprob_refusals()
    yield
    tlm_hooks.forget_logprob_refusals()


@pytest.fixture
async def make_client(fake: Any) -> AsyncIterator[Callable[..., Any]]:
    """``make_client(is_async=False, **options)``: a ChatCompletionsClient (sync or aio) on the
    fake server, SDK retries off; all are closed after the test (async ones on its own loop)."""
    from azure.ai.inference import ChatCompletionsClient
    from azure.ai.inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient
    from azure.core.credentials import AzureKeyCredential

    made: list[Any] = []

    def make(is_async: bool = False, **options: Any) -> Any:
        cls = AsyncChatCompletionsClient if is_async else ChatCompletionsClient
        client = cls(endpoint=fake.url, credential=AzureKeyCredential("test-key"), retry_total=0, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        if isinstance(client, AsyncChatCompletionsClient):
            await client.close()
        else:
            client.close()


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)
