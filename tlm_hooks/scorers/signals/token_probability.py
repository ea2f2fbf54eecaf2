"""Token-probability signal: how sure the model was of its own answer's tokens (no extra call)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...types import TokenLogprob

__all__ = ["token_probability", "MIN_TOKEN_WEIGHT"]

# Share of the least likely content token in the score; the rest is the geometric mean.
# A guess: one shaky token (a digit, a name) is what marks a wrong short answer, while the
# mean alone is diluted by many easy tokens. Tune with the benchmark.
MIN_TOKEN_WEIGHT = 0.5


def _is_content(token: str) -> bool:
    return any(ch.isalnum() for ch in token)


def token_probability(logprobs: Sequence[TokenLogprob] | None) -> float | None:
    """Blend of the geometric-mean and the minimum probability of the answer's content tokens
    (tokens with a letter or digit; all tokens if none has); ``None`` without logprobs."""
    finite = [t for t in logprobs or () if math.isfinite(t.logprob)]
    if not finite:
        return None
    content = [t for t in finite if _is_content(t.token)] or finite
    logs = [min(0.0, t.logprob) for t in content]
    geometric = math.exp(sum(logs) / len(logs))
    lowest = math.exp(min(logs))
    return (1 - MIN_TOKEN_WEIGHT) * geometric + MIN_TOKEN_WEIGHT * lowest
