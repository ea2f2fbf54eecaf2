"""Adapter for the `openai` SDK's Responses API (``client.responses.create``/``parse``, their
``with_raw_response`` forms and the ``responses.stream(...)`` helper, which calls ``create``).

What is scored: the response's output text (else its refusal, else its function calls as JSON);
the prompt is ``instructions`` + ``input`` turned into chat messages, so every scorer reads it as
it reads a chat call. Function calls and function tools are handed over in the chat shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from openai import AsyncStream, Stream
from openai._legacy_response import LegacyAPIResponse
from openai.types.responses import Response, ResponseOutputMessage, ResponseTextDeltaEvent

from ..options import TLMOptions, deep_merge
from ..types import ScoreRequest, TokenLogprob
from ._responses_items import EARLIER_TURNS_UNSEEN, LOGPROBS_INCLUDE, chat_call, chat_tools, input_messages
from .base import ResultKind, Target
from .openai import OpenAIAdapter, _MetadataAttribute, _plain, is_given

__all__ = ["ResponsesAdapter", "ADAPTER", "TARGETS", "LOGPROBS_INCLUDE", "EARLIER_TURNS_UNSEEN"]


# the answer-ending events: the score is computed when one arrives, before it is passed on
_LAST_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_METADATA = "tlm_metadata"
_MODULE = "openai.resources.responses.responses"


def tool_calls_of(response: Any) -> tuple[dict[str, Any], ...] | None:
    """The response's ``function_call`` output items as chat tool calls."""
    calls = tuple(
        chat_call(item.call_id, item.name, item.arguments)
        for item in response.output or ()
        if getattr(item, "type", None) == "function_call"
    )
    return calls or None


def _text_parts(response: Any) -> list[Any]:
    return [
        part
        for item in response.output or ()
        if getattr(item, "type", None) == "message"
        for part in item.content or ()
        if getattr(part, "type", None) == "output_text"
    ]


class ResponsesAdapter(OpenAIAdapter):
    """Reads and writes `openai` Responses requests, ``Response`` objects and stream events."""

    # -- requests -------------------------------------------------------------------------------

    def prepare_kwargs(
        self, kwargs: Mapping[str, Any], *, client: Any, route_body: Mapping[str, Any] | None, add_logprobs: bool
    ) -> tuple[dict[str, Any], frozenset[str]]:
        """As for chat; logprobs are asked for with ``include`` (reported as the added name
        ``"logprobs"``, so the pipeline's "ask once, remember a refusal" rule applies)."""
        new = dict(kwargs)
        added: set[str] = set()
        for key in ("input", "tools"):
            value = new.get(key)
            if is_given(value) and not isinstance(value, (str, list, tuple)) and isinstance(value, Iterable):
                new[key] = list(value)  # read once, so both the SDK and the scorer see it
        if route_body:
            caller = new.get("extra_body")
            new["extra_body"] = deep_merge(route_body, caller if isinstance(caller, Mapping) else {})
        if add_logprobs:
            include = new.get("include")
            include = list(include or ()) if is_given(include) else []
            if LOGPROBS_INCLUDE not in include:
                new["include"] = [*include, LOGPROBS_INCLUDE]
                added.add("logprobs")
        return new, frozenset(added)

    def without(self, kwargs: Mapping[str, Any], added: frozenset[str]) -> dict[str, Any]:
        new = dict(kwargs)
        if "logprobs" in added:
            include = [i for i in new.get("include") or () if i != LOGPROBS_INCLUDE]
            if include:
                new["include"] = include
            else:
                new.pop("include", None)
        return new

    def rejects(self, exc: BaseException, param: str) -> bool:
        if param == "logprobs":
            return super().rejects(exc, "include") or super().rejects(exc, "logprobs")
        return super().rejects(exc, param)

    def call_client(self, client: Any, kwargs: Mapping[str, Any]) -> Any:
        if not self.is_client(client):
            raise TypeError(f"expected an OpenAI-style client, got {type(client).__name__}")
        if "text_format" in kwargs:  # a parse() call
            return client.responses.parse(**kwargs)
        return client.responses.create(**kwargs)

    # -- responses ------------------------------------------------------------------------------

    def kind(self, result: Any) -> ResultKind:
        if isinstance(result, Response):
            return "completion"
        if isinstance(result, Stream):
            return "stream"
        if isinstance(result, AsyncStream):
            return "async_stream"
        if isinstance(result, LegacyAPIResponse):
            return "raw"
        return "other"

    def score_request(
        self, kwargs: Mapping[str, Any], response: Any, options: TLMOptions | None, source_client: Any = None
    ) -> ScoreRequest:
        messages, unseen = input_messages(kwargs.get("instructions"), kwargs.get("input"))
        for key in ("previous_response_id", "conversation", "prompt"):
            value = kwargs.get(key)
            if is_given(value):
                shown = (
                    value
                    if isinstance(value, str)
                    else (_plain(value).get("id") if isinstance(_plain(value), Mapping) else None)
                )
                unseen.insert(0, f"{key} {shown!r}" if shown else key)
        logprobs = [
            TokenLogprob(t.token, t.logprob, tuple((a.token, a.logprob) for a in (t.top_logprobs or ())))
            for part in _text_parts(response)
            for t in (getattr(part, "logprobs", None) or ())
        ]
        model = kwargs.get("model")
        return ScoreRequest(
            response=self.text_of(response),
            messages=tuple(messages) if messages else None,
            prompt=None if messages else "",
            tools=chat_tools(kwargs.get("tools")),
            model=model if isinstance(model, str) else getattr(response, "model", None),
            response_logprobs=tuple(logprobs) or None,
            tool_calls=tool_calls_of(response),
            options=options,
            source_client=source_client,
            warnings=(EARLIER_TURNS_UNSEEN.format(what=", ".join(unseen)),) if unseen else (),
        )

    def text_of(self, response: Any) -> str:
        """The output text; else the refusal; else the function calls as JSON (chat shape)."""
        text = "".join(part.text for part in _text_parts(response))
        if text:
            return text
        for item in response.output or ():
            for part in getattr(item, "content", None) or ():
                if getattr(part, "type", None) == "refusal":
                    return str(part.refusal)
        calls = tool_calls_of(response)
        return json.dumps(list(calls), sort_keys=True) if calls else ""

    def with_text(self, response: Any, text: str) -> Any:
        """A deep copy whose output text is ``text`` (in the first ``output_text`` part; the
        other text parts are dropped; ``parsed`` is cleared, since it described the old text)."""
        new = response.model_copy(deep=True)
        parts = _text_parts(new)
        if not parts:
            message = ResponseOutputMessage.model_validate(
                {"id": "msg_tlm_hooks", "type": "message", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}
            )  # fmt: skip
            new.output = [*new.output, message]
            return new
        first = parts[0]
        first.text = text
        first.logprobs = []
        if hasattr(first, "parsed"):
            first.parsed = None
        for item in new.output:
            if getattr(item, "type", None) == "message":
                item.content = [p for p in item.content if p is first or getattr(p, "type", None) != "output_text"]
        return new

    # -- streams --------------------------------------------------------------------------------

    def ends_answer(self, chunk: Any) -> bool:
        """True for the event that ends the answer (``response.completed``, ``.incomplete``,
        ``.failed``): the score is computed before it is passed on."""
        return getattr(chunk, "type", None) in _LAST_EVENTS

    def closing_chunk(self, chunk: Any, response: Any, *, after_extra: bool) -> Any:
        """``chunk`` (the answer-ending event) carrying ``response`` with its ``tlm_metadata`` as
        a field, as a TLM backend sends it, so the SDK's ``responses.stream()`` helper keeps it
        on ``get_final_response()``. After an extra event its sequence number moves up one."""
        carried = response.model_copy()
        metadata = vars(response).get(_METADATA)
        extra = carried.__pydantic_extra__
        if metadata is not None and isinstance(extra, dict):
            carried.__pydantic_extra__ = {**extra, _METADATA: metadata}
        update: dict[str, Any] = {"response": carried}
        if after_extra:
            update["sequence_number"] = chunk.sequence_number + 1
        return chunk.model_copy(update=update)

    def accumulate(self, chunks: Sequence[Any]) -> Any:  # a Response
        """The whole ``Response``: the answer-ending event's, else one built from the events seen
        (the last snapshot, the finished output items and the text received so far)."""
        for chunk in reversed(chunks):
            if getattr(chunk, "type", None) in _LAST_EVENTS:
                return chunk.response  # type: ignore[no-any-return]
        snapshot: Any = None
        output: dict[int, Any] = {}
        texts: dict[int, dict[str, Any]] = {}
        for chunk in chunks:
            kind = getattr(chunk, "type", None)
            if kind in ("response.created", "response.in_progress", "response.queued"):
                snapshot = chunk.response
            elif kind == "response.output_item.done":
                output[chunk.output_index] = chunk.item
            elif kind == "response.output_text.delta":
                slot = texts.setdefault(chunk.output_index, {"id": chunk.item_id, "text": [], "logprobs": []})
                slot["text"].append(chunk.delta)
                slot["logprobs"].extend({**_plain(t), "bytes": []} for t in chunk.logprobs or ())
        for index, slot in texts.items():
            if index not in output:
                output[index] = ResponseOutputMessage.model_validate(
                    {"id": slot["id"], "type": "message", "role": "assistant", "status": "in_progress",
                     "content": [{"type": "output_text", "text": "".join(slot["text"]), "annotations": [],
                                  "logprobs": slot["logprobs"]}]}
                )  # fmt: skip
        items = [output[i] for i in sorted(output)]
        # copies of what the SDK built (leniently: no validation that a strict schema could fail)
        if snapshot is not None:
            return snapshot.model_copy(update={"output": items, "status": "in_progress"})  # type: ignore[no-any-return]
        return Response.model_construct(
            id="", object="response", created_at=0, model="", output=items, parallel_tool_calls=True,
            tool_choice="auto", tools=[], status="in_progress",
        )  # fmt: skip

    def text_chunk(self, template: Any, text: str) -> Any:  # a ResponseTextDeltaEvent
        """A ``response.output_text.delta`` event adding ``text`` to the last text part of the
        answer in ``template`` (the answer-ending event)."""
        item_id, output_index, content_index = "msg_tlm_hooks", 0, 0
        response = getattr(template, "response", None)
        for index, item in enumerate(getattr(response, "output", None) or ()):
            if getattr(item, "type", None) == "message":
                for part_index, part in enumerate(item.content or ()):
                    if getattr(part, "type", None) == "output_text":
                        item_id, output_index, content_index = item.id, index, part_index
        return ResponseTextDeltaEvent.model_validate(
            {
                "type": "response.output_text.delta",
                "item_id": item_id,
                "output_index": output_index,
                "content_index": content_index,
                "delta": text,
                "logprobs": [],
                "sequence_number": getattr(template, "sequence_number", 0) or 0,
            }
        )


if _METADATA not in vars(Response):
    Response.tlm_metadata = _MetadataAttribute()  # type: ignore[attr-defined]

ADAPTER = ResponsesAdapter()
# the methods this adapter hooks (in the openai family, beside chat's: tlm_hooks/hooks/families.py)
TARGETS: tuple[Target, ...] = (
    Target(_MODULE, "Responses", "create", "sync", ADAPTER),
    Target(_MODULE, "Responses", "parse", "sync", ADAPTER),
    Target(_MODULE, "AsyncResponses", "create", "async", ADAPTER),
    Target(_MODULE, "AsyncResponses", "parse", "async", ADAPTER),
)
