"""Fixtures for the litellm tests: litellm offline (its bundled cost map, no debug banners),
calls through its OpenAI-compatible provider to the loopback fake, and a Router on it."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no network

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

litellm = pytest.importorskip("litellm", reason="litellm is not installed (extra [litellm])")

import tlm_hooks  # noqa: E402


def _no_callbacks() -> None:
    """Empty every callback list: litellm copies ``litellm.callbacks`` into its per-event lists
    and keeps one callback per class there, so a later test's callbacks would not be added."""
    for name in ("callbacks", "input_callback", "success_callback", "failure_callback"):
        setattr(litellm, name, [])
    for name in ("_async_success_callback", "_async_failure_callback", "_async_input_callback"):
        if hasattr(litellm, name):
            setattr(litellm, name, [])


@pytest.fixture(autouse=True)
def _quiet_litellm() -> Iterator[None]:
    """No "Give Feedback" banners on errors; no callbacks left over from another test."""
    before = litellm.suppress_debug_info
    litellm.suppress_debug_info = True
    _no_callbacks()
    tlm_hooks.forget_logprob_refusals()
    yield
    _no_callbacks()
    litellm.suppress_debug_info = before
    tlm_hooks.forget_logprob_refusals()


@pytest.fixture
def provider(fake: Any) -> dict[str, Any]:
    """litellm's OpenAI-compatible provider pointed at the fake server (model ``openai/m``)."""
    return {"model": "openai/m", "api_base": fake.url, "api_key": "test-key"}


@pytest.fixture
def router(provider: dict[str, Any]) -> Any:
    """A Router with one deployment (group ``grp``) on the fake server, no retries."""
    params = dict(provider)
    return litellm.Router(model_list=[{"model_name": "grp", "litellm_params": params}], num_retries=0)
