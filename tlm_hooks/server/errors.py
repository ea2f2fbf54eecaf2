"""Error replies in OpenAI's shape, and scrubbing secrets out of any text the server emits."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["ApiError", "Secrets", "bad_field", "model_error", "secrets_in"]


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
        if secrets is not None:
            body["error"]["message"] = secrets.scrub(self.message)
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


class Secrets:
    """A set of secret strings (API keys) that must never leave the process in any text."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values = {v for v in values if len(v) >= 3}  # shorter ones would garble every message

    def with_values(self, values: Iterable[str]) -> Secrets:
        """A copy that also hides ``values`` (e.g. keys found in one request's body)."""
        return Secrets(self._values | set(values))

    def scrub(self, text: str) -> str:
        """``text`` with every secret (and any ``Bearer <token>``) replaced by ``***``."""
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "***")
        return re.sub(r"(?i)(bearer\s+)[^\s'\"]+", r"\1***", text)


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
