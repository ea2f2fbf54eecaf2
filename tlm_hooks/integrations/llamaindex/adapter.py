"""Adapter for one call of a LlamaIndex LLM method (``chat``, ``complete``, their stream and
async forms): reads the prompt from the call's arguments, reads and rewrites ``ChatResponse`` /
``CompletionResponse`` objects, and puts ``tlm_metadata`` in their ``additional_kwargs``."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse, MessageRole

from ...adapters.base import ResultKind
from ...options import TLMOptions, deep_merge
from ...types import ScoreRequest, TokenLogprob, TrustResult
from .reading import chat_messages, prompt_text

__all__ = ["METHODS", "LlamaIndexCallAdapter", "is_openai_family", "sibling_of"]

# method -> (is chat, is stream, is async)
METHODS: dict[str, tuple[bool, bool, bool]] = {
    "chat": (True, False, False),
    "complete": (False, False, False),
    "stream_chat": (True, True, False),
    "stream_complete": (False, True, False),
    "achat": (True, False, True),
    "acomplete": (False, False, True),
    "astream_chat": (True, True, True),
    "astream_complete": (False, True, True),
}

METADATA_KEY = "tlm_metadata"


def sibling_of(method: str) -> str:
    """The non-streamed method answering the same way (``stream_chat`` -> ``chat``, ...)."""
    is_chat, _, is_async = METHODS[method]
    return ("a" if is_async else "") + ("chat" if is_chat else "complete")


def is_openai_family(obj: Any) -> bool:
    """True for ``llama_index.llms.openai.OpenAI`` and its subclasses (OpenAILike, AzureOpenAI):
    they pass per-call keyword arguments (``extra_body``, ``logprobs``) on to the OpenAI client."""
    cls = obj if isinstance(obj, type) else type(obj)
    return any(c.__name__ == "OpenAI" and c.__module__.startswith("llama_index.llms.openai") for c in cls.__mro__)


def _message_dict(message: Any) -> Mapping[str, Any]:
    if isinstance(message, ChatMessage):
        role = message.role.value if isinstance(message.role, MessageRole) else str(message.role)
        return {"role": role, "content": message.content or ""}
    if isinstance(message, Mapping):
        return dict(message)
    return {"role": "user", "content": str(message)}


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def logprobs_of_raw(raw: Any) -> list[TokenLogprob]:
    """Token logprobs of the first choice of an OpenAI-shaped completion or chunk (object or dict).

    LlamaIndex's own ``logprobs`` field keeps only each token's alternatives, not the chosen
    token, so the raw OpenAI payload is the one source read here."""
    choices = _get(raw, "choices") if raw is not None else None
    if not choices:
        return []
    logprobs = _get(choices[0], "logprobs")
    content = _get(logprobs, "content") if logprobs is not None else None
    out = []
    for token in content or ():
        value = _get(token, "logprob")
        if isinstance(value, (int, float)):
            top = tuple((str(_get(t, "token")), float(_get(t, "logprob"))) for t in (_get(token, "top_logprobs") or ()))
            out.append(TokenLogprob(str(_get(token, "token") or ""), float(value), top))
    return out


def _raw_metadata(raw: Any) -> Mapping[str, Any] | None:
    if isinstance(raw, Mapping):
        found = raw.get(METADATA_KEY)
    else:
        found = (getattr(raw, "model_extra", None) or {}).get(METADATA_KEY)
    return found if isinstance(found, Mapping) else None


class LlamaIndexCallAdapter:
    """Per-call adapter (it holds the call's LLM, method and positional arguments)."""

    sdk = "llamaindex"

    def __init__(self, llm: Any, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        self.llm = llm
        self.method = method
        self.is_chat, self.is_stream, self.is_async = METHODS[method]
        self.args = args
        first = args[0] if args else kwargs.get("messages" if self.is_chat else "prompt")
        self.messages: Any = first if self.is_chat else None
        self.prompt: Any = None if self.is_chat else first
        self._stream_logprobs: dict[int, list[TokenLogprob]] = {}
        self.slot: Any = None  # a queries.CallSlot, set by the call when it runs inside a query engine's query

    def client_of(self, resource: Any) -> Any:
        return self.llm

    def prompt_text(self) -> str:
        """The call's input as one string (chat messages as ``role: content`` lines)."""
        if self.is_chat:
            return prompt_text(chat_messages(self.messages or ()), None)
        return prompt_text(None, str(self.prompt or ""))

    # -- requests ------------------------------------------------------------------------------

    def model_of(self, kwargs: Mapping[str, Any]) -> str | None:
        """The model the call names, else the LLM's own (its refusal of logprobs is remembered by it)."""
        model = kwargs.get("model")
        return model if isinstance(model, str) else self._model_name()

    def prepare_kwargs(
        self, kwargs: Mapping[str, Any], *, client: Any, route_body: Mapping[str, Any] | None, add_logprobs: bool
    ) -> tuple[dict[str, Any], frozenset[str]]:
        new = dict(kwargs)
        added: set[str] = set()
        if route_body:  # only OpenAI-family LLMs are routed (checked when route() is called)
            caller = new.get("extra_body")
            new["extra_body"] = deep_merge(route_body, caller if isinstance(caller, Mapping) else {})
        if add_logprobs and "logprobs" not in new and self._takes_logprobs():
            new["logprobs"] = True
            added.add("logprobs")
        return new, frozenset(added)

    def _takes_logprobs(self) -> bool:
        if not is_openai_family(self.llm) or getattr(self.llm, "logprobs", None):
            return False
        try:
            return bool(self.llm.metadata.is_chat_model)
        except Exception:
            return False

    def without(self, kwargs: Mapping[str, Any], added: frozenset[str]) -> dict[str, Any]:
        return {k: v for k, v in kwargs.items() if k not in added}

    def rejects(self, exc: BaseException, param: str) -> bool:
        if not (type(exc).__module__ or "").startswith("openai"):
            return False
        from ...adapters.openai import ADAPTER

        return ADAPTER.rejects(exc, param)

    def single_call_kwargs(self, kwargs: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        return {**kwargs, **overrides}

    def call_client(self, client: Any, kwargs: Mapping[str, Any]) -> Any:
        """The same question to another LlamaIndex LLM (non-streamed; a coroutine on async calls)."""
        method = getattr(client, sibling_of(self.method), None)
        if method is None or not callable(method):
            raise TypeError(f"Escalate(client=...) needs a LlamaIndex LLM here, got {type(client).__name__}")
        return method(*self.args, **kwargs)

    def parse_raw(self, raw: Any) -> Any:
        return raw

    def score_request(
        self, kwargs: Mapping[str, Any], response: Any, options: TLMOptions | None, source_client: Any = None
    ) -> ScoreRequest:
        if self.is_chat:
            messages: tuple[Mapping[str, Any], ...] | None = tuple(_message_dict(m) for m in (self.messages or ()))
            prompt = None
        else:
            messages, prompt = None, "" if self.prompt is None else str(self.prompt)
        logprobs = self._stream_logprobs.get(id(response)) or logprobs_of_raw(getattr(response, "raw", None))
        tool_calls = None
        if isinstance(response, ChatResponse):
            calls = response.message.additional_kwargs.get("tool_calls")
            if calls:
                tool_calls = tuple(c if isinstance(c, Mapping) else _plain(c) for c in calls)
        return ScoreRequest(
            response=self.text_of(response),
            messages=messages,
            prompt=prompt,
            model=self._model_name(),
            response_logprobs=tuple(logprobs) or None,
            tool_calls=tool_calls,
            options=options,
            source_client=source_client,
        )

    def _model_name(self) -> str | None:
        try:
            name = self.llm.metadata.model_name
        except Exception:
            return None
        return name if isinstance(name, str) else None

    # -- responses -----------------------------------------------------------------------------

    def kind(self, result: Any) -> ResultKind:
        if isinstance(result, (ChatResponse, CompletionResponse)):
            return "completion"
        if isinstance(result, Generator):
            return "stream"
        if isinstance(result, AsyncGenerator) or inspect.isasyncgen(result):
            return "async_stream"
        return "other"

    def text_of(self, response: Any) -> str:
        if isinstance(response, ChatResponse):
            return response.message.content or ""
        if isinstance(response, CompletionResponse):
            return response.text or ""
        return str(response)

    def with_text(self, response: Any, text: str) -> Any:
        """A copy of ``response`` answering ``text`` (``raw``/``logprobs`` dropped: they described
        the old answer)."""
        update: dict[str, Any] = {
            "additional_kwargs": dict(response.additional_kwargs),
            "raw": None,
            "logprobs": None,
            "delta": None,
        }
        if isinstance(response, ChatResponse):
            update["message"] = response.message.model_copy(update={"additional_kwargs": {}})
            new = response.model_copy(update=update)
            new.message.content = text
            return new
        update["text"] = text
        return response.model_copy(update=update)

    def read_metadata(self, response: Any) -> Mapping[str, Any] | None:
        own = (getattr(response, "additional_kwargs", None) or {}).get(METADATA_KEY)
        if isinstance(own, Mapping):
            return own
        return _raw_metadata(getattr(response, "raw", None))

    def attach(self, response: Any, result: TrustResult) -> Any:
        # a new dict: a response built with a shared additional_kwargs dict must not leak the score
        response.additional_kwargs = {**(response.additional_kwargs or {}), METADATA_KEY: result.to_dict()}
        if self.slot is not None:  # the query engine's Response gets it too (see .queries)
            self.slot.fill(result)
        return response

    # -- streams -------------------------------------------------------------------------------

    def accumulate(self, chunks: Sequence[Any]) -> Any:
        """The whole answer of a stream: LlamaIndex chunks carry the cumulative text (``text`` /
        ``message.content``) and the increment (``delta``); the deltas are used if the last
        chunk's text is empty. A backend's ``tlm_metadata`` on any chunk's ``raw`` is kept."""
        last = chunks[-1] if chunks else None
        text = self.text_of(last) if last is not None else ""
        if not text:
            text = "".join(getattr(c, "delta", None) or "" for c in chunks)
        logprobs: list[TokenLogprob] = []
        metadata = None
        for chunk in chunks:
            raw = getattr(chunk, "raw", None)
            logprobs.extend(logprobs_of_raw(raw))
            metadata = _raw_metadata(raw) or metadata
        extra: dict[str, Any] = dict(getattr(last, "additional_kwargs", None) or {})
        if metadata is not None:
            extra[METADATA_KEY] = dict(metadata)
        if self.is_chat:
            role = last.message.role if isinstance(last, ChatResponse) else MessageRole.ASSISTANT
            extra_msg = dict(last.message.additional_kwargs) if isinstance(last, ChatResponse) else {}
            response: Any = ChatResponse(
                message=ChatMessage(role=role, content=text, additional_kwargs=extra_msg),
                raw=getattr(last, "raw", None),
                additional_kwargs=extra,
            )
        else:
            response = CompletionResponse(text=text, raw=getattr(last, "raw", None), additional_kwargs=extra)
        if logprobs:
            self._stream_logprobs[id(response)] = logprobs
        return response

    def text_chunk(self, template: Any, text: str) -> Any:
        """One more chunk adding ``text``: ``delta`` is ``text``, the cumulative text grows by it."""
        if self.is_chat:
            role = template.message.role if isinstance(template, ChatResponse) else MessageRole.ASSISTANT
            return ChatResponse(message=ChatMessage(role=role, content=self.text_of(template) + text), delta=text)
        return CompletionResponse(text=self.text_of(template) + text, delta=text)


def _plain(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(exclude_none=True)
    return {"value": str(obj)}
