"""Which model answers one request: the server's own, or the one ``options.model`` /
``options.model_provider`` names (for generating AND judging, as TLM's options mean).

- The server's model (``--model local``/a GGUF path) answers ``options.model`` naming it (or
  ``local``); a name matching an ``--allow-model`` pattern goes to that model through litellm
  (with the server's provider keys, so only patterns the operator allowed).
- ``--model-alias NAME=TARGET`` sends ``options.model=NAME`` to ``TARGET`` (any of the above).
- Any other name is answered by the server's own model, and the reply says so (``--strict-models``:
  refused with a 400 instead). Clients such as ``cleanlab-tlm`` always send a model name.
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
    """The generator for one request and the model name to ask it for (``None``: its default).

    ``asked`` is the ``options.model`` the request named when another model answers it (an
    alias, or the server's own model in place of one it does not serve).
    """

    model: Any  # a ChatModel
    name: str | None
    owned: bool = False  # made for this request only: close it when the reply is done
    asked: str | None = None
    alias: bool = False

    @property
    def answered_by(self) -> str:
        """The name of the model that answers (for the reply's header, ``model`` and log)."""
        return self.name or str(getattr(self.model, "name", None) or "unknown")

    @property
    def warning(self) -> str | None:
        """The ``log.warnings`` line when the request named another model than the one answering."""
        if self.asked is None:
            return None
        if self.alias:
            return f"options.model {self.asked!r} is answered by {self.answered_by!r} (a --model-alias of this server)"
        return f"options.model {self.asked!r} is not served here; answered by {self.answered_by!r}"


@dataclass(frozen=True)
class ModelPolicy:
    """What requests may choose: ``allowed`` litellm model patterns, ``aliases`` (name -> target),
    ``model_provider``; ``strict`` refuses names not served instead of answering them."""

    allowed: Sequence[str] = ()
    allow_model_provider: bool = False
    aliases: Mapping[str, str] = field(default_factory=dict)
    strict: bool = False
    _cache: OrderedDict[str, Any] = field(default_factory=OrderedDict, compare=False, repr=False)

    def check_aliases(self, base: Any) -> None:
        """Raise ``ValueError`` naming an alias whose target this server cannot serve."""
        forwards, fixed = _serving(base)
        for name, target in self.aliases.items():
            if not name or not target:
                raise ValueError(f"--model-alias {name}={target}: expected NAME=TARGET, both non-empty")
            if forwards and not fixed:
                continue
            if target == fixed or (not forwards and target in LOCAL_ALIASES) or self._admits(target):
                continue
            raise ValueError(
                f"--model-alias {name}={target}: the target must be {', '.join(self._served(base))} "
                "or match an --allow-model pattern"
            )

    def choose(self, base: Any, options: TLMOptions | None, request_model: str | None) -> ModelChoice:
        """The model for a request to a server whose own model is ``base``; 400 when not allowed."""
        settings = options.options if options is not None else {}
        wanted = settings.get("model")
        provider = settings.get("model_provider")
        if provider:
            if not self.allow_model_provider:
                raise ApiError(
                    400,
                    "options.model_provider is not accepted by this server (start it with --allow-model-provider)",
                    "options.model_provider",
                )
            return _provider_choice(provider, wanted or request_model)
        forwards, fixed = _serving(base)
        if wanted is None:
            return ModelChoice(base, request_model if forwards else None)
        target = self.aliases.get(wanted, wanted)
        asked, alias = (wanted, True) if target != wanted else (None, False)
        if forwards and not fixed:
            return ModelChoice(base, target, asked=asked, alias=alias)
        if target == fixed or (not forwards and target in LOCAL_ALIASES):
            return ModelChoice(base, target if forwards else None, asked=asked, alias=alias)
        if self._admits(target):
            return ModelChoice(self._litellm(target), None, asked=asked, alias=alias)
        if self.strict:
            allowed = [*self._served(base), *map(repr, self.allowed), *(f"{n!r} (alias)" for n in self.aliases)]
            raise ApiError(
                400,
                f"options.model={wanted!r} is not served here: allowed {', '.join(allowed)} "
                "(the operator can allow more with --allow-model or --model-alias)",
                "options.model",
            )
        return ModelChoice(base, fixed if forwards else None, asked=wanted)

    def _admits(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.allowed)

    @staticmethod
    def _served(base: Any) -> list[str]:
        forwards, fixed = _serving(base)
        return [repr(fixed), *(() if forwards else map(repr, LOCAL_ALIASES))]

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


def _serving(base: Any) -> tuple[bool, str | None]:
    """(does ``base`` take a model name per request, the one name it serves when fixed)."""
    forwards = bool(getattr(base, "accepts_model_name", False))
    fixed = getattr(base, "model", None) if forwards else getattr(base, "name", None)
    return forwards, fixed


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
