"""Adapter for `azure-ai-inference`: ``ChatCompletionsClient.complete`` (sync and ``aio``).

A call is made either with keyword arguments (``messages=…, model_extras=…``) or with a raw
``body`` (a dict, JSON bytes or a binary file object) that the SDK sends as is. Route mode puts
the TLM options in ``model_extras`` (keyword calls) or in a copy of the body (raw calls, plus
the ``extra-parameters: pass-through`` header the SDK only sets for ``model_extras``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from io import IOBase
from typing import Any

from azure.ai.inference import ChatCompletionsClient
from azure.ai.inference.aio import ChatCompletionsClient as AsyncChatCompletionsClient
from azure.ai.inference.models import (
    AsyncStreamingChatCompletions,
    ChatCompletions,
    StreamingChatCompletions,
    StreamingChatCompletionsUpdate,
)
from azure.core.exceptions import HttpResponseError

from ..options import TLMOptions, deep_merge
from ..types import ScoreRequest, TokenLogprob, TrustResult
from .base import ResultKind, Target

__all__ = ["AzureInferenceAdapter", "ADAPTER", "CLIENT_CLASSES", "PASS_THROUGH", "TARGETS"]

CLIENT_CLASSES: tuple[type, ...] = (ChatCompletionsClient, AsyncChatCompletionsClient)
PASS_THROUGH = ("extra-parameters", "pass-through")  # the header the SDK sends with model_extras
_REFUSAL_STATUSES = (400, 422)


def _plain(obj: Any) -> Any:
    """A JSON-like copy of a message, tool or content item given as an SDK model or a dict."""
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Mapping):
        as_dict = getattr(obj, "as_dict", None)  # SDK models: their JSON form (nested models too)
        items = as_dict() if callable(as_dict) else obj
        return {str(k): _plain(v) for k, v in items.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _json_object(raw: bytes | bytearray) -> dict[str, Any] | None:
    try:
        data = json.loads(bytes(raw))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _body_dict(body: Any) -> dict[str, Any] | None:
    """The request a raw ``body`` describes, as a dict (``None`` when it is not a JSON object)."""
    if isinstance(body, Mapping):
        return dict(body)
    if isinstance(body, (bytes, bytearray)):
        return _json_object(body)
    return None


def _same_form(body: Any, fields: dict[str, Any]) -> Any:
    """``fields`` as JSON bytes when ``body`` was bytes, else as the dict."""
    return json.dumps(fields).encode() if isinstance(body, (bytes, bytearray)) else fields


def _request_fields(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The request's fields: the raw body's when the call passed one, else the keyword arguments."""
    if "body" not in kwargs:
        return kwargs
    body = _body_dict(kwargs["body"])
    if body is None:
        raise ValueError(
            "cannot read this request: its `body` is not a JSON object (pass a dict, JSON bytes or messages=...)"
        )
    return body


def _with_pass_through(headers: Any) -> dict[str, Any]:
    """``headers`` plus ``extra-parameters: pass-through`` unless the caller chose a value."""
    out = dict(headers) if isinstance(headers, Mapping) else {}
    if not any(str(k).lower() == PASS_THROUGH[0] for k in out):
        out[PASS_THROUGH[0]] = PASS_THROUGH[1]
    return out


def _field(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _first_choice(response: Any) -> Any:
    choices = _field(response, "choices") or ()
    for choice in choices:
        if (_field(choice, "index") or 0) == 0:
            return choice
    return choices[0] if choices else None


def _logprobs(entries: Any) -> tuple[TokenLogprob, ...] | None:
    out = []
    for entry in entries or ():
        logprob = _field(entry, "logprob")
        if isinstance(logprob, (int, float)) and not isinstance(logprob, bool):
            top = tuple(
                (str(_field(alt, "token") or ""), float(_field(alt, "logprob")))
                for alt in _field(entry, "top_logprobs") or ()
                if isinstance(_field(alt, "logprob"), (int, float))
            )
            out.append(TokenLogprob(str(_field(entry, "token") or ""), float(logprob), top))
    return tuple(out) or None


class AzureInferenceAdapter:
    """Reads and writes `azure-ai-inference` chat requests, ``ChatCompletions`` and stream updates."""

    sdk = "azure"
    client_classes = CLIENT_CLASSES

    # -- clients ---------------------------------------------------------------------------

    def is_client(self, obj: Any) -> bool:
        return isinstance(obj, CLIENT_CLASSES)

    def client_of(self, resource: Any) -> Any:
        return resource  # `complete` is a method of the client itself

    def forget_cached_wrappers(self, client: Any) -> None:
        """Nothing to forget: the SDK caches no bound-method wrappers."""

    def bind_call(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call in keyword form (a positional ``body`` becomes ``body=``)."""
        if len(args) == 1 and "body" not in kwargs:
            return (), {**kwargs, "body": args[0]}
        return args, dict(kwargs)

    # -- requests ---------------------------------------------------------------------------

    def model_of(self, kwargs: Mapping[str, Any]) -> str | None:
        """The model a keyword call names (a raw body's is not read here: the call is remembered by client)."""
        model = kwargs.get("model")
        return model if isinstance(model, str) else None

    def prepare_kwargs(
        self, kwargs: Mapping[str, Any], *, client: Any, route_body: Mapping[str, Any] | None, add_logprobs: bool
    ) -> tuple[dict[str, Any], frozenset[str]]:
        new = dict(kwargs)
        want_logprobs = add_logprobs
        if "body" in new:
            return self._prepare_body(new, route_body, want_logprobs)
        messages = new.get("messages")
        if messages is not None and not isinstance(messages, (list, tuple)) and isinstance(messages, Iterable):
            new["messages"] = list(messages)  # read once, so both the SDK and the scorer see it
        if not route_body and not want_logprobs:
            return new, frozenset()
        # the SDK sends a call's model_extras *instead of* the client's: send both (the call's win), ours under them
        extras = deep_merge(route_body or {}, getattr(client, "_model_extras", None) or {})
        caller = new.get("model_extras")
        extras = deep_merge(extras, caller if isinstance(caller, Mapping) else {})
        added: frozenset[str] = frozenset()
        if want_logprobs and "logprobs" not in extras:
            extras["logprobs"] = True
            added = frozenset({"logprobs"})
        new["model_extras"] = extras
        return new, added

    @staticmethod
    def _prepare_body(
        new: dict[str, Any], route_body: Mapping[str, Any] | None, want_logprobs: bool
    ) -> tuple[dict[str, Any], frozenset[str]]:
        """A raw body: ours merged into a copy (the caller's keys win); one we can't read goes as is."""
        body = new["body"]
        if isinstance(body, IOBase):  # the SDK would read it once too; now the scorer can see it
            data = body.read()
            body = new["body"] = data.encode() if isinstance(data, str) else data
        fields = _body_dict(body)
        added: frozenset[str] = frozenset()
        if fields is not None and (route_body or want_logprobs):
            merged = deep_merge(route_body or {}, fields)
            if want_logprobs and "logprobs" not in merged:
                merged["logprobs"] = True
                added = frozenset({"logprobs"})
            new["body"] = _same_form(body, merged)
        if route_body:
            new["headers"] = _with_pass_through(new.get("headers"))
        return new, added

    def without(self, kwargs: Mapping[str, Any], added: frozenset[str]) -> dict[str, Any]:
        new = dict(kwargs)
        if "logprobs" in added:
            fields = _body_dict(new["body"]) if "body" in new else None
            if fields is not None:
                fields.pop("logprobs", None)
                new["body"] = _same_form(new["body"], fields)
                return new
            extras = {k: v for k, v in (new.get("model_extras") or {}).items() if k != "logprobs"}
            if extras:
                new["model_extras"] = extras
            else:
                new.pop("model_extras", None)
        return new

    def rejects(self, exc: BaseException, param: str) -> bool:
        if not isinstance(exc, HttpResponseError) or exc.status_code not in _REFUSAL_STATUSES:
            return False
        if param in str(exc):
            return True
        try:
            return param in (exc.response.text() if exc.response is not None else "")
        except Exception:
            return False

    def single_call_kwargs(self, kwargs: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        new = {k: v for k, v in kwargs.items() if k != "stream"}
        if "body" not in new:
            new.update(overrides)
            return new
        fields = _body_dict(new["body"])
        if fields is None:
            raise ValueError("cannot call the model again: the request's `body` is not a JSON object")
        fields.pop("stream", None)
        fields.update(overrides)
        new["body"] = fields
        return new

    def call_client(self, client: Any, kwargs: Mapping[str, Any]) -> Any:
        if not self.is_client(client):
            raise TypeError(f"expected an azure.ai.inference ChatCompletionsClient, got {type(client).__name__}")
        return client.complete(**kwargs)

    # -- responses --------------------------------------------------------------------------

    def kind(self, result: Any) -> ResultKind:
        if isinstance(result, ChatCompletions):
            return "completion"
        if isinstance(result, StreamingChatCompletions):
            return "stream"
        if isinstance(result, AsyncStreamingChatCompletions):
            return "async_stream"
        return "other"

    def parse_raw(self, raw: Any) -> Any:
        raise TypeError("azure-ai-inference calls return no raw-response objects")

    def score_request(
        self, kwargs: Mapping[str, Any], response: Any, options: TLMOptions | None, source_client: Any = None
    ) -> ScoreRequest:
        fields = _request_fields(kwargs)
        messages, tools = fields.get("messages"), fields.get("tools")
        if messages is None:
            raise ValueError("cannot read this request: it has no `messages`")
        choice = _first_choice(response)
        message = _field(choice, "message") if choice is not None else None
        calls = _field(message, "tool_calls") if message is not None else None
        # the model the call asked for (a judge on the same client sends it again); none: the endpoint's own
        model = fields.get("model") or getattr(source_client, "_model", None)
        return ScoreRequest(
            response=self.text_of(response),
            messages=tuple(_plain(m) for m in messages),
            tools=tuple(_plain(t) for t in tools) if tools else None,
            model=model if isinstance(model, str) else None,
            response_logprobs=_logprobs(_field(_field(choice, "logprobs"), "content")) if choice is not None else None,
            tool_calls=tuple(_plain(c) for c in calls) if calls else None,
            options=options,
            source_client=source_client,
        )

    def text_of(self, response: Any) -> str:
        """The first choice's answer: its content, else its tool calls as JSON."""
        choice = _first_choice(response)
        message = _field(choice, "message") if choice is not None else None
        if message is None:
            return ""
        content = _field(message, "content")
        if content:
            return str(content)
        calls = _field(message, "tool_calls")
        return json.dumps([_plain(c) for c in calls], sort_keys=True) if calls else ""

    def with_text(self, response: Any, text: str) -> Any:
        new = type(response)(copy.deepcopy(response.as_dict()))
        new.pop("tlm_metadata", None)
        choice = _first_choice(new)
        if choice is not None and choice.get("message") is not None:
            choice["message"]["content"] = text
        return new

    def read_metadata(self, response: Any) -> Mapping[str, Any] | None:
        data = response.get("tlm_metadata") if isinstance(response, Mapping) else None
        return data if isinstance(data, Mapping) else None

    def attach(self, response: Any, result: TrustResult) -> Any:
        """``tlm_metadata`` as a key of the model (so ``as_dict()`` keeps it) and, the same dict, an attribute."""
        data = result.to_dict()
        response["tlm_metadata"] = data
        response.tlm_metadata = data
        return response

    # -- streams ----------------------------------------------------------------------------

    def accumulate(self, chunks: Sequence[Any]) -> ChatCompletions:
        """A ``ChatCompletions`` assembled from ``StreamingChatCompletionsUpdate``s (first choice's
        text, tool calls and logprobs; usage and the backend's ``tlm_metadata`` if an update had them)."""
        text: list[str] = []
        logprobs: list[Any] = []
        calls: dict[Any, dict[str, Any]] = {}
        finish_reason, usage, metadata = None, None, None
        last_call: Any = None
        for chunk in chunks:
            if isinstance(chunk.get("tlm_metadata"), Mapping):
                metadata = chunk["tlm_metadata"]
            if chunk.get("usage") is not None:
                usage = chunk["usage"]
            for choice in chunk.get("choices") or ():
                if (choice.get("index") or 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    text.append(delta["content"])
                for call in delta.get("tool_calls") or ():
                    key = call.get("index", call.get("id") or last_call)
                    last_call = key
                    slot = calls.setdefault(
                        key, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                    )
                    slot["id"] = call.get("id") or slot["id"]
                    function = call.get("function") or {}
                    slot["function"]["name"] += function.get("name") or ""
                    slot["function"]["arguments"] += function.get("arguments") or ""
                entries = _field(choice.get("logprobs"), "content")
                if entries:
                    logprobs.extend(_plain(entries))
                if choice.get("finish_reason") is not None:
                    finish_reason = choice["finish_reason"]
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
        if calls:
            message["tool_calls"] = list(calls.values())
        first = chunks[0] if chunks else {}
        choice_data: dict[str, Any] = {"index": 0, "finish_reason": _plain(finish_reason) or "stop", "message": message}
        if logprobs:
            choice_data["logprobs"] = {"content": logprobs}
        data: dict[str, Any] = {
            "id": first.get("id") or "",
            "created": first.get("created") or 0,
            "model": first.get("model") or "",
            "choices": [choice_data],
        }
        if usage is not None:
            data["usage"] = _plain(usage)
        if metadata is not None:
            data["tlm_metadata"] = _plain(metadata)
        return ChatCompletions(data)

    def text_chunk(self, template: Any, text: str) -> StreamingChatCompletionsUpdate:
        head = {k: template.get(k) for k in ("id", "created", "model") if template.get(k) is not None}
        return StreamingChatCompletionsUpdate({**head, "choices": [{"index": 0, "delta": {"content": text}}]})


ADAPTER = AzureInferenceAdapter()

TARGETS: tuple[Target, ...] = (
    Target("azure.ai.inference", "ChatCompletionsClient", "complete", "sync", ADAPTER),
    Target("azure.ai.inference.aio", "ChatCompletionsClient", "complete", "async", ADAPTER),
)
"""What the ``azure`` family wraps (:class:`~tlm_hooks.hooks.patcher.TableFamily`)."""
