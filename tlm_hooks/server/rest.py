"""The TLM REST API (``/api/v0/trustworthy_llm/*``, ``/api/v1/rag_trustworthy_llm/*``) and ``/api/chat/score``.

Each endpoint is a ``parse`` step (validation, before the request takes a slot) and a ``run``
step. Request and response shapes follow TLM's REST API (and what Cleanlab's ``cleanlab-tlm``
client sends): the preset's key is ``quality`` (``quality_preset`` is read too), a top-level key
the endpoint does not know is refused, and replies carry ``deberta_success: true``.
The RAG endpoints (trustworthiness plus RAG evals) live in :mod:`tlm_hooks.server.rag`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from starlette.responses import JSONResponse

from ..options import OPTION_KEYS, TLMOptions
from ..scorers.signals.presets import plan_for
from ..types import ScoreRequest, TokenLogprob
from . import compat
from .bodies import CLIENT_KEYS, DEBERTA, check_keys, constrain, labels_from, rest_options
from .chat import ChatContext, messages_text, parse_messages, tlm_options
from .errors import ApiError, bad_field, model_error
from .limits import check_text_length
from .rag import RagCall, parse_rag_generate, parse_rag_score, run_rag_generate, run_rag_score
from .scoring import run_scorer, token_logprobs

__all__ = [
    "PromptCall",
    "ScoreCall",
    "RagCall",
    "ChatScoreCall",
    "parse_prompt",
    "run_prompt",
    "parse_confidence",
    "run_confidence",
    "parse_rag_score",
    "run_rag_score",
    "parse_rag_generate",
    "run_rag_generate",
    "parse_chat_score",
    "run_chat_score",
    "parse_openai_score",
    "run_openai_score",
]

ONE_CANDIDATE = (
    "num_candidate_responses (or a best/high preset) is not used by this endpoint: "
    "the response is the model's single answer"
)
_PROMPT_KEYS = ("prompt", "quality", "quality_preset", "task", "options", *CLIENT_KEYS)
_CONFIDENCE_KEYS = (*_PROMPT_KEYS, "response")


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def _text(body: Mapping[str, Any], key: str, limit: int, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise bad_field(key, f"expected a non-empty string, got {type(value).__name__}")
    check_text_length(key, [value], limit)
    return value


def _rest_shape(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``tlm_metadata`` as the REST API's ``confidence_score``/``log`` (plus ``error`` on failure)."""
    out: dict[str, Any] = {"confidence_score": metadata.get("trustworthiness_score"), "log": metadata.get("log") or {}}
    if "error" in metadata:
        out["error"] = metadata["error"]
    return out


async def _generate(ctx: ChatContext, prompt: str, options: TLMOptions | None) -> tuple[str, Any, str | None]:
    """Answer ``prompt`` with the server's model: (text, logprob entries, model name)."""
    kwargs: dict[str, Any] = {"logprobs": True}
    settings = options.options if options is not None else {}
    if "max_tokens" in settings:
        kwargs["max_tokens"] = settings["max_tokens"]
    if ctx.model_name is not None:
        kwargs["model"] = ctx.model_name
    try:
        reply = await ctx.model.achat([{"role": "user", "content": prompt}], **kwargs)
    except Exception as exc:
        raise model_error(exc) from exc
    choice = (reply.get("choices") or [{}])[0]
    text = (choice.get("message") or {}).get("content") or ""
    return text, (choice.get("logprobs") or {}).get("content"), reply.get("model")


async def _score(
    ctx: ChatContext,
    prompt: str,
    response: str,
    options: TLMOptions | None,
    *,
    entries: Any = None,
    model: str | None = None,
    context: str | None = None,
    logprobs: tuple[TokenLogprob, ...] | None = None,
) -> dict[str, Any]:
    request = ScoreRequest(
        response=response,
        prompt=prompt,
        response_logprobs=logprobs or token_logprobs(entries),
        model=model,
        options=options,
        context=context,
    )
    return await run_scorer(ctx.scorers, request, ctx.secrets, ctx.warnings)


# -- /api/v0/trustworthy_llm/prompt ------------------------------------------------------------


@dataclass(frozen=True)
class PromptCall:
    prompts: list[str]
    batch: bool
    options: TLMOptions | None


def parse_prompt(body: Any, limit: int) -> PromptCall:
    """``{"prompt": str | [str], "task"?, "quality"?, "options"?, "constrain_outputs"?}``."""
    body = _object(body)
    check_keys(body, _PROMPT_KEYS)
    prompt = body.get("prompt")
    batch = isinstance(prompt, list)
    prompts = prompt if batch else [prompt]
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise bad_field("prompt", "expected a non-empty string or a non-empty list of them")
    check_text_length("prompt", prompts, limit)
    return PromptCall(prompts, batch, rest_options(body))


async def run_prompt(ctx: ChatContext, call: PromptCall) -> JSONResponse:
    """Generate and score: ``{"response", "confidence_score", "log"?, "deberta_success"}`` (a list
    for a list of prompts). With ``constrain_outputs`` the answer is mapped onto one label."""
    out = []
    settings = call.options.options if call.options is not None else {}
    labels = settings.get("constrain_outputs")
    preset = call.options.quality_preset if call.options is not None else None
    if plan_for(preset, settings).candidates > 1:
        ctx = replace(ctx, warnings=(*ctx.warnings, ONE_CANDIDATE))
    for prompt in call.prompts:
        text, entries, model = await _generate(ctx, prompt, call.options)
        if labels and text.strip() != constrain(text, labels):
            text, entries = constrain(text, labels), None  # the model's logprobs were for other text
        metadata = await _score(ctx, prompt, text, call.options, entries=entries, model=model)
        out.append({"response": text, **_rest_shape(metadata), **DEBERTA})
    return JSONResponse(out if call.batch else out[0])


# -- /api/v0/trustworthy_llm/get_confidence_score ------------------------------------------------


@dataclass(frozen=True)
class ScoreCall:
    prompt: str
    response: str
    options: TLMOptions | None
    logprobs: tuple[TokenLogprob, ...] | None = None  # from a perplexity the client sent


_RESPONSE_KEYS = ("response", "perplexity", "constrain_outputs")


def parse_confidence(body: Any, limit: int) -> ScoreCall:
    """``{"prompt", "response", "task"?, "quality"?, "options"?}``; ``response`` is the text or
    ``{"response": text, "perplexity"?, "constrain_outputs"?}`` (what Cleanlab's client sends)."""
    body = _object(body)
    check_keys(body, _CONFIDENCE_KEYS)
    prompt = _text(body, "prompt", limit)
    given = body.get("response")
    perplexity, labels = None, None
    if isinstance(given, dict):
        for key in given:
            if key not in _RESPONSE_KEYS:
                raise bad_field(f"response.{key}", f"unknown key: allowed {', '.join(map(repr, _RESPONSE_KEYS))}")
        perplexity = given.get("perplexity")
        if perplexity is not None and (
            isinstance(perplexity, bool) or not isinstance(perplexity, (int, float)) or not 0 <= perplexity <= 1
        ):
            raise bad_field("response.perplexity", f"expected a number from 0 to 1, got {perplexity!r}")
        labels = labels_from(given.get("constrain_outputs"), "response.constrain_outputs")
        given = given.get("response")
    if not isinstance(given, str):
        raise bad_field("response", f'expected a string or {{"response": "<text>"}}, got {type(given).__name__}')
    check_text_length("response", [given], limit)
    assert prompt is not None
    logprobs = (
        compat.given_perplexity(float(perplexity)) if perplexity is not None and math.isfinite(perplexity) else None
    )
    return ScoreCall(prompt, given, rest_options(body, labels), logprobs)


async def run_confidence(ctx: ChatContext, call: ScoreCall) -> JSONResponse:
    """Score a given response: ``{"confidence_score", "log"?, "deberta_success"}``."""
    metadata = await _score(ctx, call.prompt, call.response, call.options, logprobs=call.logprobs)
    return JSONResponse({**_rest_shape(metadata), **DEBERTA})


# -- /api/chat/score -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatScoreCall:
    messages: list[dict[str, Any]]
    text: str
    entries: Any
    tool_calls: tuple[Mapping[str, Any], ...] | None
    tools: tuple[Mapping[str, Any], ...] | None
    model: str | None
    options: TLMOptions | None
    response_format: dict[str, Any] | None = None


def _completion(body: Mapping[str, Any]) -> tuple[str, Any]:
    """(key, value) of the scored completion: ``response`` or ``completion`` (Cleanlab's VPC client)."""
    if body.get("response") is not None and body.get("completion") is not None:
        raise bad_field("completion", "give the scored completion once, as 'response' or 'completion'")
    key = "completion" if body.get("completion") is not None else "response"
    return key, body.get(key)


def parse_chat_score(body: Any, limit: int) -> ChatScoreCall:
    """OpenAI request fields plus the scored completion, as ``response`` or ``completion``: a
    ``chat.completion`` object or the answer's text."""
    body = _object(body)
    return _chat_score_call(body, limit, tlm_options(body))


def _chat_score_call(body: Mapping[str, Any], limit: int, options: TLMOptions | None) -> ChatScoreCall:
    messages = parse_messages(body)
    check_text_length("messages", messages_text(messages), limit)
    key, response = _completion(body)
    entries, tool_calls, model = None, None, body.get("model")
    if isinstance(response, str):
        text = response
    elif isinstance(response, dict):
        choices = response.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise bad_field(f"{key}.choices", "expected a non-empty list of choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise bad_field(f"{key}.choices[0].message", "expected an object with 'content'")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise bad_field(f"{key}.choices[0].message.content", "expected a string or null")
        text = content or ""
        entries = (
            (choices[0].get("logprobs") or {}).get("content") if isinstance(choices[0].get("logprobs"), dict) else None
        )
        calls = message.get("tool_calls")
        tool_calls = tuple(calls) if isinstance(calls, list) and calls else None
        model = response.get("model") if isinstance(response.get("model"), str) else model
    else:
        raise bad_field(key, "expected a chat.completion object or a string")
    check_text_length(key, [text], limit)
    try:
        token_logprobs(entries)
    except (KeyError, TypeError, ValueError) as exc:
        raise bad_field(
            f"{key}.choices[0].logprobs", "expected OpenAI logprobs entries with 'token' and 'logprob'"
        ) from exc
    tools = body.get("tools")
    return ChatScoreCall(
        messages,
        text,
        entries,
        tool_calls,
        tuple(tools) if isinstance(tools, list) and tools else None,
        model if isinstance(model, str) else None,
        options,
        body.get("response_format") if isinstance(body.get("response_format"), dict) else None,
    )


def _score_request(call: ChatScoreCall) -> ScoreRequest:
    return ScoreRequest(
        response=call.text,
        messages=tuple(call.messages),
        tools=call.tools,
        model=call.model,
        response_logprobs=token_logprobs(call.entries),
        tool_calls=call.tool_calls,
        options=call.options,
        response_format=call.response_format,
    )


async def run_chat_score(ctx: ChatContext, call: ChatScoreCall) -> JSONResponse:
    """``{"tlm_metadata": {...}}`` for a completion the caller already has."""
    request = _score_request(call)
    return JSONResponse({"tlm_metadata": await run_scorer(ctx.scorers, request, ctx.secrets, ctx.warnings)})


# -- /api/v1/openai_trustworthy_llm/score --------------------------------------------------------

_TLM_TOP_KEYS = ("quality_preset", "task")


def parse_openai_score(body: Any, limit: int) -> ChatScoreCall:
    """The hosted ``TLMChatCompletion.score`` body: the OpenAI request's fields, ``response`` (the
    ``chat.completion``), ``quality_preset``, and the TLM options spread at the top level."""
    body = _object(body)
    settings = {key: body[key] for key in OPTION_KEYS if key in body and body[key] is not None}
    given: dict[str, Any] = {key: body[key] for key in _TLM_TOP_KEYS if body.get(key) is not None}
    if settings:
        given["options"] = settings
    return _chat_score_call(body, limit, tlm_options(given) if given else None)


async def run_openai_score(ctx: ChatContext, call: ChatScoreCall) -> JSONResponse:
    """``{"trustworthiness_score", "log"}`` for a completion the caller already has."""
    request = _score_request(call)
    metadata = await run_scorer(ctx.scorers, request, ctx.secrets, ctx.warnings)
    return JSONResponse({**metadata, "log": metadata.get("log") or {}})
