"""Adapter for decorated functions: the request comes from the call's arguments, the response
is a string or an SDK completion (then the SDK's adapter handles it)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..options import TLMOptions
from ..types import ScoreRequest, TrustResult
from .base import Adapter, ResultKind
from .text import TrustedText, attach_text

__all__ = ["FunctionAdapter", "PromptFrom"]

PromptFrom = Callable[[Mapping[str, Any]], "str | Sequence[Mapping[str, Any]]"]

NO_PROMPT = (
    "cannot find the prompt of this call: the function needs a `messages` or `prompt` argument "
    "or a str positional argument; otherwise pass trust_scored(prompt_from=lambda args: ...)"
)


def _sdk_adapter(result: Any) -> Adapter | None:
    module = type(result).__module__ or ""
    if module.startswith("openai"):
        from .openai import ADAPTER

        return ADAPTER  # type: ignore[return-value]
    return None


class FunctionAdapter:
    """Per-call adapter for a function decorated with ``trust_scored``."""

    sdk = "function"

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], prompt_from: PromptFrom | None) -> None:
        try:
            bound = inspect.signature(fn).bind_partial(*args, **kwargs)
            self.arguments: dict[str, Any] = dict(bound.arguments)
            for name, param in inspect.signature(fn).parameters.items():
                if param.kind is inspect.Parameter.VAR_KEYWORD and name in self.arguments:
                    self.arguments.update(self.arguments.pop(name))
        except (TypeError, ValueError):
            self.arguments = dict(kwargs)
        self.positional = args
        self.prompt_from = prompt_from

    def _inner(self, response: Any) -> Adapter:
        adapter = _sdk_adapter(response)
        if adapter is None:
            raise TypeError(f"trust_scored: cannot read a {type(response).__name__} result (allowed: str or an SDK completion)")
        return adapter

    def client_of(self, resource: Any) -> Any:
        """For a decorated SDK method (``client.chat.completions.create``): its client."""
        return getattr(resource, "_client", None)

    # -- requests --------------------------------------------------------------------------

    def model_of(self, kwargs: Mapping[str, Any]) -> str | None:
        model = kwargs.get("model")
        return model if isinstance(model, str) else None

    def prepare_kwargs(
        self, kwargs: Mapping[str, Any], *, client: Any, route_body: Any, add_logprobs: bool
    ) -> tuple[dict[str, Any], frozenset[str]]:
        return dict(kwargs), frozenset()

    def without(self, kwargs: Mapping[str, Any], added: frozenset[str]) -> dict[str, Any]:
        return dict(kwargs)

    def rejects(self, exc: BaseException, param: str) -> bool:
        return False

    def single_call_kwargs(self, kwargs: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        return {**kwargs, **overrides}

    def call_client(self, client: Any, kwargs: Mapping[str, Any]) -> Any:
        raise TypeError("Escalate(client=...) needs a hooked SDK client; on a decorated function use Escalate(model=...)")

    def _prompt(self) -> tuple[tuple[Mapping[str, Any], ...] | None, str | None]:
        if self.prompt_from is not None:
            found = self.prompt_from(self.arguments)
            return (None, found) if isinstance(found, str) else (tuple(found), None)
        messages = self.arguments.get("messages")
        if isinstance(messages, Sequence) and not isinstance(messages, str):
            return tuple(messages), None
        prompt = self.arguments.get("prompt")
        if isinstance(prompt, str):
            return None, prompt
        for value in (*self.positional, *self.arguments.values()):
            if isinstance(value, str):
                return None, value
        raise ValueError(NO_PROMPT)

    def score_request(
        self, kwargs: Mapping[str, Any], response: Any, options: TLMOptions | None, source_client: Any = None
    ) -> ScoreRequest:
        messages, prompt = self._prompt()
        if isinstance(response, str):
            model = self.arguments.get("model")
            return ScoreRequest(
                response=str(response), messages=messages, prompt=prompt, options=options,
                model=model if isinstance(model, str) else None, source_client=source_client,
            )
        base = self._inner(response).score_request(
            {**self.arguments, "messages": messages}, response, options, source_client
        )
        if messages is None:
            from dataclasses import replace

            return replace(base, messages=None, prompt=prompt)
        return base

    # -- responses --------------------------------------------------------------------------

    def kind(self, result: Any) -> ResultKind:
        if isinstance(result, str):
            return "completion"
        adapter = _sdk_adapter(result)
        return adapter.kind(result) if adapter is not None else "other"

    def parse_raw(self, raw: Any) -> Any:
        return self._inner(raw).parse_raw(raw)

    def text_of(self, response: Any) -> str:
        return str(response) if isinstance(response, str) else self._inner(response).text_of(response)

    def with_text(self, response: Any, text: str) -> Any:
        if isinstance(response, str):
            return TrustedText(text, getattr(response, "tlm_metadata", None))
        return self._inner(response).with_text(response, text)

    def read_metadata(self, response: Any) -> Mapping[str, Any] | None:
        return None if isinstance(response, str) else self._inner(response).read_metadata(response)

    def attach(self, response: Any, result: TrustResult) -> Any:
        if isinstance(response, str):
            return attach_text(response, result)
        return self._inner(response).attach(response, result)

    def accumulate(self, chunks: Sequence[Any]) -> Any:
        return self._inner(chunks[0]).accumulate(chunks) if chunks else TrustedText("")

    def text_chunk(self, template: Any, text: str) -> Any:
        return self._inner(template).text_chunk(template, text)
