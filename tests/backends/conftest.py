"""Fixtures: a scripted Cleanlab service and `CleanlabTLM` objects wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from cleanlab_fakes import API_KEY, Service

from tlm_hooks import CleanlabTLM


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see a real key from the environment."""
    monkeypatch.delenv("CLEANLAB_TLM_API_KEY", raising=False)


@pytest.fixture
def service() -> Service:
    return Service()


@pytest.fixture
def sleeps() -> list[float]:
    """Every wait a `make_tlm` object asked for, sync or async, in seconds."""
    return []


@pytest.fixture
async def make_tlm(service: Service, sleeps: list[float]) -> AsyncIterator[Callable[..., CleanlabTLM]]:
    """``make_tlm(**kwargs)``: a CleanlabTLM on the scripted service whose waits are recorded."""
    made: list[Any] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    def make(**kwargs: Any) -> CleanlabTLM:
        client, aclient = service.client(), service.async_client()
        made.extend([client, aclient])
        kwargs.setdefault("api_key", API_KEY)
        return CleanlabTLM(
            http_client=client, async_http_client=aclient, sleep=sleeps.append, async_sleep=record, **kwargs
        )

    yield make
    for client in made:
        if hasattr(client, "aclose"):
            await client.aclose()
        else:
            client.close()
