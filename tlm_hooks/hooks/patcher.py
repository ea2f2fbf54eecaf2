"""Installing and removing the class-level wrappers, from one declared table of targets.

Wrappers are installed on the SDK's classes once, while at least one client (or ``patch_all``)
is hooked; each call looks its client up in the registry, so unhooked clients pay one dict
lookup. Originals are stored and put back exactly on removal.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

import wrapt

from .guard import is_unhooked
from .pipeline import call_async, call_sync
from .registry import REGISTRY

__all__ = ["Target", "TARGETS", "ADAPTER_MODULES", "install", "uninstall", "installed", "adapter_for"]

logger = logging.getLogger("tlm_hooks")

Kind = Literal["sync", "async", "copy"]


@dataclass(frozen=True)
class Target:
    """One method to wrap: ``module.owner.attr``; ``kind`` says how (``async`` is declared, not
    detected: the SDK's ``AsyncCompletions.create`` does not look like a coroutine function)."""

    sdk: str
    module: str
    owner: str
    attr: str
    kind: Kind
    adapter: str | None = None  # the adapter module, when not the sdk's (ADAPTER_MODULES)


_CHAT = "openai.resources.chat.completions.completions"
_RESPONSES = "tlm_hooks.adapters.openai_responses"
_RESPONSES_MODULE = "openai.resources.responses.responses"
# kept in step with tlm_hooks.adapters.openai_responses.TARGETS (a test checks), which cannot be
# imported here without importing openai
_RESPONSES_TARGETS: tuple[tuple[str, str, str, str], ...] = (
    (_RESPONSES_MODULE, "Responses", "create", "sync"),
    (_RESPONSES_MODULE, "Responses", "parse", "sync"),
    (_RESPONSES_MODULE, "AsyncResponses", "create", "async"),
    (_RESPONSES_MODULE, "AsyncResponses", "parse", "async"),
)
TARGETS: tuple[Target, ...] = (
    Target("openai", _CHAT, "Completions", "create", "sync"),
    Target("openai", _CHAT, "Completions", "parse", "sync"),
    Target("openai", _CHAT, "AsyncCompletions", "create", "async"),
    Target("openai", _CHAT, "AsyncCompletions", "parse", "async"),
    # clients derived with copy()/with_options() inherit their parent's hook
    Target("openai", "openai", "OpenAI", "copy", "copy"),
    Target("openai", "openai", "OpenAI", "with_options", "copy"),
    Target("openai", "openai", "AsyncOpenAI", "copy", "copy"),
    Target("openai", "openai", "AsyncOpenAI", "with_options", "copy"),
    Target("openai", "openai.lib.azure", "AzureOpenAI", "copy", "copy"),
    Target("openai", "openai.lib.azure", "AzureOpenAI", "with_options", "copy"),
    Target("openai", "openai.lib.azure", "AsyncAzureOpenAI", "copy", "copy"),
    Target("openai", "openai.lib.azure", "AsyncAzureOpenAI", "with_options", "copy"),
    *(
        Target("openai", module, owner, attr, kind, _RESPONSES)  # type: ignore[arg-type]
        for module, owner, attr, kind in _RESPONSES_TARGETS
    ),
    Target("azure", "azure.ai.inference", "ChatCompletionsClient", "complete", "sync"),
    Target("azure", "azure.ai.inference.aio", "ChatCompletionsClient", "complete", "async"),
)

ADAPTER_MODULES: dict[str, str] = {"openai": "tlm_hooks.adapters.openai", "azure": "tlm_hooks.adapters.azure"}

# target -> (owner class, the object that was in its __dict__ before wrapping)
_ORIGINALS: dict[Target, tuple[type, Any]] = {}
_INSTALLED: set[str] = set()


def adapter_for(sdk: str) -> Any:
    """The adapter object of ``sdk`` (imports the SDK)."""
    return importlib.import_module(ADAPTER_MODULES[sdk]).ADAPTER


def _call_wrapper(adapter: Any, run: Any) -> Any:
    """A wrapper that hands hooked calls to ``run`` (``call_sync`` or ``call_async``) and lets
    every other call through untouched. Not ``async def``: an unhooked async call returns the
    SDK's own coroutine, and a hooked one the coroutine of ``call_async``."""

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if is_unhooked():
            return wrapped(*args, **kwargs)
        config = REGISTRY.lookup(adapter.client_of(instance), adapter.sdk)
        if config is None:
            return wrapped(*args, **kwargs)
        bind = getattr(adapter, "bind_call", None)  # optional: the adapter's own form of the arguments
        if bind is not None:
            args, kwargs = bind(instance, args, kwargs)
        return run(config, adapter, wrapped, args, kwargs)

    return wrapper


def _copy_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    new = wrapped(*args, **kwargs)
    try:
        config = REGISTRY.own(instance)
        if config is not None and new is not instance:
            REGISTRY.set_client(new, config)
    except Exception as exc:  # never break copy()
        logger.warning("tlm-hooks: could not carry the hook over to a copied client: %s", exc)
    return new


def install(sdk: str) -> None:
    """Wrap every target of ``sdk`` (idempotent; callers hold ``REGISTRY.lock``)."""
    if sdk in _INSTALLED:
        return
    makers_of: dict[str | None, dict[str, Any]] = {}

    def makers_for(module: str | None) -> dict[str, Any]:
        if module not in makers_of:
            adapter = adapter_for(sdk) if module is None else importlib.import_module(module).ADAPTER
            makers_of[module] = {"sync": _call_wrapper(adapter, call_sync), "async": _call_wrapper(adapter, call_async), "copy": _copy_wrapper}
        return makers_of[module]

    makers_for(None)  # the sdk's own adapter: a missing SDK raises here, as it always has
    for target in TARGETS:
        if target.sdk != sdk:
            continue
        try:
            makers = makers_for(target.adapter)
            owner = getattr(importlib.import_module(target.module), target.owner)
            if target.attr not in vars(owner):  # inherited: the base class's wrapper covers it
                continue
            _ORIGINALS[target] = (owner, vars(owner)[target.attr])
            wrapt.wrap_function_wrapper(owner, target.attr, makers[target.kind])
        except Exception as exc:  # one missing target (SDK version drift) must not stop the rest
            logger.warning("tlm-hooks: cannot patch %s.%s.%s: %s", target.module, target.owner, target.attr, exc)
    _INSTALLED.add(sdk)


def uninstall(sdk: str) -> None:
    """Put back the stored originals of ``sdk``'s targets (callers hold ``REGISTRY.lock``)."""
    if sdk not in _INSTALLED:
        return
    for target, (owner, original) in list(_ORIGINALS.items()):
        if target.sdk == sdk:
            setattr(owner, target.attr, original)
            del _ORIGINALS[target]
    _INSTALLED.discard(sdk)


def installed(sdk: str) -> bool:
    return sdk in _INSTALLED
