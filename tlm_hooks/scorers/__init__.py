"""Scorers: turn a prompt and a response into a `TrustResult`."""

from .base import BaseScorer, Scorer
from .function import FunctionScorer
from .logprob import LogprobScorer
from .tlm import TLMScorer

__all__ = ["Scorer", "BaseScorer", "FunctionScorer", "LogprobScorer", "TLMScorer"]
