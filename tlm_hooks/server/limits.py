"""Request limits: body size, prompt length, and admission control (concurrency + queue)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from .errors import ApiError

__all__ = ["Limits", "Gate", "Slot", "read_json", "check_text_length"]


@dataclass(frozen=True)
class Limits:
    """Bounds on one server: sizes, concurrency, queue and time (seconds)."""

    max_body_bytes: int = 1_000_000
    max_prompt_chars: int = 100_000
    max_concurrency: int = 4
    max_queue: int = 32
    timeout: float = 120.0

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_prompt_chars", "max_concurrency"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.max_queue, bool) or not isinstance(self.max_queue, int) or self.max_queue < 0:
            raise ValueError(f"max_queue must be an integer >= 0, got {self.max_queue!r}")
        if not isinstance(self.timeout, (int, float)) or not math.isfinite(self.timeout) or self.timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")


async def read_json(request: Request, limit: int) -> Any:
    """The request body parsed as JSON; 413 past ``limit`` bytes, 400 when empty or malformed."""
    declared = request.headers.get("content-length")
    too_big = ApiError(413, f"request body is larger than the limit of {limit} bytes (max_body_bytes)")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limit:
            raise too_big
    if not data:
        raise ApiError(400, "the request body is empty: expected a JSON object")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from exc


def check_text_length(field: str, texts: Iterable[str], limit: int) -> None:
    """400 naming ``field`` when the texts together are longer than ``limit`` characters."""
    total = sum(len(t) for t in texts)
    if total > limit:
        raise ApiError(
            400, f"'{field}' is {total} characters, more than the limit of {limit} (max_prompt_chars)", field
        )


class Slot:
    """One admitted request; ``release`` (idempotent) frees its place."""

    def __init__(self, gate: Gate) -> None:
        self._gate: Gate | None = gate

    def release(self) -> None:
        """Free the place (only the first call counts)."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate._release()


class Gate:
    """At most ``max_concurrency`` requests run, ``max_queue`` more wait; the rest get 503.

    A request that waits longer than ``max_wait`` seconds is refused with 503 too, so nothing
    hangs. Both refusals carry ``Retry-After``.
    """

    def __init__(self, max_concurrency: int, max_queue: int, max_wait: float, retry_after: int = 1) -> None:
        self.max_concurrency, self.max_queue, self.max_wait = max_concurrency, max_queue, max_wait
        self.retry_after = retry_after
        self.running = 0
        self.waiting = 0
        self._semaphore: asyncio.Semaphore | None = None

    def _busy(self, why: str) -> ApiError:
        return ApiError(
            503,
            f"the server is busy ({why}); retry after {self.retry_after}s",
            kind="server_error",
            code="server_busy",
            headers={"Retry-After": str(self.retry_after)},
        )

    async def acquire(self) -> Slot:
        """Admit the caller (waiting in the queue if needed) or raise a 503 ``ApiError``."""
        if self._semaphore is None:  # created lazily, on the serving loop
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        semaphore = self._semaphore
        if semaphore.locked() and self.waiting >= self.max_queue:
            raise self._busy(f"{self.running} running, {self.waiting} queued")
        self.waiting += 1
        try:
            await asyncio.wait_for(semaphore.acquire(), self.max_wait)
        except asyncio.TimeoutError:
            raise self._busy(f"queued for more than {self.max_wait:g}s") from None
        finally:
            self.waiting -= 1
        self.running += 1
        return Slot(self)

    def _release(self) -> None:
        assert self._semaphore is not None
        self.running -= 1
        self._semaphore.release()
