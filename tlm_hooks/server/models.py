"""Which model answers one request: the server's own, or the one ``options.model`` /
``options.model_provider`` names (for generating AND judging, as TLM's options mean).

- The server's model (``--model local``/a GGUF path) serves itself only: ``options.model`` must
  name it (or ``local``), or match an ``--allow-model`` pattern, which sends that request to the
  model through litellm (with the server's provider keys, so only patterns the operator allowed).
- An upstream server (``--model URL``) takes any model name; ``--upstream-model`` fixes one.
- ``options.model_provider`` (only with ``--allow-model-provider``) points the request at that
  endpoint: an OpenAI-compatible ``api_base`` (streamed for real), else a litellm provider.
"""

from __future__ import annotations

import fnmatch
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._run import run_sync
from ..errors import MissingDependencyError
from ..llm.base import ChatBackend
from ..options import TLMOptions
from .errors import ApiError

__all__ = ["ModelPolicy", "ModelChoice", "BackendChatModel"]

LOCAL_ALIASES = ("local",)
_MAX_CACHED = 16  # litellm models kept; a pattern like "openai/*" admits any number of names
_GENERATION_KEYS = ("temperature", "max_tokens", "logprobs", "top_logprobs", "seed", "stop")


@dataclass(frozen=True)
class ModelChoice:
    """The generator for one request and the model name to ask it for (``None``: its default)."""

    model: Any  # a ChatModel
    name: str | None
    owned: bool = False  # made for this request only: close it when the reply is done


@dataclass(frozen=True)
class ModelPolicy:
    """What requests may choose: ``allowed`` litellm model patterns, and ``model_provider``."""

    allowed: Sequence[str] = ()
    allow_model_provider: bool = False
    _cache: OrderedDict[str, Any] = field(default_factory=OrderedDict, compare=False, repr=False)

    def choose(self, base: Any, options: TLMOptions | None, request_model: str | None) -> ModelChoice:
        """The model for a request to a server whose own model is ``base``; 400 when not allowed."""
        settings = options.options if options is not None else {}
        wanted = settings.get("model")
        provider = settings.get("model_provider")
        if provider is not None:  # even {}: a request that names a provider is refused, not half-served
            if not self.allow_model_provider:
                raise ApiError(
                    400,
                    "options.model_provider is not accepted by this server (start it with --allow-model-provider)",
                    "options.model_provider",
                )
            if not provider:
                raise ApiError(
                    400,
                    "options.model_provider is empty: give api_base (an OpenAI-compatible endpoint) or provider",
                    "options.model_provider",
                )
            return _provider_choice(provider, wanted or request_model)
        forwards = bool(getattr(base, "accepts_model_name", False))
        if wanted is None:
            return ModelChoice(base, request_model if forwards else None)
        fixed = getattr(base, "model", None) if forwards else getattr(base, "name", None)
        if forwards and not fixed:
            return ModelChoice(base, wanted)
        if wanted == fixed or (not forwards and wanted in LOCAL_ALIASES):
            return ModelChoice(base, wanted if forwards else None)
        if any(fnmatch.fnmatchcase(wanted, pattern) for pattern in self.allowed):
            return ModelChoice(self._litellm(wanted), None)
        allowed = [repr(fixed), *(() if forwards else map(repr, LOCAL_ALIASES)), *map(repr, self.allowed)]
        raise ApiError(
            400,
            f"options.model={wanted!r} is not served here: allowed {', '.join(allowed)} "
            "(the operator can allow more with --allow-model)",
            "options.model",
        )

    def _litellm(self, name: str) -> BackendChatModel:
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]  # type: ignore[no-any-return]
        from ..llm import litellm_backend

        try:
            model = BackendChatModel(litellm_backend.LiteLLMBackend(name))
        except MissingDependencyError as exc:
            raise ApiError(501, f"options.model={name!r} needs litellm on this server: {exc}") from exc
        self._cache[name] = model
        if len(self._cache) > _MAX_CACHED:
            self._cache.popitem(last=False)
        return model


def _provider_choice(provider: Mapping[str, str], name: str | None) -> ModelChoice:
    if not name:
        raise ApiError(
            400, "options.model_provider needs a model name: set options.model or the request's model", "options.model"
        )
    if provider.get("api_base") and not provider.get("provider") and not provider.get("api_version"):
        from .upstream import UpstreamModel

        upstream = UpstreamModel(provider["api_base"], api_key=provider.get("api_key"), model=name)
        return ModelChoice(upstream, name, owned=True)
    from ..llm.resolve import resolve_backend

    backend = resolve_backend(TLMOptions(options={"model": name, "model_provider": dict(provider)}), None)
    return ModelChoice(BackendChatModel(backend), None)


class BackendChatModel:
    """A server ``ChatModel`` over a judge ``ChatBackend`` (e.g. litellm): one completion per
    request; a stream is that completion sent as one content chunk and a finish chunk."""

    accepts_model_name = False

    def __init__(self, backend: ChatBackend) -> None:
        self.backend = backend
        self.name = backend.name

    def __repr__(self) -> str:
        return f"BackendChatModel({self.backend!r})"

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """One completion as an OpenAI ``chat.completion`` dict."""
        given = {key: kwargs[key] for key in _GENERATION_KEYS if kwargs.get(key) is not None}
        if isinstance(given.get("stop"), str):
            given["stop"] = [given["stop"]]
        generation = (await self.backend.acomplete(list(messages), n=1, **given))[0]
        logprobs = None
        if generation.logprobs is not None and kwargs.get("logprobs"):
            logprobs = {
                "content": [
                    {
                        "token": t.token,
                        "logprob": t.logprob,
                        "top_logprobs": [{"token": a, "logprob": lp} for a, lp in t.top_logprobs],
                    }
                    for t in generation.logprobs
                ]
            }
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": generation.text},
                    "logprobs": logprobs,
                    "finish_reason": generation.finish_reason or "stop",
                }
            ],
            "usage": {
                "prompt_tokens": generation.prompt_tokens,
                "completion_tokens": generation.completion_tokens,
                "total_tokens": generation.prompt_tokens + generation.completion_tokens,
            },
        }

    def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """One completion (blocking)."""
        return run_sync(self.achat(messages, **kwargs))

    def chat_stream(
        self, messages: Sequence[Mapping[str, Any]], *, include_usage: bool = False, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """The completion as ``chat.completion.chunk`` dicts."""
        reply = self.chat(messages, **kwargs)
        choice = reply["choices"][0]
        head = {
            "id": reply["id"],
            "object": "chat.completion.chunk",
            "created": reply["created"],
            "model": reply["model"],
        }
        delta = {"role": "assistant", "content": choice["message"]["content"]}
        yield {**head, "choices": [{"index": 0, "delta": delta, "logprobs": choice["logprobs"], "finish_reason": None}]}
        yield {
            **head,
            "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": choice["finish_reason"]}],
        }
        if include_usage:
            yield {**head, "choices": [], "usage": reply["usage"]}
