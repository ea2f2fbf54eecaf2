"""TLM options the server acts on around the scorer (the scoring engine does not know them):
``max_timeout``, ``disable_trustworthiness``, ``log: ["perplexity"]``, a client's perplexity, a
``log.per_field_score`` error when the chosen scorer computed none, and a ``log.warnings`` line
for each option the server cannot honour.

Cleanlab's client sends these options (``TLM(timeout=...)`` becomes ``options.max_timeout``); the
server handles them here instead of refusing them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..options import TLMOptions
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

DISABLED = "trustworthiness was not scored: options.disable_trustworthiness is true"
_PER_FIELD = (
    "options.log 'per_field_score' was not computed: the scorer chosen for this request does not score fields "
    "(the scoring engine does, for an answer to a JSON response_format)"
)
_CRITERIA = "options.custom_eval_criteria are not evaluated by this server (TrustworthyRAG evals are)"
_NO_LOGPROBS = "options.log 'perplexity' needs the response's token logprobs; none were available, so it is null"


def _settings(options: TLMOptions | None) -> Mapping[str, Any]:
    return options.options if options is not None else {}


def deadline_seconds(options: TLMOptions | None, timeout: float) -> float:
    """The request's time budget: the server's ``timeout``, or less when ``options.max_timeout`` says so."""
    asked = _settings(options).get("max_timeout")
    return min(timeout, float(asked)) if asked is not None else timeout


def disabled(options: TLMOptions | None) -> bool:
    """True when the request turned trustworthiness scoring off."""
    return bool(_settings(options).get("disable_trustworthiness"))


def unsupported(options: TLMOptions | None) -> list[str]:
    """``log.warnings`` lines for the options the request gave that this server does not honour."""
    settings = _settings(options)
    lines = []
    if settings.get("custom_eval_criteria"):
        lines.append(_CRITERIA)
    return lines


def perplexity(logprobs: Sequence[TokenLogprob] | None) -> float | None:
    """The geometric mean of the tokens' probabilities (TLM's ``log.perplexity``, in [0, 1])."""
    finite = [min(0.0, t.logprob) for t in logprobs or () if math.isfinite(t.logprob)]
    if not finite:
        return None
    return math.exp(sum(finite) / len(finite))


def given_perplexity(value: float) -> tuple[TokenLogprob, ...]:
    """A perplexity the client computed, as one token whose probability is that value, so the
    token-probability signal scores with it exactly as with the response's own logprobs."""
    return (TokenLogprob("<response>", math.log(max(value, 1e-12))),)


def finish(metadata: dict[str, Any], request: ScoreRequest) -> dict[str, Any]:
    """``metadata`` with ``log.perplexity`` when asked for, and the warnings of :func:`unsupported`."""
    settings = _settings(request.options)
    lines = unsupported(request.options)
    log_now = metadata.get("log") or {}
    if "per_field_score" in settings.get("log", ()) and "per_field_score" not in log_now and not disabled(request.options):
        metadata["log"] = {**log_now, "per_field_score": {"error": _PER_FIELD}}  # Cleanlab's error shape
        lines.append(_PER_FIELD)
    if "perplexity" in settings.get("log", ()):
        value = perplexity(request.response_logprobs)
        metadata["log"] = {**(metadata.get("log") or {}), "perplexity": value}
        if value is None:
            lines.append(_NO_LOGPROBS)
    if lines:
        log = dict(metadata.get("log") or {})
        log["warnings"] = [*(log.get("warnings") or ()), *lines]
        metadata["log"] = log
    return metadata
