"""A LlamaIndex app with no network and no download: :class:`LocalLLM` answers with the embedded
model (``tlm_hooks.local``), :class:`HashingEmbedding` embeds text by hashing its words."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from pydantic import Field, PrivateAttr

from .reading import chat_messages

if TYPE_CHECKING:
    from ...local.model import LocalModel

__all__ = ["LocalLLM", "HashingEmbedding"]

_CALL_KEYS = ("max_tokens", "temperature", "top_p", "seed", "stop", "logprobs", "top_logprobs")


class LocalLLM(CustomLLM):
    """A LlamaIndex LLM answered by the embedded local model (SmolLM2-135M-Instruct by default,
    loaded on first use; extra ``[local]``), or by the ``LocalModel`` given.

    Each response's ``raw`` is the OpenAI-shaped completion (or chunk) the model returned, with
    token logprobs when ``logprobs`` is set, so :class:`~tlm_hooks.LogprobScorer` and
    :class:`~tlm_hooks.TLMScorer` can use them. Per-call keyword arguments ``max_tokens``,
    ``temperature``, ``top_p``, ``seed``, ``stop``, ``logprobs``, ``top_logprobs`` override the
    fields; others are ignored. Async calls run on the model's own thread.
    """

    max_tokens: int = Field(default=64, ge=1, description="Most tokens per answer.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    logprobs: bool = Field(default=True, description="Return token logprobs in `raw`.")
    context_window: int = Field(default=2048, ge=1)
    _model: Any = PrivateAttr(default=None)

    def __init__(self, model: LocalModel | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model = model

    @classmethod
    def class_name(cls) -> str:
        return "tlm_hooks_local_llm"

    @property
    def metadata(self) -> LLMMetadata:
        name = getattr(self._model, "name", None) or "smollm2-135m-instruct"
        return LLMMetadata(
            context_window=self.context_window, num_output=self.max_tokens, is_chat_model=True, model_name=name
        )

    def local_model(self) -> LocalModel:
        """The model, loading the embedded one if none was given."""
        if self._model is None:
            from ...local.model import get_default_model

            self._model = get_default_model()
        return self._model  # type: ignore[no-any-return]

    def _params(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "logprobs": self.logprobs,
        }
        params.update({k: v for k, v in kwargs.items() if k in _CALL_KEYS})
        return params

    # -- chat -------------------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        raw = self.local_model().chat(chat_messages(messages), **self._params(kwargs))
        return _chat_response(raw)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        model = await asyncio.to_thread(self.local_model)
        raw = await model.achat(chat_messages(messages), **self._params(kwargs))
        return _chat_response(raw)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        chunks = self.local_model().chat_stream(chat_messages(messages), **self._params(kwargs))

        def gen() -> ChatResponseGen:
            text = ""
            try:
                for chunk in chunks:
                    delta = _delta_of(chunk)
                    text += delta
                    yield ChatResponse(
                        message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=delta, raw=chunk
                    )
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

        return gen()

    # -- completion -------------------------------------------------------------------------------

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raw = self.local_model().chat([{"role": "user", "content": prompt}], **self._params(kwargs))
        return CompletionResponse(text=_text_of(raw), raw=raw)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        model = await asyncio.to_thread(self.local_model)
        raw = await model.achat([{"role": "user", "content": prompt}], **self._params(kwargs))
        return CompletionResponse(text=_text_of(raw), raw=raw)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        chunks = self.local_model().chat_stream([{"role": "user", "content": prompt}], **self._params(kwargs))

        def gen() -> CompletionResponseGen:
            text = ""
            try:
                for chunk in chunks:
                    delta = _delta_of(chunk)
                    text += delta
                    yield CompletionResponse(text=text, delta=delta, raw=chunk)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

        return gen()


def _text_of(raw: Mapping[str, Any]) -> str:
    choices = raw.get("choices") or [{}]
    return str((choices[0].get("message") or {}).get("content") or "")


def _chat_response(raw: Mapping[str, Any]) -> ChatResponse:
    return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=_text_of(raw)), raw=raw)


def _delta_of(chunk: Mapping[str, Any]) -> str:
    choices = chunk.get("choices") or [{}]
    return str((choices[0].get("delta") or {}).get("content") or "")


_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedding(BaseEmbedding):
    """Bag-of-words embeddings by feature hashing: each lower-cased word (and word pair) adds
    ``±1`` at a hashed position (blake2b, so stable across processes), then the vector is scaled
    to length 1. Texts sharing words get a high cosine similarity: lexical retrieval, fully
    offline and deterministic, for tests, examples and small document sets. Words shorter than
    ``min_word_length`` are skipped (mostly stop words)."""

    dim: int = Field(default=512, ge=16, le=65536)
    min_word_length: int = Field(default=3, ge=1)

    @classmethod
    def class_name(cls) -> str:
        return "tlm_hooks_hashing_embedding"

    def embed(self, text: str) -> list[float]:
        """The embedding of ``text`` (all zeros when it has no words)."""
        vector = [0.0] * self.dim
        words = [w for w in _WORD.findall(text.lower()) if len(w) >= self.min_word_length]
        features = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.dim
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embed(text)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embed(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self.embed(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self.embed(text)
