"""`RAGResult`: the REST API's RAG reply shape as a dict, with a few typed accessors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..types import TrustResult

__all__ = ["RAGResult"]


class RAGResult(dict[str, Any]):
    """``{"trustworthiness": {"score", "log"?, "error"?}, <eval name>: {"score", "log"?, "error"?}, ...}``
    plus ``"response"`` from ``generate``. A failed part has ``"score": None`` and
    ``"error": {"message", "type"}``. JSON-serialisable as is.
    """

    @property
    def trustworthiness_score(self) -> float | None:
        """The trustworthiness score (``None`` when it failed)."""
        trust = self.get("trustworthiness")
        return trust.get("score") if isinstance(trust, Mapping) else None

    @property
    def response(self) -> str | None:
        """The generated response (``generate`` only)."""
        value = self.get("response")
        return value if isinstance(value, str) else None

    @property
    def eval_scores(self) -> dict[str, float | None]:
        """Each eval's score by name, in eval order."""
        return {name: value.get("score") for name, value in self._evals().items()}

    @property
    def errors(self) -> dict[str, str]:
        """The error message of each part that failed (``trustworthiness`` or an eval name)."""
        out = {}
        for name, value in self.items():
            error = value.get("error") if isinstance(value, Mapping) else None
            if isinstance(error, Mapping):
                out[name] = str(error.get("message"))
        return out

    @property
    def ok(self) -> bool:
        """True when trustworthiness and every eval were scored."""
        return not self.errors

    def to_trust_result(self) -> TrustResult:
        """A :class:`TrustResult` (the ``tlm_metadata`` shape): the trustworthiness score and
        explanation, the evals in ``evals``, and the trustworthiness error if it failed."""
        trust = self.get("trustworthiness") or {}
        log = trust.get("log") or {}
        error = trust.get("error") or {}
        return TrustResult(
            trust.get("score"),
            explanation=log.get("explanation"),
            components=dict(log.get("per_component_score") or {}),
            evals={name: dict(value) for name, value in self._evals().items()},
            error=error.get("message"),
            error_type=error.get("type"),
            warnings=tuple(log.get("warnings") or ()),
        )

    def _evals(self) -> dict[str, Mapping[str, Any]]:
        return {
            name: value
            for name, value in self.items()
            if name not in ("trustworthiness", "response") and isinstance(value, Mapping)
        }
