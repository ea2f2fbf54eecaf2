"""`OpenAICompatibleBackend`: a judge behind any OpenAI-compatible chat-completions API."""

from __future__ import annotations

import asyncio
import inspect
import weakref
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

__all__ = ["OpenAICompatibleBackend", "is_openai_client"]

_INSTALL = "pip install 'tlm-hooks[openai]'"


def _openai() -> Any:
    try:
        import openai
    except ImportError as exc:
        raise MissingDependencyError(f"an OpenAI-compatible judge needs the openai package: {_INSTALL}") from exc
    return openai


def is_openai_client(client: Any) -> bool:
    """True for ``openai.OpenAI``/``AsyncOpenAI`` (and Azure variants) without importing openai."""
    return type(client).__module__.split(".")[0] == "openai" and hasattr(getattr(client, "chat", None), "completions")


def _is_async_client(client: Any) -> bool:
    try:
        openai = _openai()
        if isinstance(client, openai.AsyncOpenAI):
            return True
        if isinstance(client, openai.OpenAI):
            return False
    except MissingDependencyError:
        pass
    create = getattr(type(client.chat.completions), "create", None)
    return inspect.iscoroutinefunction(create)


class OpenAICompatibleBackend:
    """Call ``model`` through an ``openai.OpenAI``/``AsyncOpenAI`` client (or one built from
    ``base_url``/``api_key``), unhooked. Each request has a ``timeout``; 429/5xx/timeouts are
    retried up to ``max_retries`` times with backoff; ``limiter`` bounds requests in flight."""

    native_tools = True  # acomplete(tools=...) offers the model tools (see ChatBackend)

    def __init__(
        self,
        client: Any = None,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        limiter: AdaptiveLimiter | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self.model = model
        self.timeout = float(timeout)
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self.limiter = limiter or AdaptiveLimiter()
        self.name = f"openai-compatible:{model}"
        self._n = NSupport()
        self._client = client
        self._base_url, self._api_key = base_url, api_key
        self._is_async = _is_async_client(client) if client is not None else True
        # a client we build is per event loop: pooled connections must not cross loops
        self._own: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._quiet = _without_sdk_retries(client) if client is not None else None

    @classmethod
    def from_client(cls, client: Any, model: str, **kwargs: Any) -> OpenAICompatibleBackend:
        """A backend over an existing (possibly hooked) OpenAI client."""
        return cls(client, model=model, **kwargs)

    def with_model(self, model: str) -> OpenAICompatibleBackend:
        """The same connection and limiter, another model."""
        clone = OpenAICompatibleBackend(
            self._client, model=model, base_url=self._base_url, api_key=self._api_key,
            timeout=self.timeout, limiter=self.limiter, retry=self.retry,
        )  # fmt: skip
        return clone

    @property
    def endpoint(self) -> str:
        """The base URL requests go to (without user info or query)."""
        if self._client is not None:
            url = str(getattr(self._client, "base_url", "") or "")
        else:
            import os

            url = self._base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        return display_url(url) if url else "the client's endpoint"

    @property
    def n_honoured(self) -> bool | None:
        """Whether the server returned all ``n`` choices of one request (``None``: not yet tried)."""
        return self._n.honoured

    def __repr__(self) -> str:
        return f"OpenAICompatibleBackend(model={self.model!r})"

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
        params: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        params.update(temperature=temperature, max_tokens=max_tokens)
        if logprobs:
            params["logprobs"] = True
            if top_logprobs:
                params["top_logprobs"] = top_logprobs
        if stop:
            params["stop"] = list(stop)
        if tools:
            params["tools"] = [dict(tool) for tool in tools]

        async def request(count: int, request_seed: int | None) -> list[Generation]:
            body = dict(params)
            if count > 1:
                body["n"] = count
            if request_seed is not None:
                body["seed"] = request_seed
            completion = await call_with_retries(
                lambda: self._create(body), self.retry, self.limiter, judge=f"{self.model!r} at {self.endpoint}"
            )
            record_request(*usage_of(completion))
            return generations_from_completion(completion)

        return await complete_n(request, n, seed, self._n)

    async def _create(self, body: dict[str, Any]) -> Any:
        client = self._client_for_loop()
        create = client.chat.completions.create
        with unhooked():
            if self._is_async:
                pending = create(**body, timeout=self.timeout)
            else:
                pending = asyncio.to_thread(create, **body, timeout=self.timeout)
            # the SDK enforces the timeout; this outer bound also covers a client that ignores it
            return await asyncio.wait_for(pending, self.timeout + 5.0)

    def _client_for_loop(self) -> Any:
        if self._quiet is not None:
            return self._quiet
        loop = asyncio.get_running_loop()
        client = self._own.get(loop)
        if client is None:
            openai = _openai()
            kwargs: dict[str, Any] = {"max_retries": 0, "timeout": self.timeout}
            if self._base_url is not None:
                kwargs["base_url"] = self._base_url
            kwargs["api_key"] = self._api_key if self._api_key is not None else _env_key()
            client = openai.AsyncOpenAI(**kwargs)
            self._own[loop] = client
        return client


def _env_key() -> str:
    import os

    # a local OpenAI-compatible server usually needs no key, but the SDK insists on one
    return os.environ.get("OPENAI_API_KEY") or "not-needed"


def _without_sdk_retries(client: Any) -> Any:
    """A view of ``client`` that does not retry by itself (our retry loop does)."""
    with_options = getattr(client, "with_options", None)
    if with_options is None:
        return client
    try:
        return with_options(max_retries=0)
    except Exception:
        return client
