"""The retrying JSON-over-HTTP transport behind :class:`~tlm_hooks.backends.CleanlabTLM`.

One POST is retried on HTTP 408/429/5xx, timeouts and connection failures, at most
``max_retries`` times, waiting ``Retry-After`` (seconds or an HTTP date) when the service
sends it, else an exponential backoff with jitter; every wait is capped at ``max_wait``.
Waiting goes through an injected ``sleep`` so tests measure it without sleeping. Every other
outcome maps to one :class:`~tlm_hooks.errors.CleanlabAPIError` subclass. The API key is
removed from anything quoted from the service.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, NoReturn

import httpx

from ..errors import (
    CleanlabAPIError,
    CleanlabAuthError,
    CleanlabBadRequestError,
    CleanlabConnectionError,
    CleanlabRateLimitError,
    CleanlabServerError,
    CleanlabTimeoutError,
)

__all__ = ["RetryPolicy", "Call", "parse_retry_after", "send", "asend"]

logger = logging.getLogger("tlm_hooks")

_MAX_QUOTED = 500  # characters of a server message kept in an exception


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. ``jitter`` returns a float in [0, 1); ``clock`` is
    the wall clock used to read ``Retry-After`` dates."""

    max_retries: int = 3
    max_wait: float = 60.0
    base_delay: float = 0.5
    jitter: Callable[[], float] = random.random
    clock: Callable[[], float] = time.time

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (0-based) without ``Retry-After``: half to all
        of ``base_delay * 2**retry``, capped at ``max_wait``."""
        ceiling = min(self.max_wait, self.base_delay * (2.0**retry))
        return ceiling * (0.5 + 0.5 * self.jitter())

    def wait_for(self, retry: int, retry_after: float | None) -> float:
        """Seconds before retry ``retry``: the server's ``Retry-After`` when given, else the
        backoff; never more than ``max_wait``."""
        wait = self.backoff(retry) if retry_after is None else retry_after
        return max(0.0, min(self.max_wait, wait))


@dataclass(frozen=True)
class Call:
    """One request: where, what, and the secret to scrub from quoted replies."""

    url: str
    payload: Mapping[str, Any]
    headers: Mapping[str, str]
    timeout: float
    secret: str = field(default="", repr=False)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - now
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


class _Attempts:
    """The state of one call's attempts: decides return, retry-after-wait, or raise."""

    def __init__(self, call: Call, policy: RetryPolicy) -> None:
        self.call = call
        self.policy = policy
        self.attempts = 0
        self.waited = 0.0

    def _retries_left(self) -> bool:
        return self.attempts <= self.policy.max_retries

    def _fail(
        self, cls: type[CleanlabAPIError], message: str, status: int | None, server: str | None = None
    ) -> NoReturn:
        raise cls(
            message,
            status=status,
            endpoint=self.call.url,
            attempts=self.attempts,
            waited=self.waited,
            server_message=server,
        )

    def on_response(self, response: httpx.Response) -> tuple[dict[str, Any] | None, float]:
        """``(data, 0)`` on success, ``(None, wait)`` to retry; raises on a final failure."""
        self.attempts += 1
        status = response.status_code
        url = self.call.url
        if 200 <= status < 300:
            return self._json(response), 0.0
        server = _server_message(response, self.call.secret)
        said = f": {server}" if server else ""
        if status in (408, 429) or status >= 500:
            if self._retries_left():
                retry_after = parse_retry_after(response.headers.get("retry-after"), self.policy.clock())
                wait = self.policy.wait_for(self.attempts - 1, retry_after)
                logger.info(
                    "tlm-hooks: Cleanlab TLM answered HTTP %s on %s; retry %d of %d in %.2f s",
                    status, url, self.attempts, self.policy.max_retries, wait,
                )  # fmt: skip
                return None, wait
            tries = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
            if status == 429:
                self._fail(
                    CleanlabRateLimitError,
                    f"Cleanlab TLM rate limit (HTTP 429) on {url}: still limited after {tries} and "
                    f"{self.waited:.1f} s of waiting (max_retries={self.policy.max_retries}, "
                    f"max_retry_wait={self.policy.max_wait:g} s); send fewer requests at once or retry later{said}",
                    status,
                    server,
                )
            if status == 408:
                self._fail(
                    CleanlabTimeoutError,
                    f"Cleanlab TLM timed out (HTTP 408) on {url} on all {tries} "
                    f"({self.waited:.1f} s of waiting between them){said}",
                    status,
                    server,
                )
            self._fail(
                CleanlabServerError,
                f"Cleanlab TLM server error (HTTP {status}) on {url} after {tries} "
                f"({self.waited:.1f} s of waiting between them){said}",
                status,
                server,
            )
        if status in (401, 403):
            self._fail(
                CleanlabAuthError,
                f"Cleanlab TLM refused the API key (HTTP {status}) on {url}: check the key passed as "
                f"api_key= or set in CLEANLAB_TLM_API_KEY, and that it may use this endpoint{said}",
                status,
                server,
            )
        if status in (400, 422):
            self._fail(
                CleanlabBadRequestError,
                f"Cleanlab TLM rejected the request (HTTP {status}) on {url}{said or ': (no reason given)'}",
                status,
                server,
            )
        if status == 404:
            self._fail(
                CleanlabAPIError,
                f"Cleanlab TLM has no endpoint {url} (HTTP 404): check base_url{said}",
                status,
                server,
            )
        self._fail(CleanlabAPIError, f"Cleanlab TLM answered HTTP {status} on {url}{said}", status, server)

    def on_error(self, exc: httpx.TransportError) -> float:
        """The wait before retrying after a timeout or connection failure; raises when out of retries."""
        self.attempts += 1
        if self._retries_left():
            wait = self.policy.wait_for(self.attempts - 1, None)
            logger.info(
                "tlm-hooks: Cleanlab TLM call to %s failed (%s); retry %d of %d in %.2f s",
                self.call.url, type(exc).__name__, self.attempts, self.policy.max_retries, wait,
            )  # fmt: skip
            return wait
        tries = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        if isinstance(exc, httpx.TimeoutException):
            self._fail(
                CleanlabTimeoutError,
                f"Cleanlab TLM did not answer {self.call.url} within timeout={self.call.timeout:g} s "
                f"on any of {tries} ({self.waited:.1f} s of waiting between them)",
                None,
            )
        reason = " ".join(str(exc).split())[:_MAX_QUOTED]
        self._fail(
            CleanlabConnectionError,
            f"could not reach Cleanlab TLM at {self.call.url} after {tries} "
            f"({type(exc).__name__}{': ' + reason if reason else ''}); check base_url and the network",
            None,
        )

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self._fail(
                CleanlabAPIError,
                f"Cleanlab TLM answered {self.call.url} with HTTP {response.status_code} but not a JSON object",
                response.status_code,
            )
        return data


def _server_message(response: httpx.Response, secret: str) -> str | None:
    """The reason the service gave (``detail``/``error``/``message`` or the raw text), scrubbed."""
    try:
        data: Any = response.json()
    except ValueError:
        data = response.text
    text = _reason(data)
    if not text:
        return None
    if secret:
        text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "…"


def _reason(data: Any) -> str:
    if isinstance(data, dict):
        for key in ("detail", "error", "message"):
            if key in data and data[key]:
                return _reason(data[key])
        return str(data)
    if isinstance(data, list):  # FastAPI validation errors: [{"loc": [...], "msg": "..."}]
        return "; ".join(
            f"{'.'.join(map(str, item.get('loc', ())))}: {item.get('msg', item)}"
            if isinstance(item, dict)
            else str(item)
            for item in data
        )
    return "" if data is None else str(data)


def send(client: httpx.Client, call: Call, policy: RetryPolicy, sleep: Callable[[float], None]) -> dict[str, Any]:
    """POST ``call`` with ``client``, retrying as :class:`RetryPolicy` says; the JSON reply."""
    state = _Attempts(call, policy)
    while True:
        try:
            response = client.post(call.url, json=dict(call.payload), headers=dict(call.headers), timeout=call.timeout)
        except httpx.TransportError as exc:
            wait = state.on_error(exc)
        else:
            data, wait = state.on_response(response)
            if data is not None:
                return data
        sleep(wait)
        state.waited += wait


async def asend(
    client: httpx.AsyncClient, call: Call, policy: RetryPolicy, sleep: Callable[[float], Awaitable[Any]]
) -> dict[str, Any]:
    """Async form of :func:`send`."""
    state = _Attempts(call, policy)
    while True:
        try:
            response = await client.post(
                call.url, json=dict(call.payload), headers=dict(call.headers), timeout=call.timeout
            )
        except httpx.TransportError as exc:
            wait = state.on_error(exc)
        else:
            data, wait = state.on_response(response)
            if data is not None:
                return data
        await sleep(wait)
        state.waited += wait
