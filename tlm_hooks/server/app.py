"""An OpenAI-compatible chat-completions app over one generator model, with `tlm_metadata`.

``create_app(model, scorer=...)`` serves ``POST /v1/chat/completions`` (also under
``/api/chat/completions`` and ``/api/v1/openai_trustworthy_llm/chat/completions``, the paths
TLM clients use) and ``GET /health``. The TLM keys ``quality_preset``, ``task`` and ``options``
(where OpenAI's ``extra_body`` puts them) are validated; when a scorer is configured every reply
carries its result as top-level ``tlm_metadata``. The model runs in worker threads, so the
event loop never blocks; requests queue on the model.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..errors import InvalidOptionError, MissingDependencyError
from ..options import TLMOptions
from ..scorers.base import Scorer
from ..types import ScoreRequest, TokenLogprob, TrustResult

try:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("the server needs starlette and uvicorn: pip install 'tlm-hooks[server]'") from exc

__all__ = ["ChatModel", "create_app", "CHAT_PATHS"]

logger = logging.getLogger("tlm_hooks")
T = TypeVar("T")

CHAT_PATHS: tuple[str, ...] = (
    "/v1/chat/completions",
    "/api/chat/completions",
    "/api/v1/openai_trustworthy_llm/chat/completions",
)
_TLM_KEYS = ("quality_preset", "task", "options")
_MAX_STOPS = 4
_MAX_TOP_LOGPROBS = 20


@runtime_checkable
class ChatModel(Protocol):
    """What the server needs from a generator model (``LocalModel`` is one)."""

    # Callables rather than methods: a model may take any subset of the generation keywords.
    @property
    def chat(self) -> Callable[..., dict[str, Any]]: ...

    @property
    def chat_stream(self) -> Callable[..., Iterator[dict[str, Any]]]: ...

    @property
    def achat(self) -> Callable[..., Awaitable[dict[str, Any]]]: ...


class _ApiError(Exception):
    """An error reply in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code = status, message, param, kind, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


@dataclass(frozen=True)
class _ChatRequest:
    messages: list[dict[str, Any]]
    generation: dict[str, Any]  # keyword arguments for the model (only what the client sent)
    logprobs: bool  # did the client ask for logprobs in the reply
    stream: bool
    include_usage: bool
    options: TLMOptions | None


# -- request parsing ----------------------------------------------------------------------------


def _bad(param: str, message: str) -> _ApiError:
    return _ApiError(400, f"invalid '{param}': {message}", param)


def _number(body: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise _bad(key, f"expected a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _integer(body: Mapping[str, Any], key: str, low: int, high: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
        raise _bad(key, f"expected {allowed}, got {value!r}")
    return value


def _flag(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(key, f"expected true or false, got {value!r}")
    return value


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _ApiError(400, "'messages' is required: a non-empty list of {role, content} objects", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages[{i}]", "expected an object with 'role' and 'content'")
        if not isinstance(message.get("role"), str) or not message["role"]:
            raise _bad(f"messages[{i}].role", "expected a non-empty string")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _bad(f"messages[{i}].content", "expected a string or a list of content parts")
    return messages


def _stop(body: Mapping[str, Any]) -> str | list[str] | None:
    stop = body.get("stop")
    if stop is None or isinstance(stop, str) and stop:
        return stop
    if isinstance(stop, list) and 0 < len(stop) <= _MAX_STOPS and all(isinstance(s, str) and s for s in stop):
        return stop
    raise _bad("stop", f"expected a non-empty string or a list of 1 to {_MAX_STOPS} of them, got {stop!r}")


def _tlm_options(body: Mapping[str, Any]) -> TLMOptions | None:
    given = {key: body[key] for key in _TLM_KEYS if body.get(key) is not None}
    if not given:
        return None
    try:
        return TLMOptions.coerce(given)
    except InvalidOptionError as exc:
        raise _ApiError(400, str(exc), exc.key) from exc


def parse_chat_request(body: Any) -> _ChatRequest:
    """Validate an OpenAI chat request body (plus TLM keys); unknown keys are ignored."""
    if not isinstance(body, dict):
        raise _ApiError(400, "the request body must be a JSON object")
    messages = _messages(body)
    n = _integer(body, "n", 1)
    if n not in (None, 1):
        raise _bad("n", f"this server generates one choice per request, so n must be 1, got {n}")
    logprobs = _flag(body, "logprobs")
    top_logprobs = _integer(body, "top_logprobs", 0, _MAX_TOP_LOGPROBS)
    if top_logprobs and not logprobs:
        raise _bad("top_logprobs", "needs 'logprobs': true")
    stream = _flag(body, "stream")
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise _bad("stream_options", 'expected an object like {"include_usage": true}')
    include_usage = (stream_options or {}).get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise _bad("stream_options.include_usage", f"expected true or false, got {include_usage!r}")
    include_usage = bool(stream and include_usage)
    max_tokens = _integer(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1)
    generation = {
        "max_tokens": max_tokens,
        "temperature": _number(body, "temperature", 0.0, 2.0),
        "top_p": _number(body, "top_p", 0.0, 1.0),
        "seed": _integer(body, "seed", -(2**63)),
        "stop": _stop(body),
        "logprobs": logprobs or None,
        "top_logprobs": top_logprobs,
    }
    generation = {key: value for key, value in generation.items() if value is not None}
    return _ChatRequest(messages, generation, logprobs, stream, include_usage, _tlm_options(body))


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _ApiError(413, f"request body is larger than the {limit}-byte limit")
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limit:
            raise _ApiError(413, f"request body is larger than the {limit}-byte limit")
    if not data:
        raise _ApiError(400, "the request body is empty: expected a JSON object with 'messages'")
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _ApiError(400, f"the request body is not valid JSON: {exc}") from exc


# -- auth ---------------------------------------------------------------------------------------


def _authorised(request: Request, keys: Sequence[bytes]) -> bool:
    given = request.headers.get("authorization", "")
    token = given[7:].strip() if given[:7].lower() == "bearer " else request.headers.get("api-key", "").strip()
    if not token:
        return False
    candidate = token.encode("utf-8")
    return any([hmac.compare_digest(candidate, key) for key in keys])  # no early exit: constant work


# -- scoring ------------------------------------------------------------------------------------


def _token_logprobs(entries: Sequence[Mapping[str, Any]] | None) -> tuple[TokenLogprob, ...] | None:
    if not entries:
        return None
    return tuple(
        TokenLogprob(
            str(entry.get("token", "")),
            float(entry["logprob"]),
            tuple((str(alt.get("token", "")), float(alt["logprob"])) for alt in entry.get("top_logprobs") or ()),
        )
        for entry in entries
    )


async def _score(
    scorer: Scorer, chat: _ChatRequest, text: str, entries: Sequence[Mapping[str, Any]] | None, model: str | None
) -> dict[str, Any]:
    try:
        request = ScoreRequest(
            response=text,
            messages=tuple(chat.messages),
            response_logprobs=_token_logprobs(entries),
            model=model,
            options=chat.options,
        )
        result = await scorer.ascore(request)
    except Exception as exc:
        logger.warning("tlm-hooks server: scoring failed: %s: %s", type(exc).__name__, exc)
        result = TrustResult.failed(exc)
    return result.to_dict()


def _generation_kwargs(chat: _ChatRequest, scorer: Scorer | None) -> dict[str, Any]:
    kwargs = dict(chat.generation)
    if scorer is not None:  # the scorer always gets the response's own logprobs
        kwargs["logprobs"] = True
    return kwargs


def _model_error(exc: Exception) -> _ApiError:
    if isinstance(exc, ValueError):
        match = re.match(r"invalid ([\w.\[\]]+)[=:]", str(exc))
        return _ApiError(400, str(exc), match.group(1) if match else None)
    logger.error("tlm-hooks server: the model failed", exc_info=exc)
    return _ApiError(500, f"the model failed: {type(exc).__name__}: {exc}", kind="server_error")


# -- non-streaming --------------------------------------------------------------------------------


async def _complete(model: ChatModel, scorer: Scorer | None, chat: _ChatRequest) -> JSONResponse:
    try:
        reply = dict(await model.achat(chat.messages, **_generation_kwargs(chat, scorer)))
    except Exception as exc:
        raise _model_error(exc) from exc
    choices = [dict(choice) for choice in reply.get("choices") or ()]
    reply["choices"] = choices
    if scorer is not None:
        first = choices[0] if choices else {}
        text = (first.get("message") or {}).get("content") or ""
        entries = (first.get("logprobs") or {}).get("content")
        reply["tlm_metadata"] = await _score(scorer, chat, text, entries, reply.get("model"))
    if not chat.logprobs:
        for choice in choices:
            choice["logprobs"] = None
    return JSONResponse(reply)


# -- streaming ------------------------------------------------------------------------------------


async def _iterate_in_thread(make_iterator: Callable[[], Iterator[T]]) -> AsyncGenerator[T, None]:
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


def _sse(payload: Mapping[str, Any] | str) -> str:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n"


async def _stream(model: ChatModel, scorer: Scorer | None, chat: _ChatRequest) -> Response:
    kwargs = _generation_kwargs(chat, scorer)
    chunks = _iterate_in_thread(lambda: model.chat_stream(chat.messages, include_usage=chat.include_usage, **kwargs))
    try:  # errors before the first chunk (bad arguments, prompt too long) are still HTTP errors
        first = await chunks.__anext__()
    except StopAsyncIteration:
        first = None
    except Exception as exc:
        await chunks.aclose()
        raise _model_error(exc) from exc
    return StreamingResponse(
        _stream_events(first, chunks, scorer, chat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream_events(
    first: dict[str, Any] | None,
    chunks: AsyncGenerator[dict[str, Any], None],
    scorer: Scorer | None,
    chat: _ChatRequest,
) -> AsyncIterator[str]:
    text: list[str] = []
    entries: list[Mapping[str, Any]] = []
    metadata: dict[str, Any] | None = None
    attached = scorer is None
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
                if scorer is not None and choice.get("finish_reason") is not None and metadata is None:
                    metadata = await _score(scorer, chat, "".join(text), entries, chunk.get("model"))
                    if not chat.include_usage:  # no usage chunk follows: this is the last one
                        chunk["tlm_metadata"], attached = metadata, True
            if not choices and metadata is not None and not attached:
                chunk["tlm_metadata"], attached = metadata, True
            if not chat.logprobs:
                for choice in choices:
                    choice["logprobs"] = None
            yield _sse(chunk)
            pending = await anext(chunks, None)
        if not attached and scorer is not None:  # the model sent no finish or usage chunk
            if metadata is None:
                metadata = await _score(scorer, chat, "".join(text), entries, last.get("model"))
            head: dict[str, Any] = {key: last[key] for key in ("id", "object", "created", "model") if key in last}
            yield _sse({**head, "choices": [], "tlm_metadata": metadata})
        yield _sse("[DONE]")
    except Exception as exc:  # mid-stream failure: OpenAI's clients raise on an `error` event
        logger.error("tlm-hooks server: the stream failed", exc_info=exc)
        yield _sse(_model_error(exc).body())
    finally:
        await chunks.aclose()


# -- the app ------------------------------------------------------------------------------------


def create_app(
    model: ChatModel,
    *,
    scorer: Scorer | None = None,
    api_keys: Sequence[str] | None = None,
    max_body_bytes: int = 1_000_000,
) -> Starlette:
    """An OpenAI-compatible chat-completions app over ``model``, scoring replies with ``scorer``."""
    if not isinstance(model, ChatModel):
        raise TypeError(f"model must have chat, chat_stream and achat methods, got {type(model).__name__}")
    if api_keys is not None:
        if isinstance(api_keys, str) or not api_keys or not all(isinstance(k, str) and k for k in api_keys):
            raise ValueError("api_keys must be a non-empty list of non-empty strings (or None for no auth)")
        keys = [key.encode("utf-8") for key in api_keys]
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes!r}")

    async def chat_completions(request: Request) -> Response:
        try:
            if api_keys is not None and not _authorised(request, keys):
                raise _ApiError(
                    401, "invalid or missing API key: send 'Authorization: Bearer <key>'", code="invalid_api_key"
                )
            chat = parse_chat_request(await _read_json(request, max_body_bytes))
            if chat.stream:
                return await _stream(model, scorer, chat)
            return await _complete(model, scorer, chat)
        except _ApiError as exc:
            return exc.response()

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": getattr(model, "name", None)})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse(
            {"error": {"message": str(exc.detail), "type": "invalid_request_error", "param": None, "code": None}},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    routes = [Route(path, chat_completions, methods=["POST"]) for path in CHAT_PATHS]
    routes.append(Route("/health", health, methods=["GET"]))
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
