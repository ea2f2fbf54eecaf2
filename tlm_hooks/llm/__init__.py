"""Judge model access for scorers: OpenAI-compatible APIs, litellm, the embedded local model.

Importing this package imports no SDK: openai, litellm and llama-cpp load when a backend uses them.
"""

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
