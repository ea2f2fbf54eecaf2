"""The chat-completions endpoint's work: parse an OpenAI request, generate, score, reply (or stream)."""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, runtime_checkable

from starlette.responses import JSONResponse, Response, StreamingResponse

from ..errors import InvalidOptionError
from ..options import _OPTION_KEYS as OPTION_KEYS  # the keys allowed inside "options"
from ..options import TLMOptions
from ..types import ScoreRequest, _content_text
from .errors import ApiError, Secrets, bad_field, model_error
from .scoring import ScorerSource, run_scorer, token_logprobs

__all__ = [
    "ChatModel",
    "ChatRequest",
    "ChatContext",
    "parse_chat_request",
    "check_parameters",
    "complete",
    "stream",
    "tlm_options",
]

logger = logging.getLogger("tlm_hooks")
T = TypeVar("T")

TLM_KEYS = ("quality_preset", "task", "options")
# OpenAI's chat-completions body parameters (openai's CompletionCreateParams; a test keeps this in
# step with the installed SDK), in three groups by what this server does with them.
USED_PARAMETERS = frozenset(
    {"messages", "model", "stream", "stream_options", "n", "logprobs", "top_logprobs", "max_tokens",
     "max_completion_tokens", "temperature", "top_p", "seed", "stop"}
)  # fmt: skip
# bookkeeping that does not change the answer, so ignoring it is not dropping an option
NEUTRAL_PARAMETERS = frozenset(
    {"user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key",
     "prompt_cache_retention", "prompt_cache_options", "parallel_tool_calls"}
)  # fmt: skip
# would change the answer, but this server cannot do them: accepted, and the reply says they were ignored
UNSUPPORTED_PARAMETERS = frozenset(
    {"tools", "tool_choice", "functions", "function_call", "response_format", "frequency_penalty",
     "presence_penalty", "logit_bias", "reasoning_effort", "verbosity", "modalities", "audio", "prediction",
     "web_search_options", "moderation", "data_sources"}  # data_sources: Azure OpenAI "on your data"
)  # fmt: skip
OPENAI_PARAMETERS = USED_PARAMETERS | NEUTRAL_PARAMETERS | UNSUPPORTED_PARAMETERS
_FORMAT_NOTE = (
    "parameter 'response_format' does not constrain this server's answer; it is used for scoring only "
    "(a JSON-object answer is compared field by field, and log 'per_field_score' scores each field)"
)
_TYPO_CUTOFF = 0.8  # difflib ratio: "qualty_preset"/"optoins" are refused, "mask" (0.75 to "task") is not
_HINT_CUTOFF = 0.85  # suggest "temperature" for "temprature", not "top_p" for vLLM's "top_k"
_RENAMED = {"quality": "quality_preset"}  # the REST API's name for the preset
_SORTED_OPENAI_PARAMETERS = sorted(OPENAI_PARAMETERS)
_MAX_NAMED_UNKNOWN = 10  # a body of a thousand junk keys gets a count, not a thousand warnings
_MAX_STOPS = 4
_MAX_TOP_LOGPROBS = 20


@runtime_checkable
class ChatModel(Protocol):
    """What the server needs from a generator model (``LocalModel`` and ``UpstreamModel`` are two)."""

    # Callables rather than methods: a model may take any subset of the generation keywords.
    @property
    def chat(self) -> Callable[..., dict[str, Any]]: ...

    @property
    def chat_stream(self) -> Callable[..., Iterator[dict[str, Any]]]: ...

    @property
    def achat(self) -> Callable[..., Awaitable[dict[str, Any]]]: ...


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat request: what to generate and how to score it."""

    messages: list[dict[str, Any]]
    generation: dict[str, Any]  # keyword arguments for the model (only what the client sent)
    logprobs: bool  # did the client ask for logprobs in the reply
    stream: bool
    include_usage: bool
    options: TLMOptions | None
    model: str | None = None  # the model name the client asked for
    warnings: tuple[str, ...] = ()  # what the request asked for and did not get (reported in tlm_metadata.log)
    response_format: dict[str, Any] | None = None  # scored per field when asked (log: ["per_field_score"])


@dataclass(frozen=True)
class ChatContext:
    """What handling one request needs: the model, the scorers, secrets to hide, and a deadline."""

    model: ChatModel
    scorers: ScorerSource | None
    secrets: Secrets
    deadline: float  # time.monotonic() by which the whole reply must be done
    timeout: float
    model_name: str | None = None  # the model name to ask ``model`` for (models that serve several)
    answered_by: str | None = None  # the name of the model that answers (reply header ``x-tlm-hooks-model``)
    warnings: tuple[str, ...] = ()  # lines for the reply's ``log.warnings`` (e.g. a substituted model)

    def remaining(self) -> float:
        """Seconds left before the deadline (at least a sliver, so waits raise rather than skip)."""
        return max(0.001, self.deadline - time.monotonic())

    def timed_out(self) -> ApiError:
        """The 504 reply for a request past its deadline."""
        return ApiError(
            504,
            f"the request took longer than the limit of {self.timeout:g}s (timeout)",
            kind="server_error",
            code="timeout",
        )


# -- parsing --------------------------------------------------------------------------------------


def _number(body: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise bad_field(key, f"expected a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _integer(body: Mapping[str, Any], key: str, low: int, high: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
        raise bad_field(key, f"expected {allowed}, got {value!r}")
    return value


def _flag(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_field(key, f"expected true or false, got {value!r}")
    return value


def parse_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``messages`` list, checked: a non-empty list of ``{role, content}`` objects."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' is required: a non-empty list of {role, content} objects", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_field(f"messages[{i}]", "expected an object with 'role' and 'content'")
        if not isinstance(message.get("role"), str) or not message["role"]:
            raise bad_field(f"messages[{i}].role", "expected a non-empty string")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise bad_field(f"messages[{i}].content", "expected a string or a list of content parts")
    return messages


def messages_text(messages: list[dict[str, Any]]) -> list[str]:
    """The text of every message (for the prompt-length limit)."""
    return [_content_text(m.get("content")) for m in messages]


def _stop(body: Mapping[str, Any]) -> str | list[str] | None:
    stop = body.get("stop")
    if stop is None or isinstance(stop, str) and stop:
        return stop
    if isinstance(stop, list) and 0 < len(stop) <= _MAX_STOPS and all(isinstance(s, str) and s for s in stop):
        return stop
    raise bad_field("stop", f"expected a non-empty string or a list of 1 to {_MAX_STOPS} of them, got {stop!r}")


def tlm_options(body: Mapping[str, Any], keys: Mapping[str, str] | None = None) -> TLMOptions | None:
    """``quality_preset``/``task``/``options`` from ``body`` (``keys`` renames, e.g. ``quality``)."""
    names = dict(keys or {key: key for key in TLM_KEYS})
    given = {ours: body[theirs] for ours, theirs in names.items() if body.get(theirs) is not None}
    if not given:
        return None
    try:
        return TLMOptions.coerce(given)
    except InvalidOptionError as exc:
        param = exc.key if exc.key not in names else names[exc.key]
        message = str(exc).replace(f"invalid {exc.key}=", f"invalid {param}=", 1)
        raise ApiError(400, message, param) from exc


def _extra_parameters(body: Mapping[str, Any], mode: str | None) -> Mapping[str, Any]:
    """Apply Azure's ``extra-parameters`` header: ``drop`` ignores TLM and unknown keys, ``error`` refuses them."""
    mode = (mode or "pass-through").strip().lower()
    if mode == "drop":
        return {k: v for k, v in body.items() if k in OPENAI_PARAMETERS}
    if mode == "error":
        for key in TLM_KEYS:
            if key in body:
                raise bad_field(key, "not allowed with header 'extra-parameters: error'; send 'pass-through'")
    elif mode != "pass-through":
        raise ApiError(400, f"invalid 'extra-parameters' header {mode!r}: allowed pass-through, drop, error")
    return body


def check_parameters(body: Mapping[str, Any], *, strict: bool = False) -> tuple[str, ...]:
    """Check a chat body's top-level keys; returns warnings for what is accepted but not used.

    A key that looks like a misspelt TLM key (``qualty_preset``) or a TLM option sent outside
    ``options`` is refused with a 400 naming it. OpenAI's own parameters are accepted; those this
    server cannot honour (``tools``, ``response_format``...) and keys nobody knows are reported.
    ``strict`` (Azure's ``extra-parameters: error``) refuses unknown keys instead.
    """
    warnings: list[str] = []
    unknown: list[str] = []
    for key, value in body.items():
        if key in TLM_KEYS or key in USED_PARAMETERS or key in NEUTRAL_PARAMETERS:
            continue
        if key in UNSUPPORTED_PARAMETERS:
            if key == "response_format" and value is not None:
                warnings.append(_FORMAT_NOTE)
            elif value is not None:  # null is how OpenAI clients say "not given"
                warnings.append(f"parameter {key!r} is not supported by this server and was ignored")
            continue
        shown = key[:80]
        if key in OPTION_KEYS:
            raise bad_field(shown, f'a TLM option: send it inside options ("options": {{"{key}": ...}})')
        close = _RENAMED.get(key.lower()) or _closest(key.lower(), TLM_KEYS)
        if close is not None:
            raise bad_field(shown, f"unknown parameter; did you mean {close!r}? TLM keys: {', '.join(TLM_KEYS)}")
        if strict:
            raise bad_field(shown, "unknown parameter, not allowed with header 'extra-parameters: error'")
        unknown.append(shown)
    for shown in unknown[:_MAX_NAMED_UNKNOWN]:
        near = _closest(shown, _SORTED_OPENAI_PARAMETERS, _HINT_CUTOFF)
        hint = f" (did you mean {near!r}?)" if near else ""
        warnings.append(f"ignored unknown parameter {shown!r}{hint}")
    if len(unknown) > _MAX_NAMED_UNKNOWN:
        warnings.append(f"ignored {len(unknown) - _MAX_NAMED_UNKNOWN} more unknown parameters")
    return tuple(warnings)


def _closest(key: str, names: Sequence[str], cutoff: float = _TYPO_CUTOFF) -> str | None:
    matches = difflib.get_close_matches(key, names, 1, cutoff)
    return matches[0] if matches else None


def parse_chat_request(body: Any, *, extra_parameters: str | None = None) -> ChatRequest:
    """Validate an OpenAI chat request body (plus TLM keys); see :func:`check_parameters` for other keys."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    body = _extra_parameters(body, extra_parameters)
    warnings = check_parameters(body, strict=(extra_parameters or "").strip().lower() == "error")
    messages = parse_messages(body)
    n = _integer(body, "n", 1)
    logprobs = _flag(body, "logprobs")
    top_logprobs = _integer(body, "top_logprobs", 0, _MAX_TOP_LOGPROBS)
    if top_logprobs and not logprobs:
        raise bad_field("top_logprobs", "needs 'logprobs': true")
    stream_flag = _flag(body, "stream")
    if n not in (None, 1) and stream_flag:
        raise bad_field("n", f"a stream from this server carries one choice, so n must be 1 with stream, got {n}")
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise bad_field("stream_options", 'expected an object like {"include_usage": true}')
    include_usage = (stream_options or {}).get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise bad_field("stream_options.include_usage", f"expected true or false, got {include_usage!r}")
    max_tokens = _integer(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad_field("model", f"expected a string, got {model!r}")
    generation = {
        "max_tokens": max_tokens,
        "temperature": _number(body, "temperature", 0.0, 2.0),
        "top_p": _number(body, "top_p", 0.0, 1.0),
        "seed": _integer(body, "seed", -(2**63), 2**63 - 1),
        "stop": _stop(body),
        "logprobs": logprobs or None,
        "top_logprobs": top_logprobs,
        "n": n if n not in (None, 1) else None,
    }
    generation = {key: value for key, value in generation.items() if value is not None}
    return ChatRequest(
        messages,
        generation,
        logprobs,
        stream_flag,
        bool(stream_flag and include_usage),
        tlm_options(body),
        model,
        warnings,
        body.get("response_format") if isinstance(body.get("response_format"), dict) else None,
    )


# -- generation and scoring ---------------------------------------------------------------------


def generation_kwargs(ctx: ChatContext, chat: ChatRequest) -> dict[str, Any]:
    """Keyword arguments for the model: the client's, plus logprobs for the scorer and the model name."""
    kwargs = dict(chat.generation)
    if ctx.scorers is not None:  # the scorer always gets the response's own logprobs
        kwargs["logprobs"] = True
    if ctx.model_name is not None:
        kwargs["model"] = ctx.model_name
    return kwargs


async def _score(ctx: ChatContext, chat: ChatRequest, text: str, entries: Any, model: str | None) -> dict[str, Any]:
    request = ScoreRequest(
        response=text,
        messages=tuple(chat.messages),
        response_logprobs=token_logprobs(entries),
        model=model,
        options=chat.options,
        response_format=chat.response_format,
    )
    return await run_scorer(ctx.scorers, request, ctx.secrets, (*ctx.warnings, *chat.warnings))


def _logged_model_error(ctx: ChatContext, exc: BaseException) -> ApiError:
    error = model_error(exc)
    if error.status >= 500:
        logger.error("tlm-hooks server: the model failed: %s", ctx.secrets.scrub(error.message))
    return error


MAX_FORWARDED_N = 128  # OpenAI's own limit on n


def check_choices(ctx: ChatContext, chat: ChatRequest) -> ChatRequest:
    """Refuse an ``n`` the model cannot answer in one request (it says how many it can, as
    ``max_choices``, or that it passes ``n`` on to a server, as ``forwards_n``; else 1); with
    ``n>1`` the score's warnings say which choice ``tlm_metadata`` is for."""
    n = chat.generation.get("n", 1)
    if n == 1:
        return chat
    most = MAX_FORWARDED_N if getattr(ctx.model, "forwards_n", False) else int(getattr(ctx.model, "max_choices", 1))
    if most <= 1:
        raise bad_field("n", f"this server generates one choice per request, so n must be 1, got {n}")
    if n > most:
        raise bad_field("n", f"this server's model generates at most {most} choices per request, got n={n}")
    note = f"n={n}: tlm_metadata scores the first choice"
    return replace(chat, warnings=(*chat.warnings, note))


async def complete(ctx: ChatContext, chat: ChatRequest) -> JSONResponse:
    """Generate the completion (``n`` choices) and attach ``tlm_metadata`` for the first (when
    the server scores)."""
    chat = check_choices(ctx, chat)
    try:
        reply = dict(await ctx.model.achat(chat.messages, **generation_kwargs(ctx, chat)))
    except (asyncio.TimeoutError, asyncio.CancelledError):
        raise
    except Exception as exc:
        raise _logged_model_error(ctx, exc) from exc
    choices = [dict(choice) for choice in reply.get("choices") or ()]
    reply["choices"] = choices
    asked = chat.generation.get("n", 1)
    if 1 < asked and len(choices) < asked:  # an upstream that ignores n: said, not hidden
        chat = replace(chat, warnings=(*chat.warnings, f"n={asked}: the model answered {len(choices)} choice(s)"))
    if ctx.scorers is not None:
        first = choices[0] if choices else {}
        text = (first.get("message") or {}).get("content") or ""
        entries = (first.get("logprobs") or {}).get("content")
        reply["tlm_metadata"] = await _score(ctx, chat, text, entries, reply.get("model"))
    if not chat.logprobs:
        for choice in choices:
            choice["logprobs"] = None
    return JSONResponse(reply)


# -- streaming ----------------------------------------------------------------------------------


async def iterate_in_thread(make_iterator: Callable[[], Iterator[T]]) -> AsyncGenerator[T, None]:
    """Run a blocking iterator in its own thread and hand its items over through a queue."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def put(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is gone; nobody is listening
            stop.set()

    def pump() -> None:
        try:
            iterator = make_iterator()
            try:
                for item in iterator:
                    if stop.is_set():
                        break
                    put("item", item)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()  # releases the model for the next request
        except BaseException as exc:
            put("error", exc)
        finally:
            put("end", None)

    threading.Thread(target=pump, name="tlm-hooks-stream", daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()


def sse(payload: Mapping[str, Any] | str) -> str:
    """One server-sent event carrying ``payload``."""
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


async def open_stream(
    ctx: ChatContext, chat: ChatRequest, *, include_usage: bool
) -> tuple[dict[str, Any] | None, AsyncGenerator[dict[str, Any], None]]:
    """Start the model's stream and wait for its first chunk (``None``: an empty stream), so that
    errors before it (bad arguments, prompt too long, time out) are still HTTP errors."""
    kwargs = generation_kwargs(ctx, chat)
    chunks = iterate_in_thread(lambda: ctx.model.chat_stream(chat.messages, include_usage=include_usage, **kwargs))
    try:
        first = await asyncio.wait_for(chunks.__anext__(), ctx.remaining())
    except StopAsyncIteration:
        first = None
    except asyncio.TimeoutError:
        await chunks.aclose()
        raise ctx.timed_out() from None
    except Exception as exc:
        await chunks.aclose()
        raise _logged_model_error(ctx, exc) from exc
    return first, chunks


async def stream(ctx: ChatContext, chat: ChatRequest, on_close: Callable[[], None]) -> Response:
    """Answer as server-sent events; ``tlm_metadata`` rides on the last chunk. ``on_close`` runs once at the end."""
    first, chunks = await open_stream(ctx, chat, include_usage=chat.include_usage)
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
    scoring = ctx.scorers is not None
    text: list[str] = []
    entries: list[Mapping[str, Any]] = []
    metadata: dict[str, Any] | None = None
    attached = not scoring
    last: dict[str, Any] = {}
    try:
        pending = first
        while pending is not None:
            chunk = dict(pending)
            last = chunk
            choices = [dict(choice) for choice in chunk.get("choices") or ()]
            chunk["choices"] = choices
            for choice in choices[:1]:
                text.append((choice.get("delta") or {}).get("content") or "")
                entries.extend((choice.get("logprobs") or {}).get("content") or ())
                if scoring and choice.get("finish_reason") is not None and metadata is None:
                    metadata = await asyncio.wait_for(
                        _score(ctx, chat, "".join(text), entries, chunk.get("model")), ctx.remaining()
                    )
                    if not chat.include_usage:  # no usage chunk follows: this is the last one
                        chunk["tlm_metadata"], attached = metadata, True
            if not choices and metadata is not None and not attached:
                chunk["tlm_metadata"], attached = metadata, True
            if not chat.logprobs:
                for choice in choices:
                    choice["logprobs"] = None
            yield sse(chunk)
            pending = await asyncio.wait_for(anext(chunks, None), ctx.remaining())
        if not attached:  # the model sent no finish or usage chunk
            if metadata is None:
                metadata = await _score(ctx, chat, "".join(text), entries, last.get("model"))
            head: dict[str, Any] = {key: last[key] for key in ("id", "object", "created", "model") if key in last}
            yield sse({**head, "choices": [], "tlm_metadata": metadata})
        yield sse("[DONE]")
    except asyncio.TimeoutError:
        yield sse(ctx.timed_out().body())
    except Exception as exc:  # mid-stream failure: OpenAI's clients raise on an `error` event
        error = _logged_model_error(ctx, exc)
        body = error.body()
        body["error"]["message"] = ctx.secrets.scrub(error.message)
        yield sse(body)
    finally:
        try:
            await chunks.aclose()
        finally:
            on_close()
