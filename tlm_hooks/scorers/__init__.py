"""Scorers: turn a prompt and a response into a `TrustResult`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import BaseScorer, Scorer
from .function import FunctionScorer
from .logprob import LogprobScorer

if TYPE_CHECKING:
    from .tlm import TLMScorer

__all__ = ["Scorer", "BaseScorer", "FunctionScorer", "LogprobScorer", "TLMScorer"]


def __getattr__(name: str) -> Any:
    # the engine (and the judge backends it brings) loads on first use, not with the package
    if name == "TLMScorer":
        from .tlm import TLMScorer

        return TLMScorer
    raise AttributeError(f"module 'tlm_hooks.scorers' has no attribute {name!r}")
