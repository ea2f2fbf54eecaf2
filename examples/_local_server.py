"""Shared by the examples: serve the embedded local model on 127.0.0.1 for the example's run.

Set OPENAI_BASE_URL (and OPENAI_API_KEY) to run an example against another server instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def openai_server() -> Iterator[tuple[str, str]]:
    """Yield (root URL, model name). The OpenAI API is under ``/v1``, the TLM routes under ``/api``."""
    if os.environ.get("OPENAI_BASE_URL"):
        yield os.environ["OPENAI_BASE_URL"].removesuffix("/v1"), os.environ.get("OPENAI_MODEL", "gpt-4.1-mini")
        return
    from tlm_hooks.local import get_default_model
    from tlm_hooks.scorers import LogprobScorer
    from tlm_hooks.server.app import create_app
    from tlm_hooks.server.runner import ServerThread

    model = get_default_model()
    with ServerThread(create_app(model, scorer=LogprobScorer())) as server:
        yield server.base_url, model.name
