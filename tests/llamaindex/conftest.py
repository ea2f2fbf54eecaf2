"""Fixtures for the LlamaIndex tests: a scripted CustomLLM, an offline index, clean handlers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("llama_index.core", reason="llama-index-core is not installed (extra [llamaindex])")

from li_util import DOCUMENTS, ScriptedLLM  # noqa: E402
from llama_index.core import Document, Settings, VectorStoreIndex  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402

from tlm_hooks.integrations.llamaindex import HashingEmbedding  # noqa: E402


@pytest.fixture
def llm() -> ScriptedLLM:
    return ScriptedLLM()


@pytest.fixture(scope="session")
def index() -> VectorStoreIndex:
    return VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS], embed_model=HashingEmbedding())


@pytest.fixture(autouse=True)
def _clean_llamaindex() -> Iterator[None]:
    """Each test starts and ends with no extra handler on the root dispatcher or in Settings."""
    root = get_dispatcher()
    events, spans = list(root.event_handlers), list(root.span_handlers)
    manager = Settings.callback_manager
    handlers = list(manager.handlers)
    yield
    root.event_handlers, root.span_handlers = events, spans
    manager.set_handlers(handlers)
    Settings.callback_manager = manager
