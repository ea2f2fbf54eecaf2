"""Decorators for code that doesn't hand us a client: `trust_scored` and `with_tlm_options`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ._guard import is_unhooked
from .adapters.function import FunctionAdapter, PromptFrom
from .hooks.config import HookConfig
from .options import QualityPreset, Task, TLMOptions, as_tlm_options, deep_merge
from .policy import TrustPolicy
from .scorers.base import Scorer

__all__ = ["trust_scored", "with_tlm_options"]

F = TypeVar("F", bound=Callable[..., Any])


def _client_of(adapter: FunctionAdapter, fn: Callable[..., Any]) -> Any:
    """The SDK client behind a decorated bound method (``client.chat.completions.create``), else None."""
    source = getattr(fn, "__self__", None)
    return adapter.client_of(source) if source is not None else None


def trust_scored(
    *,
    scorer: Scorer | Callable[..., Any] | None = None,
    policy: TrustPolicy | None = None,
    quality_preset: QualityPreset | None = None,
    task: Task | None = None,
    options: TLMOptions | Mapping[str, Any] | None = None,
    prompt_from: PromptFrom | None = None,
) -> Callable[[F], F]:
    """Score what a function returns: a string (returned as a ``str`` subclass carrying
    ``tlm_metadata``), an SDK completion (``tlm_metadata`` attached) or an SDK stream.

    The prompt is the call's ``messages`` or ``prompt`` argument (positional or keyword), else
    its first string argument, else what ``prompt_from(arguments)`` returns. Works on sync and
    ``async def`` functions; the function is called exactly once per call.
    """
    from .hooks.api import _options, _scorer_for
    from .hooks.pipeline import HookedCall, finish_async, finish_sync  # loads the hook machinery on first use

    chosen = _options(options, quality_preset, task)
    config = HookConfig("score", policy or TrustPolicy(), _scorer_for(scorer, chosen), chosen)

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                if is_unhooked():
                    return await fn(*args, **kwargs)
                adapter = FunctionAdapter(fn, args, kwargs, prompt_from)
                call = HookedCall(config, adapter, _client_of(adapter, fn), fn, args, kwargs, is_async=True)
                return await finish_async(call, await call.ainvoke())

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if is_unhooked():
                return fn(*args, **kwargs)
            adapter = FunctionAdapter(fn, args, kwargs, prompt_from)
            call = HookedCall(config, adapter, _client_of(adapter, fn), fn, args, kwargs, is_async=False)
            return finish_sync(call, call.invoke())

        return wrapper  # type: ignore[return-value]

    return decorate


def with_tlm_options(
    *,
    quality_preset: QualityPreset | None = None,
    task: Task | None = None,
    options: TLMOptions | Mapping[str, Any] | None = None,
) -> Callable[[F], F]:
    """Add TLM options to every call's ``extra_body`` (for a ``create`` that talks to a TLM
    backend). Options are validated here, once; the caller's own ``extra_body`` is deep-merged
    over them (what the caller passes wins) and never modified."""
    body = as_tlm_options(quality_preset, task, options).to_body()

    def merged(kwargs: dict[str, Any]) -> dict[str, Any]:
        caller = kwargs.get("extra_body")
        return {**kwargs, "extra_body": deep_merge(body, caller) if isinstance(caller, Mapping) else deep_merge(body, {})}

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await fn(*args, **merged(kwargs))

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **merged(kwargs))

        return wrapper  # type: ignore[return-value]

    return decorate
