"""LlamaIndex integration (extra ``[llamaindex]``).

- ``tlm_hooks.patch(llm)`` / ``tlm_hooks.patch(SomeLLMClass)`` score every ``chat``/``complete``
  (streamed, async) of a LlamaIndex LLM and put ``tlm_metadata`` in the response's
  ``additional_kwargs`` (see :mod:`.patching`).
- :class:`TrustEventHandler` scores LLM calls and query-engine answers seen on LlamaIndex's
  instrumentation dispatcher, without changing them; :class:`TLMCallbackHandler` does the same
  for apps on the legacy callback manager.
- :class:`LocalLLM` and :class:`HashingEmbedding` run a LlamaIndex app fully offline on the
  embedded model.

Importing this package does not import LlamaIndex; each name does when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .callbacks import TLMCallbackHandler
    from .events import TrustEventHandler
    from .local import HashingEmbedding, LocalLLM
    from .results import ScoredCall

__all__ = ["TrustEventHandler", "TLMCallbackHandler", "ScoredCall", "LocalLLM", "HashingEmbedding"]

_WHERE = {
    "TrustEventHandler": ".events",
    "TLMCallbackHandler": ".callbacks",
    "ScoredCall": ".results",
    "LocalLLM": ".local",
    "HashingEmbedding": ".local",
}


INSTALL_HINT = "pip install 'tlm-hooks[llamaindex]'"


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(_WHERE[name], __name__)
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("llama_index"):
            from ...errors import MissingDependencyError

            raise MissingDependencyError(f"{name} needs llama-index-core: {INSTALL_HINT}") from exc
        raise
    return getattr(module, name)
