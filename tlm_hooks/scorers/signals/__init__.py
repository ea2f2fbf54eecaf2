"""The signals `TLMScorer` combines: token probability, self-reflection, observed consistency."""

from .consistency import Comparison, method_for
from .presets import PRESET_PLANS, Plan, plan_for
from .reflection import REFLECTION_PROMPTS, Check, ReflectionPrompt
from .similarity import agreement, extract_label, lexical_overlap
from .token_probability import token_probability
from .verdict import parse_verdict, verdict_from_logprobs
from .weights import SIGNAL_WEIGHTS, combine

__all__ = [
    "Comparison",
    "method_for",
    "PRESET_PLANS",
    "Plan",
    "plan_for",
    "REFLECTION_PROMPTS",
    "Check",
    "ReflectionPrompt",
    "agreement",
    "extract_label",
    "lexical_overlap",
    "token_probability",
    "parse_verdict",
    "verdict_from_logprobs",
    "SIGNAL_WEIGHTS",
    "combine",
]
