"""Exceptions raised by tlm-hooks itself (never in place of an SDK's own exceptions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .types import TrustResult

__all__ = [
    "TLMHooksError",
    "InvalidOptionError",
    "MissingDependencyError",
    "PatchError",
    "TrustScoringError",
    "UntrustworthyResponseError",
]


class TLMHooksError(Exception):
    """Base class of every exception tlm-hooks raises."""


class InvalidOptionError(TLMHooksError, ValueError):
    """A TLM option, preset or argument has a bad name, type or value.

    ``key`` names the offending option (dotted for nested ones, e.g. ``options.log``),
    ``value`` is what was given and ``allowed`` describes what is accepted.
    """

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid {key}={value!r}: allowed {allowed}")


class MissingDependencyError(TLMHooksError, ImportError):
    """An optional dependency is not installed; the message says what to install."""


class PatchError(TLMHooksError, TypeError):
    """The object given to ``patch``/``route``/``unpatch`` cannot be hooked."""


class TrustScoringError(TLMHooksError):
    """Scoring failed and the policy is fail-closed (``on_error="raise"``)."""

    def __init__(self, message: str, result: TrustResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class UntrustworthyResponseError(TLMHooksError):
    """Raised by the ``Raise`` fallback: the response scored below the policy threshold."""

    def __init__(self, result: TrustResult, response: Any = None, threshold: float | None = None) -> None:
        self.result = result
        self.response = response
        self.threshold = threshold
        score = result.trustworthiness_score
        shown = "none" if score is None else f"{score:.3f}"
        below = "" if threshold is None else f" (threshold {threshold:g})"
        super().__init__(f"untrustworthy response: trustworthiness_score={shown}{below}")
