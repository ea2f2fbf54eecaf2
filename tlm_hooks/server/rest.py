"""The TLM REST API (``/api/v0/trustworthy_llm/*``, ``/api/v1/rag_trustworthy_llm/*``) and ``/api/chat/score``.

Each endpoint is a ``parse`` step (validation, before the request takes a slot) and a ``run``
step. Request and response shapes follow TLM's REST API; the preset's key is ``quality``.
The RAG endpoints (trustworthiness plus RAG evals) live in :mod:`tlm_hooks.server.rag`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from ..options import TLMOptions
from ..types import ScoreRequest
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
]

REST_KEYS = {"quality_preset": "quality", "task": "task", "options": "options"}


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
    out: dict[str, Any] = {"confidence_score": metadata.get("trustworthiness_score")}
    for key in ("log", "error"):
        if key in metadata:
            out[key] = metadata[key]
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
) -> dict[str, Any]:
    request = ScoreRequest(
        response=response,
        prompt=prompt,
        response_logprobs=token_logprobs(entries),
        model=model,
        options=options,
        context=context,
    )
    return await run_scorer(ctx.scorers, request, ctx.secrets)


# -- /api/v0/trustworthy_llm/prompt ------------------------------------------------------------


@dataclass(frozen=True)
class PromptCall:
    prompts: list[str]
    batch: bool
    options: TLMOptions | None


def parse_prompt(body: Any, limit: int) -> PromptCall:
    """``{"prompt": str | [str], "task"?, "quality"?, "options"?}``."""
    body = _object(body)
    prompt = body.get("prompt")
    batch = isinstance(prompt, list)
    prompts = prompt if batch else [prompt]
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise bad_field("prompt", "expected a non-empty string or a non-empty list of them")
    check_text_length("prompt", prompts, limit)
    return PromptCall(prompts, batch, tlm_options(body, REST_KEYS))


async def run_prompt(ctx: ChatContext, call: PromptCall) -> JSONResponse:
    """Generate and score: ``{"response", "confidence_score", "log"?}`` (a list for a list of prompts)."""
    out = []
    for prompt in call.prompts:
        text, entries, model = await _generate(ctx, prompt, call.options)
        metadata = await _score(ctx, prompt, text, call.options, entries=entries, model=model)
        out.append({"response": text, **_rest_shape(metadata)})
    return JSONResponse(out if call.batch else out[0])


# -- /api/v0/trustworthy_llm/get_confidence_score ------------------------------------------------


@dataclass(frozen=True)
class ScoreCall:
    prompt: str
    response: str
    options: TLMOptions | None


def parse_confidence(body: Any, limit: int) -> ScoreCall:
    """``{"prompt", "response", "task"?, "quality"?, "options"?}``."""
    body = _object(body)
    prompt = _text(body, "prompt", limit)
    response = body.get("response")
    if not isinstance(response, str):
        raise bad_field("response", f"expected a string, got {type(response).__name__}")
    check_text_length("response", [response], limit)
    assert prompt is not None
    return ScoreCall(prompt, response, tlm_options(body, REST_KEYS))


async def run_confidence(ctx: ChatContext, call: ScoreCall) -> JSONResponse:
    """Score a given response: ``{"confidence_score", "log"?}``."""
    metadata = await _score(ctx, call.prompt, call.response, call.options)
    return JSONResponse(_rest_shape(metadata))


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


def parse_chat_score(body: Any, limit: int) -> ChatScoreCall:
    """OpenAI request fields plus ``response``: a ``chat.completion`` object or the answer's text."""
    body = _object(body)
    messages = parse_messages(body)
    check_text_length("messages", messages_text(messages), limit)
    response = body.get("response")
    entries, tool_calls, model = None, None, body.get("model")
    if isinstance(response, str):
        text = response
    elif isinstance(response, dict):
        choices = response.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise bad_field("response.choices", "expected a non-empty list of choices")
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise bad_field("response.choices[0].message", "expected an object with 'content'")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise bad_field("response.choices[0].message.content", "expected a string or null")
        text = content or ""
        entries = (
            (choices[0].get("logprobs") or {}).get("content") if isinstance(choices[0].get("logprobs"), dict) else None
        )
        calls = message.get("tool_calls")
        tool_calls = tuple(calls) if isinstance(calls, list) and calls else None
        model = response.get("model") if isinstance(response.get("model"), str) else model
    else:
        raise bad_field("response", "expected a chat.completion object or a string")
    check_text_length("response", [text], limit)
    try:
        token_logprobs(entries)
    except (KeyError, TypeError, ValueError) as exc:
        raise bad_field(
            "response.choices[0].logprobs", "expected OpenAI logprobs entries with 'token' and 'logprob'"
        ) from exc
    tools = body.get("tools")
    return ChatScoreCall(
        messages,
        text,
        entries,
        tool_calls,
        tuple(tools) if isinstance(tools, list) and tools else None,
        model if isinstance(model, str) else None,
        tlm_options(body),
    )


async def run_chat_score(ctx: ChatContext, call: ChatScoreCall) -> JSONResponse:
    """``{"tlm_metadata": {...}}`` for a completion the caller already has."""
    request = ScoreRequest(
        response=call.text,
        messages=tuple(call.messages),
        tools=call.tools,
        model=call.model,
        response_logprobs=token_logprobs(call.entries),
        tool_calls=call.tool_calls,
        options=call.options,
    )
    return JSONResponse({"tlm_metadata": await run_scorer(ctx.scorers, request, ctx.secrets)})
