"""Helpers shared by the litellm tests (import as `from litutil import ...`)."""

from __future__ import annotations

import math
from typing import Any

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "What is 2+2?"}]


def prob(logprob: float) -> float:
    """The LogprobScorer score of an answer whose every token has ``logprob``."""
    return math.exp(logprob)


async def call(entry: str, is_async: bool, provider: dict[str, Any], router: Any, **kwargs: Any) -> Any:
    """One chat call the way an app makes it: ``litellm.completion``/``acompletion`` with the
    provider's arguments (``entry="litellm"``), or ``router.completion``/``acompletion`` on group ``grp``."""
    import litellm

    if entry == "router":
        args: dict[str, Any] = {"model": "grp", "messages": MESSAGES, **kwargs}
        return await router.acompletion(**args) if is_async else router.completion(**args)
    args = {**provider, "messages": MESSAGES, **kwargs}
    return await litellm.acompletion(**args) if is_async else litellm.completion(**args)


async def drain(stream: Any, *, is_async: bool) -> list[Any]:
    """All chunks of a (proxied) stream, iterated to the end."""
    if is_async:
        return [chunk async for chunk in stream]
    return list(stream)


def text_of_chunks(chunks: list[Any]) -> str:
    return "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
