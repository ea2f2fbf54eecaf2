"""Is an object a LlamaIndex LLM (instance or class)? Answered without importing LlamaIndex:
if ``llama_index.core`` was never imported, nothing can be a LlamaIndex LLM."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

__all__ = ["patcher_for", "loaded_patcher"]

_BASE_MODULE = "llama_index.core.base.llms.base"
_PATCHING_MODULE = "tlm_hooks.integrations.llamaindex.patching"


def patcher_for(obj: Any) -> ModuleType | None:
    """The LlamaIndex patching module when ``obj`` is a LlamaIndex LLM or LLM class, else None."""
    base = sys.modules.get(_BASE_MODULE)
    if base is None:
        return None
    cls = obj if isinstance(obj, type) else type(obj)
    try:
        if not issubclass(cls, base.BaseLLM):
            return None
    except TypeError:
        return None
    from . import patching

    return patching


def loaded_patcher() -> ModuleType | None:
    """The patching module if anything was ever patched through it (for ``unpatch_all``)."""
    return sys.modules.get(_PATCHING_MODULE)
