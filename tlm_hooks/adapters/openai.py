"""Adapter for the `openai` SDK (2.x and 3.x): chat completions on OpenAI/AzureOpenAI clients."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import openai
from openai import AsyncOpenAI, AsyncStream, OpenAI, Stream
from openai._legacy_response import LegacyAPIResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ..options import TLMOptions, deep_merge
from ..types import ScoreRequest, TokenLogprob, TrustResult
from .base import ResultKind, Target

__all__ = ["OpenAIAdapter", "ADAPTER", "CLIENT_CLASSES", "TARGETS"]

CLIENT_CLASSES: tuple[type, ...] = (OpenAI, AsyncOpenAI)  # AzureOpenAI/AsyncAzureOpenAI subclass these
_RAW_HEADER = "X-Stainless-Raw-Response"
_CACHED_WRAPPERS = ("with_raw_response", "with_streaming_response")
_METADATA = "tlm_metadata"


def is_given(value: Any) -> bool:
    """False for ``None`` and the SDK's "not given" sentinels (``NOT_GIVEN``, ``omit``)."""
    return value is not None and not isinstance(value, (openai.NotGiven, getattr(openai, "Omit", openai.NotGiven)))


def _plain(obj: Any) -> Any:
    """A JSON-like copy of a message/tool given as dict, TypedDict or pydantic model."""
    if type(obj) is dict and all(type(v) is str for v in obj.values()):  # the common case, fast
        return dict(obj)
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if hasattr(obj, "model_dump"):
        return obj.model_dump(exclude_none=True)
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


class OpenAIAdapter:
    """Reads and writes `openai` chat-completion requests, responses and chunks."""

    sdk = "openai"
    client_classes = CLIENT_CLASSES  # clients that may cache raw-response wrappers

    # -- clients ---------------------------------------------------------------------------

    def is_client(self, obj: Any) -> bool:
        return isinstance(obj, CLIENT_CLASSES)

    def client_of(self, resource: Any) -> Any:
        return getattr(resource, "_client", None)

    def bind_call(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return args, kwargs  # type: ignore[return-value]  # the wrapper's own dict, passed on as is

    def forget_cached_wrappers(self, client: Any) -> None:
        """Drop ``with_raw_response``/``with_streaming_response`` objects the client built before
        it was patched: they hold the unpatched method and would bypass the hook."""
        holders = [client]
        chat = vars(client).get("chat")
        if chat is not None:
            holders.append(chat)
            completions = vars(chat).get("completions")
            if completions is not None:
                holders.append(completions)
        responses = vars(client).get("responses")
        if responses is not None:
            holders.append(responses)
        for holder in holders:
            for name in _CACHED_WRAPPERS:
                vars(holder).pop(name, None)

    # -- requests ---------------------------------------------------------------------------

    def model_of(self, kwargs: Mapping[str, Any]) -> str | None:
        model = kwargs.get("model")
        return model if isinstance(model, str) else None

    def prepare_kwargs(
        self, kwargs: Mapping[str, Any], *, client: Any, route_body: Mapping[str, Any] | None, add_logprobs: bool
    ) -> tuple[dict[str, Any], frozenset[str]]:
        new = dict(kwargs)
        added: set[str] = set()
        messages = new.get("messages")
        if messages is not None and not isinstance(messages, (list, tuple)) and isinstance(messages, Iterable):
            new["messages"] = list(messages)  # read once, so both the SDK and the scorer see it
        tools = new.get("tools")
        if is_given(tools) and not isinstance(tools, (list, tuple)) and isinstance(tools, Iterable):
            new["tools"] = list(tools)
        if route_body:
            caller = new.get("extra_body")
            new["extra_body"] = deep_merge(route_body, caller if isinstance(caller, Mapping) else {})  # a fresh copy
        if add_logprobs and not is_given(new.get("logprobs")):
            new["logprobs"] = True
            added.add("logprobs")
        return new, frozenset(added)

    def without(self, kwargs: Mapping[str, Any], added: frozenset[str]) -> dict[str, Any]:
        return {k: v for k, v in kwargs.items() if k not in added}

    def rejects(self, exc: BaseException, param: str) -> bool:
        if not isinstance(exc, openai.BadRequestError):
            return False
        body = getattr(exc, "body", None)
        if isinstance(body, Mapping) and body.get("param") == param:
            return True
        return param in str(exc)

    def single_call_kwargs(self, kwargs: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        new = {k: v for k, v in kwargs.items() if k not in ("stream", "stream_options")}
        headers = new.get("extra_headers")
        if isinstance(headers, Mapping):
            new["extra_headers"] = {k: v for k, v in headers.items() if k.lower() != _RAW_HEADER.lower()}
        new.update(overrides)
        return new

    def call_client(self, client: Any, kwargs: Mapping[str, Any]) -> Any:
        if not self.is_client(client):
            raise TypeError(f"expected an OpenAI-style client, got {type(client).__name__}")
        return client.chat.completions.create(**kwargs)

    # -- responses --------------------------------------------------------------------------

    def kind(self, result: Any) -> ResultKind:
        if isinstance(result, ChatCompletion):
            return "completion"
        if isinstance(result, Stream):
            return "stream"
        if isinstance(result, AsyncStream):
            return "async_stream"
        if isinstance(result, LegacyAPIResponse):
            return "raw"
        return "other"

    def parse_raw(self, raw: Any) -> Any:
        return raw.parse()

    def score_request(
        self, kwargs: Mapping[str, Any], response: Any, options: TLMOptions | None, source_client: Any = None
    ) -> ScoreRequest:
        messages: Any = kwargs.get("messages")
        tools: Any = kwargs.get("tools")
        choice = response.choices[0] if response.choices else None
        tool_calls = None
        logprobs = None
        if choice is not None:
            calls = getattr(choice.message, "tool_calls", None)
            if calls:
                tool_calls = tuple(_plain(c) for c in calls)
            content = getattr(choice.logprobs, "content", None) if choice.logprobs is not None else None
            if content:  # list comprehensions: this runs on every hooked call
                logprobs = tuple(
                    [
                        TokenLogprob(t.token, t.logprob, tuple([(a.token, a.logprob) for a in tops]) if tops else ())
                        for t in content
                        for tops in (t.top_logprobs,)
                    ]
                )
        model = kwargs.get("model")
        return ScoreRequest(
            response=self.text_of(response),
            messages=tuple([_plain(m) for m in messages]) if is_given(messages) else None,
            prompt=None if is_given(messages) else "",
            tools=tuple(_plain(t) for t in tools) if is_given(tools) else None,
            model=model if isinstance(model, str) else getattr(response, "model", None),
            response_logprobs=logprobs,
            tool_calls=tool_calls,
            response_format=_response_format(kwargs.get("response_format")),
            options=options,
            source_client=source_client,
        )

    def text_of(self, response: Any) -> str:
        """The first choice's answer: its content, else its refusal, else its tool calls as JSON."""
        if not response.choices:
            return ""
        message = response.choices[0].message
        if message.content:
            return message.content
        if getattr(message, "refusal", None):
            return message.refusal
        calls = getattr(message, "tool_calls", None)
        if calls:
            return json.dumps([_plain(c) for c in calls], sort_keys=True)
        return ""

    def with_text(self, response: Any, text: str) -> Any:
        """A copy whose answer is ``text``. On a message with tool calls: text that extends the
        message's text (``AppendWarning``) keeps the calls, and extending an answer that is only
        tool calls changes nothing (a warning there would be sent back to the model with the
        tool results); any other text replaces the calls (``finish_reason`` becomes ``stop``)."""
        message = response.choices[0].message if response.choices else None
        calls = getattr(message, "tool_calls", None)
        if message is None or not calls:
            new = response.model_copy(deep=True)
            if new.choices:
                new.choices[0].message.content = text
            return new
        if not message.content and text.startswith(self.text_of(response)):
            return response
        new = response.model_copy(deep=True)
        new.choices[0].message.content = text
        if not (message.content and text.startswith(message.content)):
            new.choices[0].message.tool_calls = None
            new.choices[0].finish_reason = "stop"
        return new

    def read_metadata(self, response: Any) -> Mapping[str, Any] | None:
        extra = getattr(response, "model_extra", None) or {}
        data = extra.get("tlm_metadata")
        return data if isinstance(data, Mapping) else None

    def attach(self, response: Any, result: TrustResult) -> Any:
        """Put ``tlm_metadata`` on ``response`` as a plain instance attribute.

        It is not a pydantic field or extra, so ``model_dump``/``to_json``/``repr``/``==`` are
        those of the SDK's own response, while attribute access, pickling and (deep) copies keep
        it (pydantic carries the instance ``__dict__``). A ``tlm_metadata`` the backend sent is
        part of the response as received: it stays where the SDK put it and is updated there.
        """
        data = result.to_dict()
        extra = getattr(response, "__pydantic_extra__", None)
        if isinstance(extra, dict) and _METADATA in extra:
            extra[_METADATA] = data
        else:
            vars(response)[_METADATA] = data
        return response

    # -- streams ----------------------------------------------------------------------------

    def accumulate(self, chunks: Sequence[Any]) -> ChatCompletion:
        """A ``ChatCompletion`` assembled from ``ChatCompletionChunk``s (first choice's text,
        logprobs and tool calls; the backend's ``tlm_metadata`` if a chunk carried it)."""
        text: list[str] = []
        refusal: list[str] = []
        logprobs: list[Any] = []
        tool_calls: dict[int, dict[str, Any]] = {}
        finish_reason = None
        metadata = None
        first = chunks[0] if chunks else None
        usage = None
        for chunk in chunks:
            extra = getattr(chunk, "model_extra", None) or {}
            if isinstance(extra.get("tlm_metadata"), Mapping):
                metadata = extra["tlm_metadata"]
            if getattr(chunk, "usage", None) is not None:
                usage = chunk.usage
            for choice in chunk.choices or ():
                if choice.index != 0:
                    continue
                delta = choice.delta
                if delta is not None:
                    if delta.content:
                        text.append(delta.content)
                    if getattr(delta, "refusal", None):
                        refusal.append(delta.refusal)
                    for call in getattr(delta, "tool_calls", None) or ():
                        slot = tool_calls.setdefault(call.index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                        if call.id:
                            slot["id"] = call.id
                        if call.function is not None:
                            slot["function"]["name"] += call.function.name or ""
                            slot["function"]["arguments"] += call.function.arguments or ""
                if choice.logprobs is not None and choice.logprobs.content:
                    logprobs.extend(t.model_dump() for t in choice.logprobs.content)
                if choice.finish_reason is not None:
                    finish_reason = choice.finish_reason
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not tool_calls else None}
        if refusal:
            message["refusal"] = "".join(refusal)
        if tool_calls:
            message["tool_calls"] = [tool_calls[i] for i in sorted(tool_calls)]
        data: dict[str, Any] = {
            "id": getattr(first, "id", "") or "",
            "object": "chat.completion",
            "created": getattr(first, "created", 0) or 0,
            "model": getattr(first, "model", "") or "",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": finish_reason or "stop",
                    "logprobs": {"content": logprobs} if logprobs else None,
                }
            ],
        }
        if usage is not None:
            data["usage"] = usage.model_dump()
        if metadata is not None:
            data["tlm_metadata"] = dict(metadata)
        return ChatCompletion.model_validate(data)

    def text_chunk(self, template: Any, text: str) -> ChatCompletionChunk:
        return ChatCompletionChunk.model_validate(
            {
                "id": getattr(template, "id", "") or "",
                "object": "chat.completion.chunk",
                "created": getattr(template, "created", 0) or 0,
                "model": getattr(template, "model", "") or "",
                "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
            }
        )

    def ends_answer(self, chunk: Any) -> bool:
        return False  # a stream of chunks with no answer-ending event: scored at its end

    def closing_chunk(self, chunk: Any, response: Any, *, after_extra: bool) -> Any:
        return chunk


def _response_format(value: Any) -> dict[str, Any] | None:
    """The request's ``response_format`` as OpenAI's body param (a pydantic class given to
    ``parse()`` becomes its ``json_schema`` form); ``None`` when not given or unreadable."""
    if not is_given(value):
        return None
    if isinstance(value, Mapping):
        return _plain(value)  # type: ignore[no-any-return]
    try:
        from openai.lib._parsing._completions import type_to_response_format_param

        return dict(type_to_response_format_param(value))  # type: ignore[arg-type]
    except Exception:  # an SDK without the helper, or a type it cannot convert: score as text
        return None


class _MetadataAttribute:
    """``ChatCompletion.tlm_metadata``: where the hook keeps a score outside the model's fields.

    Reads the instance ``__dict__`` (a score the hook attached), else the extra fields (one the
    backend sent, or assigned by other code). Assigning updates the hook's score where there is
    one, else stores an extra field exactly as pydantic would without this attribute. Without it,
    pydantic 2.11+ would store an assignment as an extra field that the ``__dict__`` entry hides.
    """

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        own = vars(obj)
        if _METADATA in own:
            return own[_METADATA]
        extra = getattr(obj, "__pydantic_extra__", None)
        if extra and _METADATA in extra:
            return extra[_METADATA]
        raise AttributeError(f"{type(obj).__name__!r} object has no attribute {_METADATA!r}")

    def __set__(self, obj: Any, value: Any) -> None:
        own = vars(obj)
        extra = getattr(obj, "__pydantic_extra__", None)
        if _METADATA in own or not isinstance(extra, dict):
            own[_METADATA] = value
        else:
            extra[_METADATA] = value

    def __delete__(self, obj: Any) -> None:
        own = vars(obj)
        extra = getattr(obj, "__pydantic_extra__", None)
        if _METADATA in own:
            del own[_METADATA]
        elif extra and _METADATA in extra:
            del extra[_METADATA]
        else:
            raise AttributeError(_METADATA)


if _METADATA not in vars(ChatCompletion):
    ChatCompletion.tlm_metadata = _MetadataAttribute()  # type: ignore[attr-defined]

ADAPTER = OpenAIAdapter()

_CHAT = "openai.resources.chat.completions.completions"
TARGETS: tuple[Target, ...] = (
    Target(_CHAT, "Completions", "create", "sync", ADAPTER),
    Target(_CHAT, "Completions", "parse", "sync", ADAPTER),
    Target(_CHAT, "AsyncCompletions", "create", "async", ADAPTER),
    Target(_CHAT, "AsyncCompletions", "parse", "async", ADAPTER),
    # clients derived with copy()/with_options() inherit their parent's hook
    Target("openai", "OpenAI", "copy", "copy"),
    Target("openai", "OpenAI", "with_options", "copy"),
    Target("openai", "AsyncOpenAI", "copy", "copy"),
    Target("openai", "AsyncOpenAI", "with_options", "copy"),
    Target("openai.lib.azure", "AzureOpenAI", "copy", "copy"),
    Target("openai.lib.azure", "AzureOpenAI", "with_options", "copy"),
    Target("openai.lib.azure", "AsyncAzureOpenAI", "copy", "copy"),
    Target("openai.lib.azure", "AsyncAzureOpenAI", "with_options", "copy"),
)
"""What the ``openai`` family wraps for chat completions (:class:`~tlm_hooks.hooks.patcher.TableFamily`)."""
