"""The Responses endpoint (``POST /v1/responses``): the request read as a chat, answered by the
same model and scorer, and replied as a ``Response`` (or its stream of events) with ``tlm_metadata``.

The server keeps no conversation state: ``previous_response_id``/``conversation`` are answered
with the turns the request holds, and the reply's ``log.warnings`` says so.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

from starlette.responses import JSONResponse, Response, StreamingResponse

from ..adapters._responses_items import LOGPROBS_INCLUDE, input_messages
from ..options import _OPTION_KEYS as OPTION_KEYS
from .chat import (
    TLM_KEYS,
    ChatContext,
    ChatRequest,
    _integer,
    _logged_model_error,
    _number,
    _score,
    generation_kwargs,
    open_stream,
    tlm_options,
)
from .errors import ApiError, bad_field

__all__ = ["RESPONSES_PATHS", "parse_responses_request", "run_responses"]

RESPONSES_PATHS: tuple[str, ...] = (
    "/v1/responses",
    "/api/responses",  # OpenAI base_url=".../api"
    *(f"{prefix}/openai{version}/responses" for prefix in ("", "/api") for version in ("", "/v1")),  # AzureOpenAI
)
_USED = frozenset(
    {"input", "instructions", "model", "stream", "include", "max_output_tokens", "temperature", "top_p", "top_logprobs"}
)
_NEUTRAL = frozenset(
    {"user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key", "prompt_cache_retention",
     "prompt_cache_options", "parallel_tool_calls", "stream_options", "truncation", "background"}
)  # fmt: skip
_UNSUPPORTED = frozenset(
    {"tools", "tool_choice", "text", "reasoning", "max_tool_calls", "prompt", "context_management", "verbosity",
     "moderation", "image", "access_programs"}
)  # fmt: skip
_EARLIER_TURNS = ("previous_response_id", "conversation")
_MAX_TOP_LOGPROBS = 20


def _check_keys(body: Mapping[str, Any]) -> list[str]:
    """Warnings for keys accepted but not used; a TLM option sent outside ``options`` is refused."""
    warnings: list[str] = []
    for key, value in body.items():
        if key in TLM_KEYS or key in _USED or key in _NEUTRAL or value is None:
            continue
        if key in _EARLIER_TURNS:
            warnings.append(
                f"{key} {value if isinstance(value, str) else '(object)'!s}: this server keeps no conversations, "
                "so the earlier turns were not seen; answered and scored with the turns this request holds"
            )
        elif key in _UNSUPPORTED:
            warnings.append(f"parameter {key!r} is not supported by this server and was ignored")
        elif key in OPTION_KEYS:
            raise bad_field(key, f'a TLM option: send it inside options ("options": {{"{key}": ...}})')
        else:
            warnings.append(f"ignored unknown parameter {key[:80]!r}")
    return warnings


def parse_responses_request(body: Any) -> ChatRequest:
    """Validate a Responses request body (plus TLM keys) into the chat request it amounts to."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    warnings = _check_keys(body)
    raw_input = body.get("input")
    if not (isinstance(raw_input, str) and raw_input) and not (isinstance(raw_input, list) and raw_input):
        raise ApiError(400, "'input' is required: a non-empty string or a non-empty list of input items", "input")
    if isinstance(raw_input, list) and not all(isinstance(item, dict) for item in raw_input):
        raise bad_field("input", "expected a list of objects (messages or items)")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_field("instructions", f"expected a string, got {type(instructions).__name__}")
    messages, unseen = input_messages(instructions, raw_input)
    if unseen:
        warnings.append(f"input holds items this server cannot look up ({', '.join(unseen)}): they were not seen")
    if not any(m["role"] == "user" for m in messages):
        raise bad_field("input", "holds no user message to answer")
    include = body.get("include")
    if include is not None and not (isinstance(include, list) and all(isinstance(i, str) for i in include)):
        raise bad_field("include", "expected a list of strings")
    logprobs = LOGPROBS_INCLUDE in (include or ())
    for extra in sorted(set(include or ()) - {LOGPROBS_INCLUDE}):
        warnings.append(f"include {extra!r} is not supported by this server and was ignored")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_field("stream", f"expected true or false, got {stream!r}")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad_field("model", f"expected a string, got {model!r}")
    top_logprobs = _integer(body, "top_logprobs", 0, _MAX_TOP_LOGPROBS)
    generation = {
        "max_tokens": _integer(body, "max_output_tokens", 1),
        "temperature": _number(body, "temperature", 0.0, 2.0),
        "top_p": _number(body, "top_p", 0.0, 1.0),
        "logprobs": logprobs or None,
        "top_logprobs": top_logprobs if logprobs else None,
    }
    generation = {key: value for key, value in generation.items() if value is not None}
    return ChatRequest(messages, generation, logprobs, bool(stream), False, tlm_options(body), model, tuple(warnings))


# -- replies ------------------------------------------------------------------------------------


def _logprobs(entries: Any) -> list[dict[str, Any]]:
    out = []
    for entry in entries or ():
        alts = [{"token": a.get("token", ""), "logprob": a.get("logprob", 0.0), "bytes": a.get("bytes") or []}
                for a in entry.get("top_logprobs") or ()]  # fmt: skip
        out.append({"token": entry.get("token", ""), "logprob": entry.get("logprob", 0.0),
                    "bytes": entry.get("bytes") or [], "top_logprobs": alts})  # fmt: skip
    return out


class _Reply:
    """The ``Response`` being built for one request (ids, model, status, text)."""

    def __init__(self, chat: ChatRequest, model: str | None) -> None:
        self.id = f"resp_{uuid.uuid4().hex}"
        self.message_id = f"msg_{uuid.uuid4().hex}"
        self.created_at = int(time.time())
        self.model = model or chat.model or "local"
        self.instructions = next((m["content"] for m in chat.messages if m["role"] == "system"), None)
        self.chat = chat

    def part(self, text: str, entries: Any) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [],
                "logprobs": _logprobs(entries) if self.chat.logprobs else []}  # fmt: skip

    def message(self, text: str, entries: Any, status: str = "completed") -> dict[str, Any]:
        content = [self.part(text, entries)] if status == "completed" else []
        return {"type": "message", "id": self.message_id, "role": "assistant", "status": status, "content": content}

    def response(
        self, status: str, output: list[dict[str, Any]], usage: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "object": "response", "created_at": self.created_at, "model": self.model,
            "status": status, "output": output, "parallel_tool_calls": False, "tool_choice": "auto", "tools": [],
            "instructions": self.instructions, "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "temperature": self.chat.generation.get("temperature"), "top_p": self.chat.generation.get("top_p"),
            "max_output_tokens": self.chat.generation.get("max_tokens"),
        }  # fmt: skip
        if usage:
            prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            data["usage"] = {
                "input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion,
                "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0},
            }  # fmt: skip
        return data


def _status(finish_reason: Any) -> str:
    return "incomplete" if finish_reason == "length" else "completed"


async def complete(ctx: ChatContext, chat: ChatRequest) -> JSONResponse:
    """Generate one answer and reply with a ``Response`` carrying ``tlm_metadata`` (when the server scores)."""
    try:
        reply = await ctx.model.achat(chat.messages, **generation_kwargs(ctx, chat))
    except (asyncio.TimeoutError, asyncio.CancelledError):
        raise
    except Exception as exc:
        raise _logged_model_error(ctx, exc) from exc
    choice = (reply.get("choices") or [{}])[0]
    text = (choice.get("message") or {}).get("content") or ""
    entries = (choice.get("logprobs") or {}).get("content")
    built = _Reply(chat, reply.get("model"))
    data = built.response(_status(choice.get("finish_reason")), [built.message(text, entries)], reply.get("usage"))
    if ctx.scorers is not None:
        data["tlm_metadata"] = await _score(ctx, chat, text, entries, reply.get("model"))
    return JSONResponse(data)


def _event(kind: str, number: int, **fields: Any) -> str:
    payload = {"type": kind, "sequence_number": number, **fields}
    return f"event: {kind}\ndata: {json.dumps(payload)}\n\n"


async def stream(ctx: ChatContext, chat: ChatRequest, on_close: Callable[[], None]) -> Response:
    """Answer as the Responses API's server-sent events; ``tlm_metadata`` rides on the
    ``response.completed`` event's response. ``on_close`` runs once at the end."""
    first, chunks = await open_stream(ctx, chat, include_usage=True)
    return StreamingResponse(
        _events(ctx, first, chunks, chat, on_close),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    ctx: ChatContext,
    first: dict[str, Any] | None,
    chunks: AsyncGenerator[dict[str, Any], None],
    chat: ChatRequest,
    on_close: Callable[[], None],
) -> AsyncIterator[str]:
    built = _Reply(chat, (first or {}).get("model"))
    number = 0

    def event(kind: str, **fields: Any) -> str:
        nonlocal number
        number += 1
        return _event(kind, number - 1, **fields)

    ids = {"item_id": built.message_id, "output_index": 0, "content_index": 0}
    text: list[str] = []
    entries: list[Mapping[str, Any]] = []
    finish_reason: Any = None
    usage: Mapping[str, Any] | None = None
    try:
        yield event("response.created", response=built.response("in_progress", []))
        yield event("response.in_progress", response=built.response("in_progress", []))
        yield event("response.output_item.added", output_index=0, item=built.message("", None, "in_progress"))
        yield event("response.content_part.added", **ids, part=built.part("", None))
        pending = first
        while pending is not None:
            usage = pending.get("usage") or usage
            for choice in (pending.get("choices") or ())[:1]:
                delta = (choice.get("delta") or {}).get("content") or ""
                new = list((choice.get("logprobs") or {}).get("content") or ())
                entries.extend(new)
                finish_reason = choice.get("finish_reason") or finish_reason
                if delta:
                    text.append(delta)
                    shown = _logprobs(new) if chat.logprobs else []
                    yield event("response.output_text.delta", **ids, delta=delta, logprobs=shown)
            pending = await asyncio.wait_for(anext(chunks, None), ctx.remaining())
        whole = "".join(text)
        part = built.part(whole, entries)
        yield event("response.output_text.done", **ids, text=whole, logprobs=part["logprobs"])
        yield event("response.content_part.done", **ids, part=part)
        message = built.message(whole, entries)
        yield event("response.output_item.done", output_index=0, item=message)
        status = _status(finish_reason)
        final = built.response(status, [message], usage)
        if ctx.scorers is not None:
            final["tlm_metadata"] = await asyncio.wait_for(
                _score(ctx, chat, whole, entries, built.model), ctx.remaining()
            )
        yield event(f"response.{status}", response=final)
    except asyncio.TimeoutError:
        error = ctx.timed_out()
        yield event("error", code=error.code or "timeout", message=error.message, param=None)
    except Exception as exc:  # mid-stream failure: the API's `error` event
        error = _logged_model_error(ctx, exc)
        yield event("error", code=error.code or error.kind, message=ctx.secrets.scrub(error.message), param=None)
    finally:
        try:
            await chunks.aclose()
        finally:
            on_close()


async def run_responses(ctx: ChatContext, chat: ChatRequest, release: Callable[[], None]) -> Response:
    """The endpoint's work: a ``Response``, or its event stream."""
    return await (stream(ctx, chat, release) if chat.stream else complete(ctx, chat))
