"""Error replies in OpenAI's shape, and scrubbing secrets out of any text the server emits."""

from __future__ import annotations

import contextvars
import logging
import re
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import JSONResponse

__all__ = [
    "ApiError",
    "Secrets",
    "bad_field",
    "model_error",
    "secrets_in",
    "current_secrets",
    "install_log_scrubbing",
    "LogScrubber",
]


class ApiError(Exception):
    """An HTTP error reply: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code = status, message, param, kind, code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON error object."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}

    def response(self, secrets: Secrets | None = None, *, tlm_rest: bool = False) -> JSONResponse:
        """The reply, with every known secret scrubbed from the message.

        A 401 also carries a top-level ``"code": "invalid_api_key"`` (what Cleanlab's client maps
        to its ``AuthError``). ``tlm_rest`` gives TLM's REST shape, ``{"error": "<message>",
        "param", "type", "code"}``, and answers a 400 with 422: Cleanlab's client retries a 400
        three times with backoff, but raises a 422 at once with the message.
        """
        body = self.body()
        secrets = secrets or Secrets()
        body["error"]["message"] = secrets.scrub(self.message)
        if self.param is not None:
            body["error"]["param"] = secrets.scrub(self.param)
        status = self.status
        if tlm_rest:
            body = {**body["error"], "error": body["error"]["message"]}
            del body["message"]
            status = 422 if status == 400 else status
        headers = dict(self.headers)
        if self.status == 401:
            headers.setdefault("WWW-Authenticate", "Bearer")
            body["code"] = "invalid_api_key"
        return JSONResponse(body, status_code=status, headers=headers or None)


def bad_field(param: str, message: str) -> ApiError:
    """A 400 naming the offending field."""
    return ApiError(400, f"invalid '{param}': {message}", param)


# Secret-looking text, hidden even when the server was not told the value: bearer tokens,
# OpenAI/Anthropic-style keys, and the value after a key-like name (``api-key: x``, ``?api_key=x``).
_SECRET_PATTERNS = (
    (re.compile(r"(?i)(bearer\s+)(?![<*])[^\s'\"]+"), r"\1***"),
    (re.compile(r"(?i)(\bauthorization['\"]?\s*[:=]\s*['\"]?)(?![\s'\"<*]|bearer\b)[^'\"\n,}]+"), r"\1***"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), "***"),
    (
        re.compile(
            r"(?i)(\b(?:x-)?(?:api[-_]?key|access[-_]?token|auth[-_]?token|client[-_]?secret|secret|password)"
            r"['\"]?\s*[:=]\s*['\"]?)(?![\s'\"<*])[^\s'\",}&]+"
        ),
        r"\1***",
    ),
)


class Secrets:
    """A set of secret strings (API keys) that must never leave the process in any text."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values = {v for v in values if len(v) >= 3}  # shorter ones would garble every message

    def with_values(self, values: Iterable[str]) -> Secrets:
        """A copy that also hides ``values`` (e.g. keys found in one request's body)."""
        return Secrets(self._values | set(values))

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and every secret-looking token replaced by ``***``."""
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "***")
        for pattern, replacement in _SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        return text


current_secrets: contextvars.ContextVar[Secrets | None] = contextvars.ContextVar(
    "tlm_hooks_server_secrets", default=None
)
"""The secrets of the request being handled (its body's keys too), for log scrubbing."""


class LogScrubber(logging.Filter):
    """A logging filter that scrubs every record: the registered servers' secrets, the current
    request's, and secret-looking text; access-log lines lose their query string."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: weakref.WeakSet[Secrets] = weakref.WeakSet()

    def add(self, secrets: Secrets) -> None:
        """Also scrub ``secrets`` (for as long as that object lives)."""
        self._secrets.add(secrets)

    def scrub(self, text: str) -> str:
        """``text`` scrubbed of every secret this filter knows."""
        values: set[str] = set()
        for secrets in [*list(self._secrets), current_secrets.get()]:
            if secrets is not None:
                values |= secrets._values
        return Secrets(values).scrub(text)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            # uvicorn's access formatter unpacks these five: keep the shape, drop the query
            client, method, path, version, status = record.args
            record.args = (client, method, str(path).split("?", 1)[0], version, status)
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as it would
            return True
        record.msg, record.args = self.scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


_LOG_SCRUBBER = LogScrubber()
_SCRUBBED_LOGGERS = ("tlm_hooks", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "LiteLLM")


def install_log_scrubbing(secrets: Secrets) -> LogScrubber:
    """Scrub ``secrets`` (and secret-looking text) from every record of the server's loggers:
    ``tlm_hooks``, uvicorn's, httpx's and litellm's. Returns the (process-wide) filter."""
    _LOG_SCRUBBER.add(secrets)
    for name in _SCRUBBED_LOGGERS:
        logging.getLogger(name).addFilter(_LOG_SCRUBBER)
    return _LOG_SCRUBBER


def model_error(exc: BaseException) -> ApiError:
    """Map a model's exception to a reply: its own ``http_status``, 400 for ``ValueError``, else 500."""
    status = getattr(exc, "http_status", None)
    if isinstance(status, int):
        kind = "invalid_request_error" if status < 500 else "server_error"
        headers = {"Retry-After": "1"} if status == 503 else None
        return ApiError(status, str(exc), getattr(exc, "param", None), kind=kind, headers=headers)
    if isinstance(exc, ValueError):
        match = re.match(r"invalid ([\w.\[\]]+)[=:]", str(exc))
        return ApiError(400, str(exc), match.group(1) if match else None)
    return ApiError(500, f"the model failed: {type(exc).__name__}: {exc}", kind="server_error")


_SECRET_KEYS = frozenset({"api_key", "api-key", "apikey", "authorization", "secret", "password"})


def secrets_in(value: Any) -> list[str]:
    """Every string value under a key-like name (``api_key``, ...) anywhere in a JSON value."""
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in _SECRET_KEYS and isinstance(item, str):
                found.append(item)
            else:
                found.extend(secrets_in(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(secrets_in(item))
    return found
