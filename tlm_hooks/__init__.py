"""tlm-hooks: a trustworthiness score on every LLM completion, with one line of code.

    import tlm_hooks
    tlm_hooks.patch(client, policy=tlm_hooks.TrustPolicy(threshold=0.7,
                    on_low_trust=[tlm_hooks.fallbacks.AppendWarning()]))
    resp = client.chat.completions.create(model=..., messages=[...])
    resp.tlm_metadata["trustworthiness_score"]

Importing this package imports no LLM SDK; each SDK is imported when its client is hooked.
"""

from __future__ import annotations

from . import fallbacks
from .adapters.text import TrustedText
from .backends import CleanlabTLM
from .decorators import trust_scored, with_tlm_options
from .errors import (
    InvalidOptionError,
    MissingDependencyError,
    PatchError,
    TLMHooksError,
    TrustScoringError,
    UntrustworthyResponseError,
)
from .hooks.api import is_patched, patch, patch_all, route, unpatch, unpatch_all
from .hooks.guard import unhooked
from .options import TLMOptions
from .policy import LowTrustEvent, TrustPolicy
from .scorers import BaseScorer, FunctionScorer, LogprobScorer, Scorer, TLMScorer
from .tlm import TLM
from .types import ScoreRequest, TokenLogprob, TrustResult
from .workflows import ascore_completion, score_completion

__version__ = "0.1.0"

__all__ = [
    "patch",
    "route",
    "unpatch",
    "patch_all",
    "unpatch_all",
    "is_patched",
    "unhooked",
    "score_completion",
    "ascore_completion",
    "trust_scored",
    "with_tlm_options",
    "TrustPolicy",
    "LowTrustEvent",
    "fallbacks",
    "TLMOptions",
    "ScoreRequest",
    "TokenLogprob",
    "TrustResult",
    "TrustedText",
    "Scorer",
    "BaseScorer",
    "FunctionScorer",
    "LogprobScorer",
    "TLMScorer",
    "TLM",
    "CleanlabTLM",
    "TLMHooksError",
    "InvalidOptionError",
    "MissingDependencyError",
    "PatchError",
    "TrustScoringError",
    "UntrustworthyResponseError",
    "__version__",
]
