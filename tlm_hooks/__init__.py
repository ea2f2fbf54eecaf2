"""tlm-hooks: a trustworthiness score on every LLM completion, with one line of code.

    import tlm_hooks
    tlm_hooks.patch(client, policy=tlm_hooks.TrustPolicy(threshold=0.7,
                    on_low_trust=[tlm_hooks.fallbacks.AppendWarning()]))
    resp = client.chat.completions.create(model=..., messages=[...])
    resp.tlm_metadata["trustworthiness_score"]

Importing this package imports no LLM SDK; each SDK is imported when its client is hooked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import fallbacks
from ._guard import unhooked
from .adapters.text import TrustedText
from .decorators import trust_scored, with_tlm_options
from .errors import (
    InvalidOptionError,
    JudgeConnectionError,
    JudgeError,
    JudgeTimeoutError,
    MissingDependencyError,
    PatchError,
    ScoringTimeout,
    TLMHooksError,
    TrustScoringError,
    UntrustworthyResponseError,
)
from .hooks.api import is_patched, patch, patch_all, route, unpatch, unpatch_all
from .hooks.refusals import forget_logprob_refusals
from .integrations import otel as _otel  # noqa: F401  (adds its span annotator to the hook)
from .options import TLMOptions
from .policy import LowTrustEvent, TrustPolicy
from .scorers import BaseScorer, FunctionScorer, LogprobScorer, Scorer
from .types import ScoreRequest, TokenLogprob, TrustResult
from .workflows import ascore_completion, score_completion

if TYPE_CHECKING:
    from .backends import CleanlabTLM
    from .calibration import Calibration, TLMCalibrated, calibrate
    from .datasets import score_dataframe, score_file
    from .rag import Eval, TrustworthyRAG
    from .scorers.tlm import TLMScorer
    from .tlm import TLM

__version__ = "0.1.0"

# imported on first use, so `import tlm_hooks` stays light (the engine, the Cleanlab backend,
# RAG, datasets and calibration each load their own dependencies)
_LAZY = {
    "TLMScorer": "tlm_hooks.scorers.tlm",
    "TLM": "tlm_hooks.tlm",
    "CleanlabTLM": "tlm_hooks.backends",
    "TrustworthyRAG": "tlm_hooks.rag",
    "Eval": "tlm_hooks.rag",
    "score_file": "tlm_hooks.datasets",
    "score_dataframe": "tlm_hooks.datasets",
    "calibrate": "tlm_hooks.calibration",
    "Calibration": "tlm_hooks.calibration",
    "TLMCalibrated": "tlm_hooks.calibration",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tlm_hooks' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "patch",
    "route",
    "unpatch",
    "patch_all",
    "unpatch_all",
    "is_patched",
    "unhooked",
    "forget_logprob_refusals",
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
    "TrustworthyRAG",
    "Eval",
    "score_file",
    "score_dataframe",
    "calibrate",
    "Calibration",
    "TLMCalibrated",
    "TLMHooksError",
    "InvalidOptionError",
    "MissingDependencyError",
    "PatchError",
    "JudgeError",
    "JudgeConnectionError",
    "JudgeTimeoutError",
    "ScoringTimeout",
    "TrustScoringError",
    "UntrustworthyResponseError",
    "__version__",
]
