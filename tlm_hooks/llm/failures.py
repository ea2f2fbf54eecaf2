"""What a failed judge request was: its HTTP status, a context-window overflow, a connection
failure or timeout (re-raised as an error that names the judge's model and URL)."""

from __future__ import annotations

import asyncio
import urllib.parse

from ..errors import JudgeConnectionError, JudgeError, JudgeTimeoutError

__all__ = [
    "status_of",
    "is_timeout",
    "is_connection_failure",
    "is_context_overflow",
    "judge_unreachable",
    "short_reason",
    "display_url",
]

# how servers say a prompt is too long: OpenAI, vLLM, llama.cpp, litellm, the embedded model
_OVERFLOW_WORDS = (
    "context length",
    "context_length",
    "context window",
    "context size",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "max_prompt_chars",  # tlm-hooks serve's own limit on a prompt's characters
)
_REASON_CHARS = 200
# azure-core's transport failures: the request could not be sent / the response not read
_AZURE_TRANSPORT_ERRORS = frozenset({"ServiceRequestError", "ServiceResponseError"})


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries (``status_code``, or its ``response``'s), else ``None``."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def is_timeout(exc: BaseException) -> bool:
    """A request that got no answer in time."""
    return isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or "Timeout" in type(exc).__name__


def _is_connection_type(exc: BaseException) -> bool:
    name = type(exc).__name__
    return isinstance(exc, ConnectionError) or "Connection" in name or name in _AZURE_TRANSPORT_ERRORS


def is_connection_failure(exc: BaseException) -> bool:
    """A request that reached no server (refused, DNS, dropped), timeouts excluded; also when
    a wrapper (litellm's ``InternalServerError``) was raised from such a failure."""
    if is_timeout(exc):
        return False
    return any(_is_connection_type(e) for e in _chain(exc))


def is_context_overflow(exc: BaseException) -> bool:
    """The judge refused the request because the prompt does not fit its context window."""
    if "ContextWindow" in type(exc).__name__:
        return True
    status = status_of(exc)
    if status is not None and status not in (400, 413, 422):
        return False
    text = f"{exc} {getattr(exc, 'code', '') or ''}".lower()
    return any(word in text for word in _OVERFLOW_WORDS)


def display_url(url: str) -> str:
    """``url`` without user info, query or fragment (they may hold secrets)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from (``__cause__``, else ``__context__``)."""
    out = [exc]
    while True:
        inner = out[-1].__cause__ or out[-1].__context__
        if inner is None or any(inner is seen for seen in out):
            return out
        out.append(inner)


def _root(exc: BaseException) -> BaseException:
    return _chain(exc)[-1]


def short_reason(exc: BaseException) -> str:
    """``Type: message`` of ``exc`` (with its root cause when that says more), kept short."""
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    root = _root(exc)
    if root is not exc and isinstance(root, Exception) and str(root):  # not a CancelledError
        text += f" ({type(root).__name__}: {root})"
    text = " ".join(text.split())
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def judge_unreachable(exc: BaseException, judge: str, attempts: int) -> JudgeError | None:
    """A `JudgeConnectionError`/`JudgeTimeoutError` naming ``judge`` for a connection failure
    or timeout, else ``None`` (the original error stands)."""
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if is_timeout(exc):
        return JudgeTimeoutError(f"the judge {judge} did not answer in time on any of {tries}: {short_reason(exc)}")
    if is_connection_failure(exc):
        return JudgeConnectionError(f"could not reach the judge {judge} after {tries}: {short_reason(exc)}")
    return None
