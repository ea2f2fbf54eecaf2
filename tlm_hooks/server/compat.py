"""TLM options the server acts on beyond the scoring path: ``max_timeout`` as the request's time
budget, a client's perplexity, a ``log.per_field_score`` error when the chosen scorer computed none,
and a ``log.warnings`` line for each option the server cannot honour.

Cleanlab's client sends these options (``TLM(timeout=...)`` becomes ``options.max_timeout``).
``disable_trustworthiness``, ``log: ["perplexity"]`` and the score's own ``max_timeout`` are handled
on the path every score takes, library and server alike (:mod:`tlm_hooks.scorers.asked`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..options import TLMOptions
from ..scorers.asked import DISABLED, disabled, perplexity
from ..types import ScoreRequest, TokenLogprob

__all__ = [
    "DISABLED",
    "deadline_seconds",
    "disabled",
    "finish",
    "given_perplexity",
    "perplexity",
    "unsupported",
]

_PER_FIELD = (
    "options.log 'per_field_score' was not computed: the scorer chosen for this request does not score fields "
    "(the scoring engine does, for an answer to a JSON response_format)"
)
_CRITERIA = "options.custom_eval_criteria are not evaluated by this server (TrustworthyRAG evals are)"


def _settings(options: TLMOptions | None) -> Mapping[str, Any]:
    return options.options if options is not None else {}


def deadline_seconds(options: TLMOptions | None, timeout: float) -> float:
    """The request's time budget: the server's ``timeout``, or less when ``options.max_timeout`` says so."""
    asked = _settings(options).get("max_timeout")
    return min(timeout, float(asked)) if asked is not None else timeout


def unsupported(options: TLMOptions | None) -> list[str]:
    """``log.warnings`` lines for the options the request gave that this server does not honour."""
    settings = _settings(options)
    lines = []
    if settings.get("custom_eval_criteria"):
        lines.append(_CRITERIA)
    return lines


def given_perplexity(value: float) -> tuple[TokenLogprob, ...]:
    """A perplexity the client computed, as one token whose probability is that value, so the
    token-probability signal scores with it exactly as with the response's own logprobs."""
    return (TokenLogprob("<response>", math.log(max(value, 1e-12))),)


def finish(metadata: dict[str, Any], request: ScoreRequest) -> dict[str, Any]:
    """``metadata`` with the warnings of :func:`unsupported` (and a ``per_field_score`` error
    when it was asked for and the scorer computed none)."""
    lines = unsupported(request.options)
    log_now = metadata.get("log") or {}
    asked_log = _settings(request.options).get("log", ())
    if "per_field_score" in asked_log and "per_field_score" not in log_now and not disabled(request.options):
        metadata["log"] = {**log_now, "per_field_score": {"error": _PER_FIELD}}  # Cleanlab's error shape
        lines.append(_PER_FIELD)
    if lines:
        log = dict(metadata.get("log") or {})
        log["warnings"] = [*(log.get("warnings") or ()), *lines]
        metadata["log"] = log
    return metadata
