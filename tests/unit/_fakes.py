"""Test doubles shared by the unit tests: a `ResponseOps` over plain dict responses.

A "response" here is ``{"text": str, "score": float | None}``; scoring it returns its own
``score`` (or a failed result when it has none), so expectations follow from the inputs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tlm_hooks.policy import LowTrustEvent
from tlm_hooks.types import TrustResult


def resp(text: str, score: float | None) -> dict[str, Any]:
    return {"text": text, "score": score}


class FakeClient:
    """Stands for "another client" handed to ``Escalate(client=...)``."""

    def __init__(self, name: str, score: float) -> None:
        self.name = name
        self.score = score

    def answer(self) -> dict[str, Any]:
        return resp(f"answer from {self.name}", self.score)


class FakeOps:
    """Records every call; ``call_model`` returns the scripted responses in order."""

    def __init__(self, script: list[dict[str, Any]] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[tuple[Any, ...]] = []

    # answer text
    def text_of(self, response: Any) -> str:
        return response["text"]

    def with_text(self, response: Any, text: str) -> Any:
        return {**response, "text": text}

    # calling the model again
    def _next(self) -> dict[str, Any]:
        if not self.script:
            raise AssertionError("FakeOps: call_model called more often than scripted")
        return self.script.pop(0)

    def call_model(self, **overrides: Any) -> Any:
        self.calls.append(("call_model", overrides))
        return self._next()

    async def acall_model(self, **overrides: Any) -> Any:
        self.calls.append(("acall_model", overrides))
        await asyncio.sleep(0)
        return self._next()

    def call_client(self, client: Any, **overrides: Any) -> Any:
        self.calls.append(("call_client", client, overrides))
        return client.answer()

    async def acall_client(self, client: Any, **overrides: Any) -> Any:
        self.calls.append(("acall_client", client, overrides))
        await asyncio.sleep(0)
        return client.answer()

    # scoring another answer
    @staticmethod
    def _result(response: Any) -> TrustResult:
        score = response.get("score")
        return TrustResult(score) if score is not None else TrustResult.failed(RuntimeError("unscored"))

    def score(self, response: Any) -> TrustResult:
        self.calls.append(("score", response["text"]))
        return self._result(response)

    async def ascore(self, response: Any) -> TrustResult:
        self.calls.append(("ascore", response["text"]))
        await asyncio.sleep(0)
        return self._result(response)

    def methods(self) -> list[str]:
        return [c[0] for c in self.calls]


def make_event(
    score: float | None = 0.2,
    *,
    threshold: float = 0.5,
    text: str = "original answer",
    ops: FakeOps | None = None,
    is_async: bool = False,
) -> LowTrustEvent:
    response = resp(text, score)
    return LowTrustEvent(
        response=response,
        result=FakeOps._result(response),
        threshold=threshold,
        kwargs={"model": "small-model", "messages": [{"role": "user", "content": "q"}]},
        ops=ops if ops is not None else FakeOps(),
        is_async=is_async,
    )
