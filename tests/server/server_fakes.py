"""Fakes for the server tests: a scripted chat model and recording/broken scorers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tlm_hooks.scorers import LogprobScorer
from tlm_hooks.types import ScoreRequest, TrustResult

# -- fakes -------------------------------------------------------------------------------------


class FakeModel:
    """Answers with fixed words; records the keyword arguments of every call."""

    name = "fake-model"

    def __init__(
        self, words: Sequence[str] = ("The", " answer", " is", " 4."), *, fail: Exception | None = None
    ) -> None:
        self.words = list(words)
        self.fail = fail
        self.calls: list[dict[str, Any]] = []
        self.gate: threading.Event | None = None  # when set up, the stream waits on it after the first word
        self.fail_mid_stream = False
        self.closed = threading.Event()

    def _entries(self) -> list[dict[str, Any]]:
        return [
            {
                "token": w,
                "logprob": -0.1 * (i + 1),
                "bytes": list(w.encode()),
                "top_logprobs": [{"token": w, "logprob": -0.1 * (i + 1), "bytes": list(w.encode())}],
            }
            for i, w in enumerate(self.words)
        ]

    def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        self.calls.append({"messages": messages, **kwargs})
        if self.fail is not None:
            raise self.fail
        time.sleep(kwargs.get("seed") or 0)  # tests pass seed=<seconds> to make a slow call
        logprobs = {"content": self._entries(), "refusal": None} if kwargs.get("logprobs") else None
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1,
            "model": self.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(self.words)},
                    "logprobs": logprobs,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": len(self.words), "total_tokens": 5 + len(self.words)},
        }

    def chat_stream(
        self, messages: Sequence[Mapping[str, Any]], *, include_usage: bool = False, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        self.calls.append({"messages": messages, "include_usage": include_usage, **kwargs})
        if self.fail is not None:
            raise self.fail
        return self._chunks(include_usage, bool(kwargs.get("logprobs")))

    def _chunks(self, include_usage: bool, logprobs: bool) -> Iterator[dict[str, Any]]:
        head = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": self.name}
        try:
            yield {
                **head,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
                ],
            }
            for i, (word, entry) in enumerate(zip(self.words, self._entries(), strict=True)):
                if i == 1 and self.gate is not None:
                    assert self.gate.wait(10), "the client never saw the first word"
                if i == 2 and self.fail_mid_stream:
                    raise RuntimeError("boom mid-stream")
                lp = {"content": [entry], "refusal": None} if logprobs else None
                yield {
                    **head,
                    "choices": [{"index": 0, "delta": {"content": word}, "logprobs": lp, "finish_reason": None}],
                }
            yield {**head, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]}
            if include_usage:
                yield {
                    **head,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": 5,
                        "completion_tokens": len(self.words),
                        "total_tokens": 5 + len(self.words),
                    },
                }
        finally:
            self.closed.set()

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.chat, messages, **kwargs)


class RecordingScorer(LogprobScorer):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[ScoreRequest] = []

    async def ascore(self, request: ScoreRequest) -> TrustResult:
        self.requests.append(request)
        return await super().ascore(request)


class BrokenScorer(LogprobScorer):
    async def ascore(self, request: ScoreRequest) -> TrustResult:
        raise RuntimeError("judge unreachable")
