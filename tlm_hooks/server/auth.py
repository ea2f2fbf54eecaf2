"""API-key check: ``Authorization: Bearer <key>`` or ``api-key: <key>``, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.requests import Request

from .errors import ApiError

__all__ = ["KeyChecker"]


class KeyChecker:
    """Accepts a request carrying one of ``keys``; ``keys=None`` turns auth off."""

    def __init__(self, keys: Sequence[str] | None) -> None:
        if keys is not None:
            if isinstance(keys, str) or not keys or not all(isinstance(k, str) and k for k in keys):
                raise ValueError("api_keys must be a non-empty list of non-empty strings (or None for no auth)")
        self._keys = None if keys is None else [k.encode("utf-8") for k in keys]

    @property
    def enabled(self) -> bool:
        """True when requests must carry a key."""
        return self._keys is not None

    @property
    def keys(self) -> tuple[str, ...]:
        """The configured keys (for scrubbing them out of any text)."""
        return tuple(k.decode("utf-8") for k in self._keys or ())

    def check(self, request: Request) -> None:
        """Raise a 401 ``ApiError`` unless the request carries a valid key."""
        if self._keys is None:
            return
        given = request.headers.get("authorization", "")
        token = given[7:].strip() if given[:7].lower() == "bearer " else ""
        token = token or request.headers.get("api-key", "").strip()
        candidate = token.encode("utf-8")
        # compare against every key (no early exit), so timing says nothing about which matched
        matched = [hmac.compare_digest(candidate, key) for key in self._keys]
        if not token or not any(matched):
            raise ApiError(
                401,
                "invalid or missing API key: send 'Authorization: Bearer <key>' or 'api-key: <key>'",
                code="invalid_api_key",
            )
