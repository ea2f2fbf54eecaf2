"""Per-field results of structured outputs: which fields of a JSON answer scored low."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from .errors import InvalidOptionError
from .types import TrustResult

__all__ = ["untrustworthy_fields", "per_field_scores"]

logger = logging.getLogger("tlm_hooks")

_HOW = (
    "ask for it with options {'log': ['per_field_score']} on a call with a JSON response_format "
    "(e.g. client.chat.completions.parse(..., response_format=MyModel))"
)


def _metadata(response: Any) -> Mapping[str, Any]:
    if isinstance(response, TrustResult):
        return response.to_dict()
    if isinstance(response, Mapping):
        return response
    data = getattr(response, "tlm_metadata", None)
    if isinstance(data, Mapping):
        return data
    raise TypeError(
        "expected a response carrying tlm_metadata (e.g. a hooked ChatCompletion), its tlm_metadata dict, "
        f"or a TrustResult; got {type(response).__name__}"
    )


def per_field_scores(response: Any) -> dict[str, dict[str, Any]]:
    """``tlm_metadata["log"]["per_field_score"]`` of ``response`` (a response with
    ``tlm_metadata``, that dict, or a `TrustResult`): ``{field: {"score", "explanation"}}``.

    Raises ``ValueError`` when the score has no per-field entries (not asked for, or not a
    structured answer), saying which.
    """
    log = _metadata(response).get("log") or {}
    fields = log.get("per_field_score") if isinstance(log, Mapping) else None
    if not isinstance(fields, Mapping):
        raise ValueError(f"tlm_metadata has no log.per_field_score: {_HOW}")
    if set(fields) == {"error"} and isinstance(fields["error"], str):
        raise ValueError(f"per-field scores were not computed: {fields['error']}")
    return {str(name): dict(entry) for name, entry in fields.items() if isinstance(entry, Mapping)}


def untrustworthy_fields(response: Any, threshold: float = 0.8) -> list[str]:
    """The fields of a structured answer scoring below ``threshold``, lowest score first.

    ``response`` is a response with ``tlm_metadata`` (a hooked ``ChatCompletion``, a parsed
    completion...), its ``tlm_metadata`` dict, or a `TrustResult`. The result has the shape of
    Cleanlab's ``get_untrustworthy_fields``: a list of field names. When the per-field scores
    failed (``per_field_score == {"error": ...}``) it logs the reason and returns ``[]``; when
    they were never asked for it raises ``ValueError``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold):
        raise InvalidOptionError("threshold", threshold, "a number from 0 to 1")
    if not 0.0 <= threshold <= 1.0:
        raise InvalidOptionError("threshold", threshold, "a number from 0 to 1")
    try:
        fields = per_field_scores(response)
    except ValueError as exc:
        if "were not computed" not in str(exc):
            raise
        logger.warning("tlm-hooks: %s", exc)
        return []
    low = [(float(entry["score"]), name) for name, entry in fields.items() if float(entry["score"]) < threshold]
    return [name for _, name in sorted(low)]
