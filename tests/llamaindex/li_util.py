"""Helpers for the LlamaIndex tests (import as `from li_util import ...`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from pydantic import PrivateAttr

import tlm_hooks

DOCUMENTS = (
    "Paris is the capital of France. The Eiffel Tower stands in Paris.",
    "Berlin is the capital of Germany. The Brandenburg Gate stands in Berlin.",
    "Bananas are a yellow fruit rich in potassium.",
)

METHODS = (
    "chat",
    "complete",
    "stream_chat",
    "stream_complete",
    "achat",
    "acomplete",
    "astream_chat",
    "astream_complete",
)


class ScriptedLLM(CustomLLM):
    """A CustomLLM that answers from a script (else ``default``), streams word by word, records
    every call it receives, and raises ``fail`` when set. Only ``complete``/``stream_complete``
    are its own: ``chat`` and the async forms come from ``CustomLLM`` and call them."""

    default: str = "The answer is Paris."
    _script: list[str] = PrivateAttr(default_factory=list)
    _calls: list[tuple[str, str, dict[str, Any]]] = PrivateAttr(default_factory=list)
    _fail: BaseException | None = PrivateAttr(default=None)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted")

    def say(self, *texts: str) -> ScriptedLLM:
        self._script.extend(texts)
        return self

    def fail_with(self, exc: BaseException | None) -> None:
        self._fail = exc

    @property
    def calls(self) -> list[tuple[str, str, dict[str, Any]]]:
        return self._calls

    def _next(self, method: str, prompt: str, kwargs: dict[str, Any]) -> str:
        self._calls.append((method, prompt, dict(kwargs)))
        if self._fail is not None:
            raise self._fail
        return self._script.pop(0) if self._script else self.default

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._next("complete", prompt, kwargs))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = self._next("stream_complete", prompt, kwargs)

        def gen() -> CompletionResponseGen:
            so_far = ""
            for i, word in enumerate(text.split(" ")):
                delta = word if i == 0 else " " + word
                so_far += delta
                yield CompletionResponse(text=so_far, delta=delta)

        return gen()


class CountingScorer:
    """A scoring function recording each request; returns ``value``."""

    def __init__(self, value: float = 0.8) -> None:
        self.value = value
        self.requests: list[tlm_hooks.ScoreRequest] = []
        self._lock = threading.Lock()

    def __call__(self, request: tlm_hooks.ScoreRequest) -> float:
        with self._lock:
            self.requests.append(request)
        return self.value

    @property
    def calls(self) -> int:
        return len(self.requests)


class BlockingScorer(CountingScorer):
    """Blocks every score until ``release()``; ``started`` is set when the first score begins."""

    def __init__(self, value: float = 0.8) -> None:
        super().__init__(value)
        self.started = threading.Event()
        self._go = threading.Event()

    def __call__(self, request: tlm_hooks.ScoreRequest) -> float:
        self.started.set()
        assert self._go.wait(30), "BlockingScorer was never released"
        return super().__call__(request)

    def release(self) -> None:
        self._go.set()


class FakeRAG:
    """Stands in for TrustworthyRAG: records what it was asked, returns a fixed RAG result."""

    def __init__(self, trust: float = 0.7, groundedness: float = 0.9) -> None:
        self.trust = trust
        self.groundedness = groundedness
        self.calls: list[dict[str, Any]] = []

    async def ascore(
        self, query: str, context: Sequence[str], response: str, prompt: str | None = None
    ) -> dict[str, Any]:
        self.calls.append({"query": query, "context": list(context), "response": response})
        return {"trustworthiness": {"score": self.trust}, "response_groundedness": {"score": self.groundedness}}


def metadata(response: Any) -> dict[str, Any] | None:
    return response.additional_kwargs.get("tlm_metadata")
