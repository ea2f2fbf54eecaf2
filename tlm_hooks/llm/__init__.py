"""Judge model access for scorers: OpenAI-compatible APIs, litellm, the embedded local model.

Importing this package imports no SDK and none of its backends: each name loads its module when
first used (``tlm_hooks.llm.usage`` is imported on every score path and must stay light).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import ChatBackend, Generation
    from .limiter import AdaptiveLimiter
    from .litellm_backend import LiteLLMBackend
    from .local import LocalBackend
    from .openai_compat import OpenAICompatibleBackend
    from .resolve import resolve_backend
    from .retry import RetryPolicy
    from .usage import Usage, metered

__all__ = [
    "ChatBackend",
    "Generation",
    "OpenAICompatibleBackend",
    "LocalBackend",
    "LiteLLMBackend",
    "resolve_backend",
    "AdaptiveLimiter",
    "RetryPolicy",
    "Usage",
    "metered",
]

_WHERE = {
    "ChatBackend": ".base",
    "Generation": ".base",
    "AdaptiveLimiter": ".limiter",
    "LiteLLMBackend": ".litellm_backend",
    "LocalBackend": ".local",
    "OpenAICompatibleBackend": ".openai_compat",
    "resolve_backend": ".resolve",
    "RetryPolicy": ".retry",
    "Usage": ".usage",
    "metered": ".usage",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value
