"""`AzureInferenceBackend`: a judge behind an `azure-ai-inference` ``ChatCompletionsClient``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from .._guard import unhooked
from .base import Generation
from .convert import generations_from_completion, usage_of
from .failures import display_url
from .fanout import NSupport, complete_n
from .limiter import AdaptiveLimiter
from .retry import RetryPolicy, call_with_retries
from .usage import record_request

__all__ = ["AzureInferenceBackend", "is_azure_inference_client"]


def is_azure_inference_client(client: Any) -> bool:
    """True for ``azure.ai.inference`` chat clients (sync or ``aio``), without importing azure."""
    module = type(client).__module__
    return module.startswith("azure.ai.inference") and callable(getattr(client, "complete", None))


def _is_async_client(client: Any) -> bool:
    return type(client).__module__.startswith("azure.ai.inference.aio")


class AzureInferenceBackend:
    """Call ``client.complete`` (sync clients on a worker thread), unhooked. ``model`` is sent
    as the request's ``model`` (``None``: the client's default, or whatever the endpoint serves).

    Options the SDK has no keyword for (``logprobs``, ``top_logprobs``, ``n``) go in
    ``model_extras``, merged over the client's own. Each request has a ``timeout``; 429/5xx and
    timeouts are retried up to ``max_retries`` times by our loop (the SDK's own retries are off);
    ``limiter`` bounds requests in flight.
    """

    native_tools = True  # acomplete(tools=...) offers the model tools (see ChatBackend)

    def __init__(
        self,
        client: Any,
        *,
        model: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        limiter: AdaptiveLimiter | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not is_azure_inference_client(client):
            raise TypeError(f"expected an azure.ai.inference ChatCompletionsClient, got {type(client).__name__}")
        if model is not None and (not isinstance(model, str) or not model):
            raise ValueError(f"model must be a non-empty string or None, got {model!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self.model = model or getattr(client, "_model", None)
        self.timeout = float(timeout)
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self.limiter = limiter or AdaptiveLimiter()
        self.name = f"azure-ai-inference:{self.model or 'endpoint-default'}"
        self._client = client
        self._is_async = _is_async_client(client)
        self._n = NSupport()

    def with_model(self, model: str) -> AzureInferenceBackend:
        """The same client and limiter, another model."""
        return AzureInferenceBackend(
            self._client, model=model, timeout=self.timeout, limiter=self.limiter, retry=self.retry
        )

    @property
    def endpoint(self) -> str:
        """The client's endpoint URL (without user info or query)."""
        config = getattr(self._client, "_config", None)
        url = getattr(config, "endpoint", None) or getattr(self._client, "_endpoint", None)
        return display_url(str(url)) if url else "the client's endpoint"

    def __repr__(self) -> str:
        return f"AzureInferenceBackend(model={self.model!r})"

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
            "messages": [dict(m) for m in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if self.model:
            params["model"] = self.model
        if stop:
            params["stop"] = list(stop)
        if tools:
            params["tools"] = [dict(tool) for tool in tools]
        extras: dict[str, Any] = {}
        if logprobs:
            extras["logprobs"] = True
            if top_logprobs:
                extras["top_logprobs"] = top_logprobs

        async def request(count: int, request_seed: int | None) -> list[Generation]:
            kwargs = dict(params)
            more = dict(extras, **({"n": count} if count > 1 else {}))
            if more:  # a call's model_extras replace the client's in the SDK: keep both
                kwargs["model_extras"] = {**(getattr(self._client, "_model_extras", None) or {}), **more}
            if request_seed is not None:
                kwargs["seed"] = request_seed
            where = f"{self.model or 'endpoint-default model'!r} at {self.endpoint}"
            completion = await call_with_retries(lambda: self._complete(kwargs), self.retry, self.limiter, judge=where)
            record_request(*usage_of(completion))
            return generations_from_completion(completion)

        return await complete_n(request, n, seed, self._n)

    async def _complete(self, kwargs: dict[str, Any]) -> Any:
        # per-operation options of azure-core: no SDK retries (ours run), transport timeouts
        options = {"retry_total": 0, "connection_timeout": self.timeout, "read_timeout": self.timeout}
        with unhooked():
            if self._is_async:
                pending = self._client.complete(**kwargs, **options)
            else:
                pending = asyncio.to_thread(self._client.complete, **kwargs, **options)
            # the transport enforces the timeout; this outer bound also covers one that ignores it
            return await asyncio.wait_for(pending, self.timeout + 5.0)
