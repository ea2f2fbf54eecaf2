"""Shared fixtures: a scripted OpenAI-compatible server on loopback; a clean patch state."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# litellm (imported by patch_all() when installed) uses its bundled cost map: no network fetch
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from fake_openai import FakeOpenAI  # noqa: E402

import tlm_hooks  # noqa: E402


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture
def fake(fake_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The loopback server with an empty script and request log."""
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture(autouse=True)
def _unpatched() -> Iterator[None]:
    """Every test starts and ends with nothing patched."""
    tlm_hooks.unpatch_all()
    yield
    tlm_hooks.unpatch_all()


@pytest.fixture(autouse=True)
def _fresh_score_cache() -> Iterator[None]:
    """Every test starts with an empty process score cache (tests count the judge calls they cause)."""
    from tlm_hooks.scorers.cache import default_cache

    default_cache().clear()
    yield
    default_cache().clear()
