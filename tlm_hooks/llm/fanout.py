"""Get ``n`` generations from servers that may not honour ``n``: one request, else parallel seeds."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from .base import Generation

__all__ = ["NSupport", "distinct_seeds", "complete_n"]

Request = Callable[[int, int | None], Awaitable[list[Generation]]]  # (n, seed) -> generations


def distinct_seeds(count: int, seed: int | None) -> list[int]:
    """``count`` different seeds, starting at ``seed`` (random when ``None``)."""
    start = random.randrange(2**30) if seed is None else seed
    return [start + i for i in range(count)]


class NSupport:
    """What one backend learned about ``n>1``: unknown (``None``), honoured, or not."""

    def __init__(self) -> None:
        self.honoured: bool | None = None


async def complete_n(request: Request, n: int, seed: int | None, support: NSupport) -> list[Generation]:
    """``n`` generations: ask for ``n`` in one request unless the server is known not to honour
    it; on a short answer (or a 400/422 rejecting ``n``) remember that, and fetch the rest in
    parallel requests with distinct seeds."""
    if n <= 1:
        return await request(1, seed)
    got: list[Generation] = []
    seeds = distinct_seeds(n, seed)
    if support.honoured is not False:
        try:
            got = await request(n, seeds[0])
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            if support.honoured is None and status in (400, 422):
                support.honoured = False
            else:
                raise
        else:
            support.honoured = len(got) >= n
            if support.honoured:
                return got[:n]
    rest = seeds[len(got) :] if got else seeds
    batches = await asyncio.gather(*(request(1, s) for s in rest))
    return got + [g for batch in batches for g in batch[:1]]
