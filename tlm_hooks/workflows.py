"""Score a completion you already have (Workflow 1): no patching involved."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._guard import unhooked
from .options import QualityPreset, Task, TLMOptions, as_tlm_options
from .policy import DEFAULT_SCORE_TIMEOUT, check_score_timeout
from .scorers.base import Scorer

__all__ = ["score_completion", "ascore_completion"]


def _prepare(
    response: Any, scorer: Scorer | Callable[..., Any] | None, chosen: TLMOptions, create_kwargs: Mapping[str, Any]
) -> tuple[Scorer, Any]:
    from .hooks.api import _scorer_for

    module = type(response).__module__ or ""
    if not module.startswith("openai"):
        raise TypeError(f"score_completion reads openai chat completions, got {type(response).__name__}")
    from .adapters.openai import ADAPTER as adapter  # the SDK is loaded: `response` is one of its objects

    if adapter.kind(response) != "completion":
        raise TypeError(f"score_completion needs a ChatCompletion (not a stream), got {type(response).__name__}")
    active = _scorer_for(scorer, chosen)  # before reading the response: bad options fail first
    return active, adapter.score_request(create_kwargs, response, chosen)


def score_completion(
    response: Any,
    *,
    scorer: Scorer | Callable[..., Any] | None = None,
    quality_preset: QualityPreset | None = None,
    task: Task | None = None,
    options: TLMOptions | Mapping[str, Any] | None = None,
    score_timeout: float | None = DEFAULT_SCORE_TIMEOUT,
    **create_kwargs: Any,
) -> dict[str, Any]:
    """Score an existing ``ChatCompletion`` given the ``create()`` arguments that produced it.

    Returns the ``tlm_metadata`` dict (``{"trustworthiness_score": ..., "log": {...}}``);
    ``response`` is not modified. ``quality_preset``, ``task`` and ``options`` are read as by
    :func:`tlm_hooks.patch` (``options``: a dict of option keys or a ``TLMOptions``). The scorer is chosen as by
    :func:`tlm_hooks.patch`: ``LogprobScorer`` unless ``options`` ask for more (a preset above
    ``base``, a task, options other than ``log``), then ``TLMScorer`` at that preset, judging with
    ``options.model`` or else the embedded model. Scorer errors raise here, and so does a score
    that takes longer than ``score_timeout`` seconds (``ScoringTimeout``, a ``TimeoutError``;
    ``None``: no limit).
    """
    from .hooks.deadline import score_within  # the scoring machinery loads on first use

    check_score_timeout(score_timeout)
    chosen = as_tlm_options(quality_preset, task, options)
    active, request = _prepare(response, scorer, chosen, create_kwargs)
    with unhooked():
        return score_within(active, request, score_timeout).to_dict()


async def ascore_completion(
    response: Any,
    *,
    scorer: Scorer | Callable[..., Any] | None = None,
    quality_preset: QualityPreset | None = None,
    task: Task | None = None,
    options: TLMOptions | Mapping[str, Any] | None = None,
    score_timeout: float | None = DEFAULT_SCORE_TIMEOUT,
    **create_kwargs: Any,
) -> dict[str, Any]:
    """Async form of :func:`score_completion`."""
    from .hooks.deadline import ascore_within

    check_score_timeout(score_timeout)
    chosen = as_tlm_options(quality_preset, task, options)
    active, request = _prepare(response, scorer, chosen, create_kwargs)
    with unhooked():
        return (await ascore_within(active, request, score_timeout)).to_dict()
