"""Fixtures for the hook tests: clients pointed at the fake server, a clean logprob memory,
and a sync/async parameter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import hookutil  # noqa: F401  (captures the SDK's original methods before any test patches)
import openai
import pytest

import tlm_hooks


@pytest.fixture(autouse=True)
def _forget_logprob_refusals() -> Iterator[None]:
    """Models that refused `logprobs` are remembered process-wide; each test starts clean."""
    tlm_hooks.forget_logprob_refusals()
    yield
    tlm_hooks.forget_logprob_refusals()


@pytest.fixture
async def make_client(fake: Any) -> AsyncIterator[Callable[..., Any]]:
    """``make_client(is_async=False, **options)``: an OpenAI/AsyncOpenAI client on the fake
    server; all are closed after the test (async ones on the test's own loop)."""
    made: list[Any] = []

    def make(is_async: bool = False, **options: Any) -> Any:
        cls = openai.AsyncOpenAI if is_async else openai.OpenAI
        client = cls(base_url=fake.url, api_key="test-key", max_retries=0, **options)
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
