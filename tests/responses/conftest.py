"""Fixtures for the Responses API tests: the loopback Responses server, real openai clients
(OpenAI, AsyncOpenAI, AzureOpenAI, AsyncAzureOpenAI) pointed at it, a clean logprob memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
import pytest
from fake_responses import FakeResponses

import tlm_hooks


@pytest.fixture(scope="session")
def responses_server() -> Iterator[FakeResponses]:
    server = FakeResponses()
    yield server
    server.close()


@pytest.fixture
def rfake(responses_server: FakeResponses) -> Iterator[FakeResponses]:
    """The loopback Responses server with an empty script and request log."""
    responses_server.reset()
    yield responses_server
    responses_server.reset()


@pytest.fixture(autouse=True)
def _forget_logprob_refusals() -> Iterator[None]:
    tlm_hooks.forget_logprob_refusals()
    yield
    tlm_hooks.forget_logprob_refusals()


@pytest.fixture
async def make_client(rfake: FakeResponses) -> AsyncIterator[Callable[..., Any]]:
    """``make_client(is_async=False, azure=False)``: a real client on the fake server; all are
    closed after the test (async ones on the test's own loop)."""
    made: list[Any] = []

    def make(is_async: bool = False, azure: bool = False, **options: Any) -> Any:
        if azure:
            cls: Any = openai.AsyncAzureOpenAI if is_async else openai.AzureOpenAI
            client = cls(
                azure_endpoint=rfake.root,
                api_key="test-key",
                api_version="2025-04-01-preview",
                max_retries=0,
                **options,
            )
        else:
            cls = openai.AsyncOpenAI if is_async else openai.OpenAI
            client = cls(base_url=rfake.url, api_key="test-key", max_retries=0, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        if isinstance(client, openai.AsyncOpenAI):
            await client.close()
        else:
            client.close()


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)
