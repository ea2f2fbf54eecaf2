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
    "JudgeError",
    "JudgeConnectionError",
    "JudgeTimeoutError",
    "ScoringTimeout",
    "JudgeError",
    "JudgeConnectionError",
    "JudgeTimeoutError",
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


class JudgeError(TLMHooksError):
    """Calls to the judge model failed; the message names the judge (model and URL) and the cause."""


class JudgeConnectionError(JudgeError, ConnectionError):
    """The judge model could not be reached (after the bounded retries)."""


class JudgeTimeoutError(JudgeError, TimeoutError):
    """The judge model did not answer in time (after the bounded retries)."""


class ScoringTimeout(TLMHooksError, TimeoutError):
    """The scorer did not return within the policy's ``score_timeout``."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"scoring did not finish within score_timeout={timeout:g}s")
        self.timeout = timeout


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


# --- Cleanlab TLM backend (tlm_hooks.backends) -------------------------------------------


class CleanlabAPIError(TLMHooksError):
    """A call to Cleanlab's TLM service failed.

    ``status`` is the HTTP status (``None`` when no response came back), ``endpoint`` the
    path called, ``attempts`` how many requests were sent, ``waited`` the seconds spent
    waiting between them, ``server_message`` what the service said (API key removed).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        endpoint: str | None = None,
        attempts: int = 1,
        waited: float = 0.0,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint
        self.attempts = attempts
        self.waited = waited
        self.server_message = server_message


class CleanlabAuthError(CleanlabAPIError):
    """The service refused the API key (HTTP 401/403), or no key was given at all."""


class CleanlabRateLimitError(CleanlabAPIError):
    """HTTP 429 persisted after the bounded retries; ``waited`` says how long was waited."""


class CleanlabBadRequestError(CleanlabAPIError, ValueError):
    """The service rejected the request (HTTP 400/422); the message quotes its reason."""


class CleanlabTimeoutError(CleanlabAPIError, TimeoutError):
    """No answer within ``timeout`` seconds, on every attempt."""


class CleanlabServerError(CleanlabAPIError):
    """The service kept failing (HTTP 5xx) after the bounded retries."""


class CleanlabConnectionError(CleanlabAPIError, ConnectionError):
    """The service could not be reached (DNS, refused connection, dropped connection)."""


__all__ += [
    "CleanlabAPIError",
    "CleanlabAuthError",
    "CleanlabRateLimitError",
    "CleanlabBadRequestError",
    "CleanlabTimeoutError",
    "CleanlabServerError",
    "CleanlabConnectionError",
]
