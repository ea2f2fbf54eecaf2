"""Helpers shared by the Azure AI Inference tests (import as `from azutil import ...`)."""

from __future__ import annotations

import inspect
import math
from typing import Any

from azure.ai.inference import ChatCompletionsClient
from azure.ai.inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient

import tlm_hooks

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "What is 2+2?"}]

# What the SDK classes held before anything in this test session patched them.
PATCHED_OWNERS: tuple[tuple[type, str], ...] = (
    (ChatCompletionsClient, "complete"),
    (AsyncChatCompletionsClient, "complete"),
)
tlm_hooks.unpatch_all()
ORIGINALS: dict[tuple[type, str], Any] = {(owner, attr): vars(owner)[attr] for owner, attr in PATCHED_OWNERS}


def prob(logprob: float) -> float:
    """The LogprobScorer score of an answer whose every token has ``logprob``."""
    return math.exp(logprob)


def score_of(obj: Any) -> float | None:
    return obj.tlm_metadata["trustworthiness_score"]


def metadata_of(obj: Any) -> Any:
    """``tlm_metadata`` of a response (attribute or key), or None when the hook attached none."""
    return getattr(obj, "tlm_metadata", None) or (obj.get("tlm_metadata") if hasattr(obj, "get") else None)


async def resolve(value: Any) -> Any:
    """Await ``value`` when a call on an async client returned an awaitable."""
    return await value if inspect.isawaitable(value) else value


async def drain(stream: Any, *, is_async: bool) -> list[Any]:
    """All updates of a (proxied) stream, iterated to the end."""
    if is_async:
        return [update async for update in stream]
    return list(stream)


def text_of_updates(updates: list[Any]) -> str:
    return "".join((u.choices[0].delta.content or "") for u in updates if u.choices)


def assert_restored() -> None:
    for (owner, attr), original in ORIGINALS.items():
        assert vars(owner)[attr] is original, f"{owner.__name__}.{attr} was not restored"


class CountingScorer:
    """A scoring function that records every request it sees and returns ``value``."""

    def __init__(self, value: float = 0.8) -> None:
        self.value = value
        self.requests: list[tlm_hooks.ScoreRequest] = []

    def __call__(self, request: tlm_hooks.ScoreRequest) -> float:
        self.requests.append(request)
        return self.value
