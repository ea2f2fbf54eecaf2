"""Public entry points: `patch`, `route`, `unpatch`, `patch_all`, `unpatch_all`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import InvalidOptionError, PatchError
from ..options import QualityPreset, Task, TLMOptions
from ..policy import TrustPolicy
from ..scorers.base import Scorer
from ..scorers.function import FunctionScorer
from ..scorers.logprob import LogprobScorer
from .config import HookConfig
from .patcher import ADAPTER_MODULES, adapter_for, install, uninstall
from .registry import REGISTRY

__all__ = ["patch", "route", "unpatch", "patch_all", "unpatch_all", "is_patched"]

logger = logging.getLogger("tlm_hooks")

C = TypeVar("C")

_SUPPORTED = (
    "an OpenAI, AsyncOpenAI, AzureOpenAI or AsyncAzureOpenAI client, or an azure.ai.inference "
    "ChatCompletionsClient (sync or aio), or a LlamaIndex LLM (instance or class)"
)


def _sdk_of(client: Any) -> str:
    for cls in type(client).__mro__:
        root = (cls.__module__ or "").split(".")[0]
        if root in ADAPTER_MODULES:
            adapter = adapter_for(root)
            if adapter.is_client(client):
                return root
    raise PatchError(f"cannot hook {type(client).__module__}.{type(client).__qualname__}: expected {_SUPPORTED}")


def _as_scorer(scorer: Scorer | Callable[..., Any] | None) -> Scorer:
    if scorer is None:
        return LogprobScorer()
    if isinstance(scorer, Scorer):
        return scorer
    if callable(scorer):
        return FunctionScorer(scorer)
    raise PatchError(f"scorer must be a Scorer or a function(request) -> score, got {type(scorer).__name__}")


def _beyond_logprobs(options: TLMOptions) -> tuple[str, Any] | None:
    """The first setting in ``options`` that ``LogprobScorer`` cannot honour, as ``(key, value)``.

    It scores token probabilities only (the ``base`` preset's signal) and writes an explanation
    for ``log``; presets above ``base``, a task and every other option need the engine.
    """
    if options.quality_preset not in (None, "base"):
        return "quality_preset", options.quality_preset
    if options.task not in (None, "default"):
        return "task", options.task
    for key, value in options.options.items():
        if key != "log":
            return f"options.{key}", "***" if key == "model_provider" else value
    return None


def _scorer_for(scorer: Scorer | Callable[..., Any] | None, options: TLMOptions) -> Scorer:
    """The scorer that honours ``options``: with no ``scorer``, ``TLMScorer`` when they ask for
    more than token probabilities (else ``LogprobScorer``); a ``LogprobScorer`` given with such
    options is refused. Other scorers receive the options as ``request.options``."""
    needs = _beyond_logprobs(options)
    if scorer is None and needs is not None:
        from ..scorers.tlm import TLMScorer

        return TLMScorer(options.quality_preset or "medium", options.task or "default", options.options)
    active = _as_scorer(scorer)
    if needs is not None and isinstance(active, LogprobScorer):
        key, value = needs
        preset = options.quality_preset or "medium"
        raise InvalidOptionError(
            key,
            value,
            "nothing beyond quality_preset='base' and options.log with LogprobScorer, which scores token "
            f"probabilities only: for this, pass scorer=TLMScorer({preset!r}, ...) or leave scorer unset "
            f"(then TLMScorer({preset!r}) is used)",
        )
    return active


def _options(options: TLMOptions | Mapping[str, Any] | None, quality_preset: Any, task: Any) -> TLMOptions:
    if isinstance(options, TLMOptions):
        if quality_preset is not None or task is not None:
            return TLMOptions(quality_preset or options.quality_preset, task or options.task, options.options)
        return options
    return TLMOptions(quality_preset, task, options or {})


# -- LlamaIndex LLMs (instances or classes) are hooked by tlm_hooks.integrations.llamaindex --
def _llamaindex(obj: Any) -> Any:
    """Its patching module when ``obj`` is a LlamaIndex LLM or LLM class, else None (imports nothing)."""
    from ..integrations.llamaindex._detect import patcher_for

    return patcher_for(obj)


# -- litellm (the module and Routers) is hooked by tlm_hooks.integrations.litellm --
def _litellm(obj: Any) -> Any:
    """The litellm hook family when ``obj`` is the litellm module or a Router, else None."""
    if "litellm" not in sys.modules:
        return None
    from ..integrations.litellm.patching import FAMILY

    return FAMILY if FAMILY.claims(obj) else None


def _register(client: Any, config: HookConfig) -> None:
    if (family := _litellm(client)) is not None:
        family.register(client, config)
        return
    if (llamaindex := _llamaindex(client)) is not None:
        llamaindex.register(client, config)
        return
    sdk = _sdk_of(client)
    with REGISTRY.lock:
        install(sdk)
        REGISTRY.set_client(client, config)
        adapter_for(sdk).forget_cached_wrappers(client)


def patch(
    client: C,
    *,
    scorer: Scorer | Callable[..., Any] | None = None,
    policy: TrustPolicy | None = None,
    quality_preset: QualityPreset | None = None,
    task: Task | None = None,
    options: TLMOptions | Mapping[str, Any] | None = None,
) -> C:
    """Score every chat completion of ``client`` and attach ``tlm_metadata``; returns ``client``.

    ``scorer`` defaults to :class:`LogprobScorer` (no extra LLM call), or to ``TLMScorer`` when
    ``quality_preset``/``task``/``options`` ask for more than token probabilities; a plain
    function ``fn(request) -> float`` is accepted too. ``options`` (validated now) reach the
    scorer as ``request.options``. Patching again replaces the configuration; it never wraps twice.
    """
    chosen = _options(options, quality_preset, task)
    config = HookConfig("score", policy or TrustPolicy(), _scorer_for(scorer, chosen), chosen)
    _register(client, config)
    return client


def route(
    client: C,
    *,
    quality_preset: QualityPreset | None = None,
    task: Task | None = None,
    options: TLMOptions | Mapping[str, Any] | None = None,
    policy: TrustPolicy | None = None,
) -> C:
    """Send TLM options with every request of ``client`` (a client whose ``base_url`` is a TLM
    backend) in ``extra_body`` (``model_extras`` for Azure AI Inference), read the backend's
    ``tlm_metadata``, apply ``policy``.

    The caller's own ``extra_body``/``model_extras`` is deep-merged over ours: what the caller passes wins.
    """
    config = HookConfig("route", policy or TrustPolicy(), None, _options(options, quality_preset, task))
    _register(client, config)
    return client


def unpatch(client: Any) -> bool:
    """Stop hooking ``client`` (patched or routed); returns whether it was hooked."""
    if (family := _litellm(client)) is not None:
        return family.unregister(client)  # type: ignore[no-any-return]
    if (llamaindex := _llamaindex(client)) is not None:
        return llamaindex.unregister(client)  # type: ignore[no-any-return]
    sdk = _sdk_of(client)
    adapter = adapter_for(sdk)
    with REGISTRY.lock:
        removed = REGISTRY.remove_client(client)
        if not REGISTRY.in_use(sdk, adapter.is_client):
            uninstall(sdk)
    return removed


def patch_all(
    *,
    scorer: Scorer | Callable[..., Any] | None = None,
    policy: TrustPolicy | None = None,
    quality_preset: QualityPreset | None = None,
    task: Task | None = None,
    options: TLMOptions | Mapping[str, Any] | None = None,
    sdks: tuple[str, ...] | None = None,
) -> None:
    """Score every client of the supported SDKs in this process, existing and future ones.

    ``sdks`` names them (``"openai"``, ``"azure"``); by default every supported SDK that is
    installed. A client's own :func:`patch`/:func:`route` configuration takes precedence.
    """
    chosen = _options(options, quality_preset, task)
    config = HookConfig("score", policy or TrustPolicy(), _scorer_for(scorer, chosen), chosen)
    from ..integrations.litellm.patching import FAMILY as LITELLM

    if sdks is None:
        sdks = tuple(sdk for sdk in ADAPTER_MODULES if _importable(sdk))
        sdks += ("litellm",) if LITELLM.available() else ()
    for sdk in sdks:
        if sdk not in ADAPTER_MODULES and sdk != "litellm":
            allowed = ", ".join(map(repr, (*ADAPTER_MODULES, "litellm")))
            raise PatchError(f"unknown sdk {sdk!r}: allowed {allowed}")
    if "litellm" in sdks:
        LITELLM.install_global(config)
        sdks = tuple(sdk for sdk in sdks if sdk != "litellm")
    with REGISTRY.lock:
        for sdk in sdks:
            install(sdk)
            REGISTRY.set_global(sdk, config)
        _forget_cached_wrappers_of_live_clients(sdks)


def _forget_cached_wrappers_of_live_clients(sdks: tuple[str, ...]) -> None:
    """Do for every client that already exists what :func:`patch` does for its one client: drop
    the raw-response wrappers it cached before the patch (they hold the unpatched method). The
    clients are found with one pass over the garbage collector's objects (once per ``patch_all``)."""
    import gc

    adapters = [adapter_for(sdk) for sdk in sdks]
    classes = tuple(cls for adapter in adapters for cls in getattr(adapter, "client_classes", ()))
    if not classes:
        return
    # by exact type, cached per type: isinstance() would read `__class__`, which makes lazy proxies
    # (openai's module-level client) load what they stand for
    is_client: dict[type, bool] = {}
    for obj in gc.get_objects():
        kind = type(obj)
        hit = is_client.get(kind)
        if hit is None:
            hit = is_client[kind] = issubclass(kind, classes)
        if hit:
            for adapter in adapters:
                if adapter.is_client(obj):
                    adapter.forget_cached_wrappers(obj)


def _importable(sdk: str) -> bool:
    try:
        adapter_for(sdk)
    except ImportError:
        return False
    return True


def unpatch_all() -> None:
    """Unhook every client and put back every original method."""
    with REGISTRY.lock:
        REGISTRY.clear()
        from ..integrations.llamaindex._detect import loaded_patcher

        if (llamaindex := loaded_patcher()) is not None:
            llamaindex.unpatch_all()
        if (litellm := sys.modules.get("tlm_hooks.integrations.litellm.patching")) is not None:
            litellm.FAMILY.uninstall_all()
        for sdk in ADAPTER_MODULES:
            uninstall(sdk)


def is_patched(client: Any) -> bool:
    """True when calls of ``client`` are hooked (by :func:`patch`, :func:`route` or :func:`patch_all`)."""
    if (family := _litellm(client)) is not None:
        return family.is_registered(client)  # type: ignore[no-any-return]
    if (llamaindex := _llamaindex(client)) is not None:
        return llamaindex.is_registered(client)  # type: ignore[no-any-return]
    try:
        sdk = _sdk_of(client)
    except PatchError:
        return False
    return REGISTRY.lookup(client, sdk) is not None
