"""`HookConfig`: what a hooked client does with each call (score or route, and the policy)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..options import TLMOptions
from ..policy import TrustPolicy
from ..scorers.base import Scorer

__all__ = ["HookConfig", "Mode"]

Mode = Literal["score", "route"]


@dataclass(frozen=True)
class HookConfig:
    """``score``: ``scorer`` scores each answer. ``route``: ``options`` go to a TLM backend
    in each request and its ``tlm_metadata`` is read back. ``policy`` acts on the result."""

    mode: Mode
    policy: TrustPolicy = field(default_factory=lambda: TrustPolicy())
    scorer: Scorer | None = None
    options: TLMOptions = field(default_factory=TLMOptions)
    # the body merged into each routed request, built once (adapters copy it per call)
    route_body: Mapping[str, Any] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "route_body", self.options.to_body() if self.mode == "route" else None)

    @property
    def wants_logprobs(self) -> bool:
        return self.mode == "score" and bool(getattr(self.scorer, "wants_logprobs", False))
