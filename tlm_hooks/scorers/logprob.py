"""`LogprobScorer`: a trust score from the response's own token probabilities (no extra call)."""

from __future__ import annotations

import math
from typing import Literal

from ..types import ScoreRequest, TrustResult
from .base import BaseScorer

__all__ = ["LogprobScorer", "MISSING_LOGPROBS"]

Aggregate = Literal["geometric_mean", "mean", "min"]
_AGGREGATES: tuple[str, ...] = ("geometric_mean", "mean", "min")

MISSING_LOGPROBS = (
    "the response carries no token logprobs, so LogprobScorer cannot score it: call the model "
    "with logprobs=True (a hooked client does this for you unless request_logprobs=False), or "
    "use a scorer that does not need logprobs"
)


class LogprobScorer(BaseScorer):
    """Score = an aggregate of the answer's token probabilities.

    ``aggregate`` is ``"geometric_mean"`` (``exp`` of the mean logprob; the default), ``"mean"``
    (arithmetic mean of probabilities) or ``"min"`` (the least likely token). All three are
    reported in ``components``. With ``request_logprobs=True`` (default) a hooked call that did
    not ask for logprobs gets ``logprobs=True`` added, so there is something to score. A response
    without logprobs yields a failed result saying so, never a made-up score.
    """

    def __init__(self, aggregate: Aggregate = "geometric_mean", *, request_logprobs: bool = True) -> None:
        if aggregate not in _AGGREGATES:
            from ..errors import InvalidOptionError

            raise InvalidOptionError("aggregate", aggregate, "one of " + ", ".join(map(repr, _AGGREGATES)))
        self.aggregate = aggregate
        self.request_logprobs = request_logprobs

    @property
    def wants_logprobs(self) -> bool:  # instance-level switch
        return self.request_logprobs

    def score(self, request: ScoreRequest) -> TrustResult:
        # one pass (this runs on every hooked call): logprobs above 0 count as 0; NaN and +inf are
        # left out, -inf is a token of probability 0
        tokens, total, probs = [], 0.0, []
        for t in request.response_logprobs or ():
            logprob = t.logprob
            if logprob < 0 or math.isfinite(logprob):
                logprob = min(0.0, logprob)
                tokens.append(t)
                total += logprob
                probs.append(math.exp(logprob))
        if not tokens:
            return TrustResult(None, error=MISSING_LOGPROBS, error_type="MissingLogprobs")
        components = {
            # exp(mean logprob), from the logprobs themselves (exp then log would underflow below -745)
            "token_probability_geometric_mean": math.exp(total / len(tokens)),
            "token_probability_mean": sum(probs) / len(probs),
            "token_probability_min": min(probs),
        }
        score = components[f"token_probability_{self.aggregate}"]
        explanation = None
        options = request.options
        if options is not None and getattr(options, "wants_explanation", False):
            weakest = min(range(len(tokens)), key=probs.__getitem__)
            explanation = (
                f"Token probability: mean {components['token_probability_mean']:.2f} over {len(tokens)} tokens; "
                f"least likely token {tokens[weakest].token!r} (p={probs[weakest]:.2f})."
            )
        return TrustResult(min(1.0, max(0.0, score)), explanation=explanation, components=components)
