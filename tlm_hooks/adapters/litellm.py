"""Adapter for litellm's chat calls: ``ModelResponse`` answers and ``CustomStreamWrapper`` streams.

litellm answers in OpenAI's shape (``choices[0].message``, ``logprobs.content`` tokens, the
backend's extra fields kept), so reading requests and answers is the `openai` adapter's; what
differs is the response and stream types, how a stream is assembled, and how another
"client" (the ``litellm`` module or a ``Router``) is called. One instance per call style:
litellm's stream object serves both ``for`` and ``async for``, so only the caller knows which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper
from litellm.types.utils import Delta, ModelResponse, ModelResponseStream, StreamingChoices

from ..options import TLMOptions
from ..types import ScoreRequest, TokenLogprob, TrustResult
from .base import ResultKind
from .openai import OpenAIAdapter, _MetadataAttribute, _plain, is_given

__all__ = ["LiteLLMAdapter", "SYNC", "ASYNC", "HIDDEN_PARAMS_KEY"]

_METADATA = "tlm_metadata"
HIDDEN_PARAMS_KEY = "tlm_metadata"
"""The key of the score in ``response._hidden_params`` (where litellm keeps per-call facts)."""


class LiteLLMAdapter(OpenAIAdapter):
    """Reads and writes litellm ``completion``/``acompletion`` calls (module functions and ``Router``)."""

    sdk = "litellm"

    def __init__(self, *, is_async: bool) -> None:
        self.is_async = is_async

    def is_client(self, obj: Any) -> bool:
        import litellm

        return obj is litellm or isinstance(obj, litellm.Router)

    def call_client(self, client: Any, kwargs: Mapping[str, Any]) -> Any:
        """``client.completion`` (or ``acompletion``) on the ``litellm`` module or a ``Router``."""
        if not self.is_client(client):
            raise TypeError(f"expected the litellm module or a litellm.Router, got {type(client).__name__}")
        return client.acompletion(**kwargs) if self.is_async else client.completion(**kwargs)

    # -- responses --------------------------------------------------------------------------

    def kind(self, result: Any) -> ResultKind:
        if isinstance(result, ModelResponse):
            return "completion"
        if isinstance(result, CustomStreamWrapper):
            return "async_stream" if self.is_async else "stream"
        return "other"

    def score_request(
        self, kwargs: Mapping[str, Any], response: Any, options: TLMOptions | None, source_client: Any = None
    ) -> ScoreRequest:
        # litellm's Choices has no `logprobs` attribute at all when there were none
        choice = response.choices[0] if response.choices else None
        content = getattr(getattr(choice, "logprobs", None), "content", None)
        calls = getattr(getattr(choice, "message", None), "tool_calls", None)
        messages: Any = kwargs.get("messages")
        tools: Any = kwargs.get("tools")
        model = kwargs.get("model")
        return ScoreRequest(
            response=self.text_of(response),
            messages=tuple(_plain(m) for m in messages) if is_given(messages) else None,
            prompt=None if is_given(messages) else "",
            tools=tuple(_plain(t) for t in tools) if is_given(tools) else None,
            model=model if isinstance(model, str) else getattr(response, "model", None),
            response_logprobs=tuple(
                TokenLogprob(t.token, t.logprob, tuple((a.token, a.logprob) for a in (t.top_logprobs or ())))
                for t in content
            )
            if content
            else None,
            tool_calls=tuple(_plain(c) for c in calls) if calls else None,
            options=options,
            source_client=source_client,
        )

    def attach(self, response: Any, result: TrustResult) -> Any:
        """``tlm_metadata`` as on OpenAI responses (an attribute outside ``model_dump``), and the
        same dict in ``response._hidden_params["tlm_metadata"]``, where litellm users find per-call facts."""
        response = super().attach(response, result)
        hidden = getattr(response, "_hidden_params", None)
        if isinstance(hidden, dict):
            hidden[HIDDEN_PARAMS_KEY] = getattr(response, _METADATA)
        return response

    def with_text(self, response: Any, text: str) -> Any:
        new = super().with_text(response, text)
        hidden = getattr(response, "_hidden_params", None)
        if isinstance(hidden, dict):  # private attributes are not part of model_copy
            new._hidden_params = dict(hidden)
        return new

    # -- streams ----------------------------------------------------------------------------

    def accumulate(self, chunks: Sequence[Any]) -> Any:
        """A ``ModelResponse`` assembled from litellm's ``ModelResponseStream`` chunks (first
        choice's text, logprobs and tool calls; the backend's ``tlm_metadata`` if a chunk carried it)."""
        chat = super().accumulate(chunks)
        # the backend's tlm_metadata stays an extra field, as on a plain (non-streamed) answer
        return ModelResponse(**chat.model_dump(exclude_none=True))

    def text_chunk(self, template: Any, text: str) -> Any:
        return ModelResponseStream(
            id=getattr(template, "id", None) or "",
            created=getattr(template, "created", None) or 0,
            model=getattr(template, "model", None) or "",
            choices=[StreamingChoices(index=0, delta=Delta(content=text), finish_reason=None)],
        )


if _METADATA not in vars(ModelResponse):
    ModelResponse.tlm_metadata = _MetadataAttribute()  # type: ignore[attr-defined]

SYNC = LiteLLMAdapter(is_async=False)
ASYNC = LiteLLMAdapter(is_async=True)
