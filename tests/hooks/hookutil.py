"""Helpers shared by the hook tests (import as `from hookutil import ...`)."""

from __future__ import annotations

import inspect
import math
from typing import Any

import openai
from openai.lib.azure import AsyncAzureOpenAI, AzureOpenAI
from openai.resources.chat.completions.completions import AsyncCompletions, Completions

import tlm_hooks

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "What is 2+2?"}]

# What the SDK classes held before anything in this test session patched them.
PATCHED_OWNERS: tuple[tuple[type, str], ...] = (
    (Completions, "create"),
    (Completions, "parse"),
    (AsyncCompletions, "create"),
    (AsyncCompletions, "parse"),
    (openai.OpenAI, "copy"),
    (openai.OpenAI, "with_options"),
    (openai.AsyncOpenAI, "copy"),
    (openai.AsyncOpenAI, "with_options"),
    (AzureOpenAI, "copy"),
    (AzureOpenAI, "with_options"),
    (AsyncAzureOpenAI, "copy"),
    (AsyncAzureOpenAI, "with_options"),
)
tlm_hooks.unpatch_all()
ORIGINALS: dict[tuple[type, str], Any] = {(owner, attr): vars(owner)[attr] for owner, attr in PATCHED_OWNERS}


def prob(logprob: float) -> float:
    """The LogprobScorer score of an answer whose every token has ``logprob``."""
    return math.exp(logprob)


def score_of(obj: Any) -> float | None:
    return obj.tlm_metadata["trustworthiness_score"]


def metadata_of(obj: Any) -> Any:
    """``tlm_metadata`` of a response, or None when the hook did not attach any."""
    try:
        return obj.tlm_metadata
    except AttributeError:
        return None


async def resolve(value: Any) -> Any:
    """Await ``value`` when a call on an async client returned an awaitable."""
    return await value if inspect.isawaitable(value) else value


async def drain(stream: Any, *, is_async: bool) -> list[Any]:
    """All chunks of a (proxied) stream, iterated to the end."""
    if is_async:
        return [chunk async for chunk in stream]
    return list(stream)


async def close(stream: Any) -> None:
    await resolve(stream.close())


def text_of_chunks(chunks: list[Any]) -> str:
    return "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)


class CountingScorer:
    """A scoring function that records every request it sees and returns ``value``."""

    def __init__(self, value: float = 0.8) -> None:
        self.value = value
        self.requests: list[tlm_hooks.ScoreRequest] = []

    def __call__(self, request: tlm_hooks.ScoreRequest) -> float:
        self.requests.append(request)
        return self.value

    @property
    def calls(self) -> int:
        return len(self.requests)
