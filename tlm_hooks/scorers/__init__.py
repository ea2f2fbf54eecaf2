"""Scorers: turn a prompt and a response into a `TrustResult`."""

from .base import BaseScorer, Scorer
from .function import FunctionScorer
from .logprob import LogprobScorer

__all__ = ["Scorer", "BaseScorer", "FunctionScorer", "LogprobScorer"]
