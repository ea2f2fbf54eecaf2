"""Request limits: sizes, message counts, nesting, reading time, and admission control (concurrency + queue)."""

from __future__ import annotations

import asyncio
import collections
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ..types import _content_text
from .errors import ApiError

__all__ = [
    "Limits",
    "Gate",
    "Slot",
    "HugeNumber",
    "read_json",
    "check_text_length",
    "check_messages",
    "check_depth",
]

_POSITIVE_INTS = (
    "max_body_bytes",
    "max_prompt_chars",
    "max_concurrency",
    "max_messages",
    "max_name_chars",
    "max_depth",
)


@dataclass(frozen=True)
class Limits:
    """Bounds on one server: sizes, counts, concurrency, queue and time (seconds).

    ``max_prompt_chars`` bounds what goes into the model's prompt template: the content, roles
    and names of all messages together. ``read_timeout`` bounds how long a client may take to
    send its request headers, and again its body.
    """

    max_body_bytes: int = 1_000_000
    max_prompt_chars: int = 100_000
    max_concurrency: int = 4
    max_queue: int = 32
    timeout: float = 120.0
    max_messages: int = 1000
    max_name_chars: int = 64
    max_depth: int = 64
    read_timeout: float = 30.0

    def __post_init__(self) -> None:
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.max_queue, bool) or not isinstance(self.max_queue, int) or self.max_queue < 0:
            raise ValueError(f"max_queue must be an integer >= 0, got {self.max_queue!r}")
        for name in ("timeout", "read_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


async def read_json(request: Request, limit: int, *, timeout: float | None = None, max_depth: int = 64) -> Any:
    """The request body parsed as JSON.

    413 past ``limit`` bytes; 408 when the body has not fully arrived within ``timeout``
    seconds; 400 when it is empty, malformed, nested deeper than ``max_depth``, or holds a
    number Python will not parse (e.g. an integer of thousands of digits).
    """
    declared = request.headers.get("content-length")
    too_big = ApiError(413, f"request body is larger than the limit of {limit} bytes (max_body_bytes)")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big

    async def receive() -> bytearray:
        data = bytearray()
        async for part in request.stream():
            data += part
            if len(data) > limit:
                raise too_big
        return data

    try:
        data = await asyncio.wait_for(receive(), timeout)
    except asyncio.TimeoutError:
        raise ApiError(
            408,
            f"the request body did not arrive within {timeout:g}s (read_timeout)",
            code="request_timeout",
            headers={"Connection": "close"},
        ) from None
    if not data:
        raise ApiError(400, "the request body is empty: expected a JSON object")
    try:
        body = json.loads(data, parse_int=_parse_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ApiError(400, f"the request body is nested too deeply: the limit is {max_depth} levels") from exc
    except ValueError as exc:
        raise ApiError(400, f"the request body holds a value this server cannot read: {exc}") from exc
    check_depth(body, max_depth)
    return body


_MAX_INT_DIGITS = 30  # far past any count, size or seed; Python refuses past 4300 (and slowly before)


class HugeNumber(float):
    """An integer too long to be a count, size or seed (it reads as infinity): field validation
    refuses it with a 400 naming the field, instead of a 500 from Python's int-parsing limit."""

    digits: int

    def __new__(cls, text: str) -> HugeNumber:
        number = super().__new__(cls, float("-inf") if text.startswith("-") else float("inf"))
        number.digits = len(text.lstrip("-"))
        return number

    def __repr__(self) -> str:
        return f"<a number of {self.digits} digits>"

    __str__ = __repr__


def _parse_int(text: str) -> int | float:
    return int(text) if len(text) <= _MAX_INT_DIGITS else HugeNumber(text)


def check_depth(value: Any, limit: int) -> None:
    """400 naming the top-level field whose value is nested deeper than ``limit`` levels
    (checked without recursion: validators and scorers walk request values recursively)."""
    stack: list[tuple[Any, int, str | None]] = [(value, 1, None)]
    while stack:
        item, depth, top = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                raise ApiError(400, f"'{top}' is nested more than {limit} levels deep (max_depth)", top)
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                stack.append((child, depth + 1, top if top is not None else str(key)))


def check_text_length(field: str, texts: Iterable[str], limit: int) -> None:
    """400 naming ``field`` when the texts together are longer than ``limit`` characters."""
    total = sum(len(t) for t in texts)
    if total > limit:
        raise ApiError(
            400, f"'{field}' is {total} characters, more than the limit of {limit} (max_prompt_chars)", field
        )


def check_messages(messages: Sequence[Mapping[str, Any]], limits: Limits) -> None:
    """400 when there are more than ``max_messages`` messages, a role or name is longer than
    ``max_name_chars``, or contents, roles and names together exceed ``max_prompt_chars``.

    Run before any model work: a prompt template costs time for every message it formats.
    """
    if len(messages) > limits.max_messages:
        raise ApiError(
            400,
            f"'messages' has {len(messages)} messages, more than the limit of {limits.max_messages} (max_messages)",
            "messages",
        )
    total = 0
    for i, message in enumerate(messages):
        for key in ("role", "name"):
            value = message.get(key)
            if isinstance(value, str):
                if len(value) > limits.max_name_chars:
                    raise ApiError(
                        400,
                        f"'messages[{i}].{key}' is {len(value)} characters, more than the limit of "
                        f"{limits.max_name_chars} (max_name_chars)",
                        f"messages[{i}].{key}",
                    )
                total += len(value)
        total += len(_content_text(message.get("content")))
    if total > limits.max_prompt_chars:
        raise ApiError(
            400,
            f"'messages' is {total} characters (contents, roles and names), more than the limit of "
            f"{limits.max_prompt_chars} (max_prompt_chars)",
            "messages",
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
    hangs. Both refusals carry ``Retry-After``. The gate counts admissions itself (no
    ``asyncio.Semaphore``, whose bookkeeping differs between Python versions), so the bound is
    exact: a freed place goes straight to the longest waiter, in arrival order.
    """

    def __init__(self, max_concurrency: int, max_queue: int, max_wait: float, retry_after: int = 1) -> None:
        self.max_concurrency, self.max_queue, self.max_wait = max_concurrency, max_queue, max_wait
        self.retry_after = retry_after
        self.running = 0
        self.refusals: collections.Counter[str] = collections.Counter()  # queue_full / queue_timeout, for metrics
        self._queue: collections.deque[asyncio.Future[bool]] = collections.deque()

    @property
    def waiting(self) -> int:
        """Requests in the queue."""
        return len(self._queue)

    def _busy(self, why: str, reason: str) -> ApiError:
        self.refusals[reason] += 1
        return ApiError(
            503,
            f"the server is busy ({why}); retry after {self.retry_after}s",
            kind="server_error",
            code="server_busy",
            headers={"Retry-After": str(self.retry_after)},
        )

    async def acquire(self, max_wait: float | None = None) -> Slot:
        """Admit the caller (waiting in the queue at most ``max_wait`` seconds, default the
        gate's) or raise a 503 ``ApiError``. Cancelling the caller gives its place back."""
        if self.running < self.max_concurrency and not self._queue:
            self.running += 1
            return Slot(self)
        if len(self._queue) >= self.max_queue:
            raise self._busy(f"{self.running} running, {len(self._queue)} queued", "queue_full")
        wait = self.max_wait if max_wait is None else max_wait
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._queue.append(waiter)
        started = time.monotonic()
        timer = loop.call_later(wait, _resolve, waiter, False)
        try:
            admitted = await waiter
        except BaseException:
            # cancelled: if a place was handed over in the meantime, pass it on
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self._release()
            raise
        finally:
            timer.cancel()
            if waiter in self._queue:
                self._queue.remove(waiter)
        if not admitted:
            waited = time.monotonic() - started
            raise self._busy(f"queued for more than {waited:.3g}s, the limit is {wait:g}s", "queue_timeout")
        return Slot(self)

    def _release(self) -> None:
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_result(True)  # the place changes hands: `running` stays the same
                return
        self.running -= 1


def _resolve(waiter: asyncio.Future[bool], value: bool) -> None:
    if not waiter.done():
        waiter.set_result(value)
