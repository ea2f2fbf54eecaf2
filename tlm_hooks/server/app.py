"""`create_app`: the TLM-compatible HTTP app over one chat model and one scorer source.

Every model endpoint runs the same guard: API key, body size and reading time, validation
(before taking a slot), admission (bounded concurrency and queue, else 503 + ``Retry-After``),
and a deadline (504). Work is cancelled when its client disconnects, and cut off with a 503
``shutting_down`` when the server's shutdown grace runs out. Error replies are OpenAI-shaped and scrubbed of every key the server knows of.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import MissingDependencyError
from ..llm.local import LocalBackend
from ..options import TLMOptions

try:
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("the server needs starlette and uvicorn: pip install 'tlm-hooks[server]'") from exc

from . import compat, explanation, rest
from .auth import KeyChecker
from .azure_openai import AZURE_OPENAI_PATHS, azure_chat_body
from .chat import ChatContext, ChatModel, ChatRequest, complete, parse_chat_request, stream
from .errors import ApiError, Secrets, current_secrets, install_log_scrubbing, secrets_in
from .limits import Gate, Limits, check_messages, read_json
from .metrics import METRICS_MODES, MetricsMiddleware, ServerMetrics
from .models import ModelChoice, ModelPolicy
from .openapi import openapi_document
from .scoring import DefaultScorers, ScorerSource
from .watch import ClientGone, Draining, run_watched

__all__ = ["CHAT_PATHS", "ChatModel", "Limits", "create_app"]

logger = logging.getLogger("tlm_hooks")

CHAT_PATHS: tuple[str, ...] = (
    "/v1/chat/completions",
    "/api/chat/completions",  # OpenAI base_url=".../api"; Azure AI Inference endpoint=".../api"
    "/api/v1/openai_trustworthy_llm/chat/completions",
    "/chat/completions",  # Azure AI Inference endpoint at the root
)
INFO_PATHS: tuple[str, ...] = ("/info", "/api/info")  # Azure AI Inference's get_model_info()
MODELS_PATHS: tuple[str, ...] = ("/v1/models", "/api/models")  # OpenAI's models.list() for base_url .../v1, .../api
MODEL_HEADER = "x-tlm-hooks-model"  # on every model reply: the name of the model that answered


@dataclass(frozen=True)
class _Endpoint:
    """How one model endpoint validates a body and does its work."""

    parse: Callable[[Any, Request], Any]
    run: Callable[[ChatContext, Any, Callable[[], None]], Awaitable[Response]]
    tlm_rest: bool = False  # errors in TLM's REST shape (see ApiError.response)


def _chat_endpoint(prepare: Callable[[Any, Request], tuple[Any, tuple[str, ...]]] | None = None) -> _Endpoint:
    """``prepare`` adapts a body to the URL it came on (Azure's deployment paths) and may add warnings."""

    def parse(body: Any, request: Request) -> ChatRequest:
        body, warnings = prepare(body, request) if prepare is not None else (body, ())
        chat = parse_chat_request(body, extra_parameters=request.headers.get("extra-parameters"))
        return dataclasses.replace(chat, warnings=(*warnings, *chat.warnings)) if warnings else chat

    async def run(ctx: ChatContext, chat: ChatRequest, release: Callable[[], None]) -> Response:
        return await (stream(ctx, chat, release) if chat.stream else complete(ctx, chat))

    return _Endpoint(parse, run)


def _rest_endpoint(
    parse: Callable[[Any, int], Any],
    run: Callable[[ChatContext, Any], Awaitable[Response]],
    limits: Limits,
    tlm_rest: bool,
) -> _Endpoint:
    async def run_call(ctx: ChatContext, call: Any, release: Callable[[], None]) -> Response:
        return await run(ctx, call)

    return _Endpoint(lambda body, request: parse(body, limits.max_prompt_chars), run_call, tlm_rest)


def _without_model(options: TLMOptions) -> TLMOptions:
    """``options`` without ``model``: the server already chose the model that answers."""
    return dataclasses.replace(options, options={k: v for k, v in options.options.items() if k != "model"})


def _releaser(release: Callable[[], None], choice: ModelChoice) -> Callable[[], None]:
    """``release`` the gate slot, then close a model made for this request only."""
    if not choice.owned:
        return release

    def done() -> None:
        try:
            release()
        finally:
            close = getattr(choice.model, "close", None)
            if close is not None:
                close()

    return done


def create_app(
    model: ChatModel,
    *,
    scorer: ScorerSource | None = None,
    api_keys: Sequence[str] | None = None,
    limits: Limits | None = None,
    max_body_bytes: int | None = None,
    hidden: Sequence[str] = (),
    allowed_models: Sequence[str] = (),
    allow_model_provider: bool | None = None,
    model_aliases: Mapping[str, str] | None = None,
    strict_models: bool = False,
    metrics: str = "off",
) -> Starlette:
    """The app: ``model`` generates, ``scorer`` (a ``Scorer`` or ``(TLMOptions) -> Scorer``) scores.

    ``scorer=None`` serves plain completions without ``tlm_metadata``. ``api_keys=None`` turns
    auth off. ``hidden`` lists more secrets (e.g. an upstream key) to scrub from every reply.
    ``allowed_models`` are patterns of litellm models a request may pick with ``options.model``;
    ``allow_model_provider`` (default: the ``DefaultScorers`` setting) lets requests name an
    endpoint in ``options.model_provider``. ``options.model`` naming a model the server does not
    serve is answered by ``model`` (the reply says so), or refused with ``strict_models``;
    ``model_aliases`` maps such names to a served target (see :mod:`tlm_hooks.server.models`).
    ``metrics`` serves Prometheus metrics on ``GET /metrics``: ``"off"``, ``"auth"`` (behind the
    API keys, like the model endpoints) or ``"public"`` (no key asked).
    """
    if not isinstance(model, ChatModel):
        raise TypeError(f"model must have chat, chat_stream and achat methods, got {type(model).__name__}")
    if metrics not in METRICS_MODES:
        raise ValueError(f"metrics must be one of {', '.join(METRICS_MODES)}, got {metrics!r}")
    keys = KeyChecker(api_keys)
    limits = limits or Limits()
    if max_body_bytes is not None:
        limits = dataclasses.replace(limits, max_body_bytes=max_body_bytes)
    gate = Gate(limits.max_concurrency, limits.max_queue, max_wait=limits.timeout)
    secrets = Secrets([*keys.keys, *hidden])
    install_log_scrubbing(secrets)
    draining = Draining()
    if allow_model_provider is None:
        allow_model_provider = bool(getattr(scorer, "allow_model_provider", False))
    models = ModelPolicy(tuple(allowed_models), allow_model_provider, dict(model_aliases or {}), strict_models)
    models.check_aliases(model)

    def context(call: Any, request_secrets: Secrets, arrived: float) -> tuple[ChatContext, ModelChoice, Any]:
        choice = models.choose(model, getattr(call, "options", None), getattr(call, "model", None))
        if choice.asked is not None:  # the scorer must not reach for the model the server did not serve
            call = dataclasses.replace(call, options=_without_model(call.options))
        scorers = scorer
        if isinstance(scorer, DefaultScorers):  # judge with the model that answers this request
            scorers = scorer.with_judge(LocalBackend(choice.model, model_name=choice.name))
        budget = compat.deadline_seconds(getattr(call, "options", None), limits.timeout)
        warnings = (choice.warning,) if choice.warning else ()
        ctx = ChatContext(
            choice.model, scorers, request_secrets, arrived + budget, budget, choice.name, choice.answered_by, warnings
        )
        return ctx, choice, call

    async def admit_and_run(endpoint: _Endpoint, call: Any, ctx: ChatContext, choice: ModelChoice) -> Response:
        slot = await gate.acquire(max_wait=ctx.remaining())
        done = _releaser(slot.release, choice)
        response: Response | None = None
        try:
            response = await asyncio.wait_for(endpoint.run(ctx, call, slot.release), ctx.remaining())
        except asyncio.TimeoutError:
            raise ctx.timed_out() from None
        finally:
            if isinstance(response, StreamingResponse):  # the stream releases at its end
                response.background = BackgroundTask(done)
            else:
                done()
        if ctx.answered_by:
            response.headers[MODEL_HEADER] = ctx.answered_by
        return response

    def guarded(endpoint: _Endpoint) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            arrived = time.monotonic()
            request_secrets = secrets
            token = current_secrets.set(secrets)
            try:
                if draining.active:
                    raise draining.error()
                keys.check(request)
                read_timeout = min(limits.read_timeout, limits.timeout)
                body = await read_json(request, limits.max_body_bytes, timeout=read_timeout, max_depth=limits.max_depth)
                request_secrets = secrets.with_values(secrets_in(body))
                current_secrets.set(request_secrets)
                call = endpoint.parse(body, request)
                messages = getattr(call, "messages", None)
                if isinstance(messages, list):
                    check_messages(messages, limits)
                ctx, choice, call = context(call, request_secrets, arrived)
                return await run_watched(admit_and_run(endpoint, call, ctx, choice), request, draining)
            except ClientGone:
                logger.info(
                    "tlm-hooks server: %s %s: the client disconnected; its work was cancelled",
                    request.method,
                    request.url.path,
                )
                return Response(status_code=499)  # nobody reads it
            except ApiError as exc:
                if exc.status >= 500:
                    logger.warning(
                        "tlm-hooks server: %s %s -> %d: %s",
                        request.method,
                        request.url.path,
                        exc.status,
                        request_secrets.scrub(exc.message),
                    )
                return exc.response(request_secrets, tlm_rest=endpoint.tlm_rest)
            except Exception as exc:  # a bug: say what failed, never what was sent
                message = request_secrets.scrub(f"{type(exc).__name__}: {exc}")
                logger.error("tlm-hooks server: %s %s failed: %s", request.method, request.url.path, message)
                error = ApiError(500, f"internal error: {message}", kind="server_error")
                return error.response(request_secrets, tlm_rest=endpoint.tlm_rest)
            finally:
                current_secrets.reset(token)

        return handle

    chat = guarded(_chat_endpoint())
    routes = [Route(path, chat, methods=["POST"]) for path in CHAT_PATHS]
    azure_chat = guarded(_chat_endpoint(azure_chat_body))
    routes.extend(Route(path, azure_chat, methods=["POST"]) for path in AZURE_OPENAI_PATHS)
    # path -> (parse, run, errors in TLM's REST shape): the routes Cleanlab's client calls with its
    # own retry rules get that shape; /api/chat/score (an OpenAI-style endpoint) keeps OpenAI's
    rest_routes: dict[
        str, tuple[Callable[[Any, int], Any], Callable[[ChatContext, Any], Awaitable[Response]], bool]
    ] = {
        "/api/chat/score": (rest.parse_chat_score, rest.run_chat_score, False),
        "/api/v0/trustworthy_llm/prompt": (rest.parse_prompt, rest.run_prompt, True),
        "/api/v0/trustworthy_llm/get_confidence_score": (rest.parse_confidence, rest.run_confidence, True),
        "/api/v1/rag_trustworthy_llm/score": (rest.parse_rag_score, rest.run_rag_score, True),
        "/api/v1/rag_trustworthy_llm/generate": (rest.parse_rag_generate, rest.run_rag_generate, True),
        "/api/v1/openai_trustworthy_llm/score": (rest.parse_openai_score, rest.run_openai_score, True),
        "/api/v1/tlm_explanation/get_explanation": (explanation.parse_explanation, explanation.run_explanation, True),
    }
    for path, (parse, run, tlm_rest) in rest_routes.items():
        routes.append(Route(path, guarded(_rest_endpoint(parse, run, limits, tlm_rest)), methods=["POST"]))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": getattr(model, "name", None)})

    async def info(request: Request) -> Response:
        name = getattr(model, "name", None) or "unknown"
        return JSONResponse({"model_name": name, "model_type": "chat-completion", "model_provider_name": "tlm-hooks"})

    async def list_models(request: Request) -> Response:
        """The served model and the names that reach it (aliases), in OpenAI's list shape."""
        try:
            keys.check(request)
        except ApiError as exc:
            return exc.response(secrets)
        names = [getattr(model, "name", None) or "local", *models.aliases]
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "tlm-hooks"} for name in dict.fromkeys(names)]
        return JSONResponse({"object": "list", "data": data})

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    routes.append(Route("/health", health, methods=["GET"]))
    routes.extend(Route(path, info, methods=["GET"]) for path in INFO_PATHS)
    routes.extend(Route(path, list_models, methods=["GET"]) for path in MODELS_PATHS)
    routes.append(Route("/openapi.json", openapi, methods=["GET"]))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return ApiError(exc.status_code, str(exc.detail), headers=exc.headers).response()

    middleware: list[Middleware] = []
    if metrics != "off":
        counted = ServerMetrics(gate, draining, routes)

        async def serve_metrics(request: Request) -> Response:
            if metrics == "auth":
                try:
                    keys.check(request)
                except ApiError as exc:
                    return exc.response(secrets)
            body, content_type = counted.render()
            return Response(body, media_type=content_type)

        routes.append(Route("/metrics", serve_metrics, methods=["GET"]))
        middleware.append(Middleware(MetricsMiddleware, metrics=counted))

    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: http_error})
    document = openapi_document(app.routes, auth=keys.enabled)
    app.state.gate = gate
    app.state.draining = draining
    app.state.limits = limits
    return app
