"""Public entry points: `patch`, `route`, `unpatch`, `patch_all`, `unpatch_all`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import InvalidOptionError, PatchError
from ..options import QualityPreset, Task, TLMOptions
from ..policy import TrustPolicy
from ..scorers.base import Scorer
from ..scorers.function import FunctionScorer
from ..scorers.logprob import LogprobScorer
from .config import HookConfig
from .families import FAMILIES
from .family import HookFamily
from .registry import REGISTRY

__all__ = ["patch", "route", "unpatch", "patch_all", "unpatch_all", "is_patched"]

logger = logging.getLogger("tlm_hooks")

C = TypeVar("C")


def _family_of(obj: Any) -> HookFamily | None:
    for family in FAMILIES:
        if family.claims(obj):
            return family
    return None


def _claimed(obj: Any) -> HookFamily:
    family = _family_of(obj)
    if family is None:
        supported = [f.supported for f in FAMILIES]
        expected = ", ".join(supported[:-1]) + ", or " + supported[-1] if len(supported) > 1 else supported[0]
        raise PatchError(f"cannot hook {type(obj).__module__}.{type(obj).__qualname__}: expected {expected}")
    return family


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


def _register(client: Any, config: HookConfig) -> None:
    family = _claimed(client)
    with REGISTRY.lock:
        family.register(client, config)


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
    family = _claimed(client)
    with REGISTRY.lock:
        return family.unregister(client)


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

    ``sdks`` names them (``"openai"``, ``"azure"``; ``"llamaindex"`` hooks every LlamaIndex LLM);
    by default every supported SDK that is installed. A client's own :func:`patch`/:func:`route`
    configuration takes precedence.
    """
    chosen = _options(options, quality_preset, task)
    config = HookConfig("score", policy or TrustPolicy(), _scorer_for(scorer, chosen), chosen)
    if sdks is None:
        families = [f for f in FAMILIES if f.in_patch_all and f.available()]
    else:
        by_name = {f.name: f for f in FAMILIES}
        for sdk in sdks:
            if sdk not in by_name:
                raise PatchError(f"unknown sdk {sdk!r}: allowed {', '.join(map(repr, by_name))}")
        families = [by_name[sdk] for sdk in sdks]
    with REGISTRY.lock:
        for family in families:
            family.install_global(config)


def unpatch_all() -> None:
    """Unhook every client and put back every original method."""
    with REGISTRY.lock:
        for family in FAMILIES:
            family.uninstall_all()
        REGISTRY.clear()


def is_patched(client: Any) -> bool:
    """True when calls of ``client`` are hooked (by :func:`patch`, :func:`route` or :func:`patch_all`)."""
    family = _family_of(client)
    return family is not None and family.is_registered(client)
