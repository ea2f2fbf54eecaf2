"""`LiteLLMBackend`: a judge on any provider litellm supports (litellm imported on first use)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from .._guard import unhooked
from ..errors import MissingDependencyError
from .base import Generation
from .convert import generations_from_completion, usage_of
from .failures import display_url
from .fanout import NSupport, complete_n
from .limiter import AdaptiveLimiter
from .retry import RetryPolicy, call_with_retries
from .usage import record_request

__all__ = ["LiteLLMBackend", "import_litellm", "LITELLM_HINT"]

LITELLM_HINT = "pip install 'tlm-hooks[litellm]'"


def import_litellm() -> Any:
    """Import litellm with its bundled cost map (no network fetch at import)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError as exc:
        raise MissingDependencyError(f"this judge model needs litellm: {LITELLM_HINT}") from exc
    return litellm


class LiteLLMBackend:
    """Call ``model`` (litellm naming, e.g. ``"anthropic/claude-3-5-haiku"``) via ``litellm.acompletion``.

    ``provider`` keywords (``api_base``, ``api_key``, ``api_version``, ...) go to every call.
    """

    native_tools = True  # acomplete(tools=...) offers the model tools (see ChatBackend)

    def __init__(
        self,
        model: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        limiter: AdaptiveLimiter | None = None,
        **provider: Any,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        self._litellm = import_litellm()
        self.model = model
        self.timeout = float(timeout)
        self.retry = RetryPolicy(max_retries=max_retries)
        self.limiter = limiter or AdaptiveLimiter()
        self.provider = {k: v for k, v in provider.items() if v is not None}
        self.name = f"litellm:{model}"
        self._n = NSupport()

    def __repr__(self) -> str:
        return f"LiteLLMBackend(model={self.model!r})"

    @property
    def endpoint(self) -> str:
        """Where requests go: ``api_base`` (without user info or query), else the provider's default."""
        base = self.provider.get("api_base")
        return display_url(str(base)) if base else "the provider's default endpoint (litellm)"

    def with_model(self, model: str) -> LiteLLMBackend:
        """Same provider settings and limiter, another model."""
        return LiteLLMBackend(
            model, timeout=self.timeout, max_retries=self.retry.max_retries, limiter=self.limiter, **self.provider
        )

    async def acomplete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        n: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 256,
        logprobs: bool = False,
        top_logprobs: int = 0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[Generation]:
        """``n`` answers to ``messages`` (see `ChatBackend`); ``tools``: chat-shaped tool schemas
        offered to the model."""
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
            "timeout": self.timeout,
            "num_retries": 0,
            "max_retries": 0,  # the provider SDK's own retries (ours run)
            **self.provider,
        }
        if logprobs:
            params["logprobs"] = True
            if top_logprobs:
                params["top_logprobs"] = top_logprobs
        if stop:
            params["stop"] = list(stop)
        if tools:
            params["tools"] = [dict(tool) for tool in tools]

        async def attempt(body: dict[str, Any]) -> Any:
            with unhooked():
                return await self._litellm.acompletion(**body)

        async def request(count: int, request_seed: int | None) -> list[Generation]:
            body = dict(params)
            if count > 1:
                body["n"] = count
            if request_seed is not None:
                body["seed"] = request_seed
            completion = await call_with_retries(
                lambda: attempt(body), self.retry, self.limiter, judge=f"{self.model!r} at {self.endpoint}"
            )
            record_request(*usage_of(completion))
            return generations_from_completion(completion)

        return await complete_n(request, n, seed, self._n)
