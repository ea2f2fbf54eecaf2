"""Fixtures for the litellm tests: litellm offline (its bundled cost map, no debug banners),
calls through its OpenAI-compatible provider to the loopback fake, and a Router on it."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no network

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

litellm = pytest.importorskip("litellm", reason="litellm is not installed (extra [litellm])")

from tlm_hooks.hooks import pipeline  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet_litellm() -> Iterator[None]:
    """No "Give Feedback" banners on errors; no callbacks left over from another test."""
    before = litellm.suppress_debug_info, list(litellm.callbacks)
    litellm.suppress_debug_info = True
    pipeline._NO_LOGPROBS.clear()
    yield
    litellm.suppress_debug_info, litellm.callbacks = before[0], before[1]
    pipeline._NO_LOGPROBS.clear()


@pytest.fixture
def provider(fake: Any) -> dict[str, Any]:
    """litellm's OpenAI-compatible provider pointed at the fake server (model ``openai/m``)."""
    return {"model": "openai/m", "api_base": fake.url, "api_key": "test-key"}


@pytest.fixture
def router(provider: dict[str, Any]) -> Any:
    """A Router with one deployment (group ``grp``) on the fake server, no retries."""
    params = dict(provider)
    return litellm.Router(model_list=[{"model_name": "grp", "litellm_params": params}], num_retries=0)
