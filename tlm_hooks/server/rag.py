"""``/api/v1/rag_trustworthy_llm/score`` and ``/generate``: `TrustworthyRAG` on the request's model.

The body follows TLM's REST API: ``context``, ``query``, ``prompt`` (optional here: built from
query and context when absent), ``response`` (``{"response": str}`` or a string; ``score``
only), ``quality`` (or ``quality_preset``), ``options`` and ``evals`` (absent: the four default
evals; ``[]``: none; each a full eval object, or the name of a default eval). The reply is
``{"trustworthiness": {"score", "log"?}, <eval>: {"score", "log"?}, ...}`` plus ``"response"``
from ``generate``; a part that could not be scored has ``"score": null`` and ``"error"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from ..errors import InvalidOptionError
from ..llm.local import LocalBackend
from ..options import TLMOptions
from ..rag import Eval, RAGResult, TrustworthyRAG
from ..rag.evals import coerce_evals
from ..scorers.base import Scorer
from ..scorers.function import FunctionScorer
from ..types import ScoreRequest, TrustResult
from . import compat
from .bodies import CLIENT_KEYS, DEBERTA, check_keys, rest_options
from .chat import ChatContext
from .errors import ApiError, Secrets, bad_field, model_error
from .limits import check_text_length
from .metrics import record_score
from .scoring import add_warnings, pick_scorer

__all__ = ["RagCall", "parse_rag_score", "parse_rag_generate", "run_rag_score", "run_rag_generate"]

_BODY_KEYS = ("context", "query", "prompt", "evals", "quality", "quality_preset", "task", "options", *CLIENT_KEYS)
_SERVER_PICKS = ("model", "model_provider")  # already chose the request's model (server.models)
NO_SCORER = "this server has no scorer configured"
NO_PERPLEXITY = "options.log 'perplexity' is not reported by the RAG endpoints"


@dataclass(frozen=True)
class RagCall:
    """A validated RAG request."""

    query: str
    context: str
    prompt: str | None
    response: str | None
    options: TLMOptions | None
    evals: tuple[Eval, ...]


def _text(body: Mapping[str, Any], key: str, limit: int, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad_field(key, f"expected a non-empty string, got {type(value).__name__}")
    check_text_length(key, [value], limit)
    return value


def _evals(body: Mapping[str, Any]) -> tuple[Eval, ...]:
    try:
        return coerce_evals(body.get("evals"))
    except InvalidOptionError as exc:
        raise ApiError(400, str(exc), exc.key) from exc


def _parse(body: Any, limit: int, *, with_response: bool) -> RagCall:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    check_keys(body, (*_BODY_KEYS, "response") if with_response else _BODY_KEYS)
    query, context = (_text(body, key, limit) for key in ("query", "context"))
    prompt = _text(body, "prompt", limit, required=False)
    response = None
    if with_response:
        given = body.get("response")
        response = given.get("response") if isinstance(given, dict) else given
        if not isinstance(response, str):
            raise bad_field("response", 'expected {"response": "<text>"} or a string')
        check_text_length("response", [response], limit)
    assert query is not None and context is not None
    options = rest_options(body)
    return RagCall(query, context, prompt, response, options, _evals(body))


def parse_rag_score(body: Any, limit: int) -> RagCall:
    """``{"context", "query", "prompt"?, "response": {"response"}, "quality"?, "options"?, "evals"?}``."""
    return _parse(body, limit, with_response=True)


def parse_rag_generate(body: Any, limit: int) -> RagCall:
    """``{"context", "query", "prompt"?, "quality"?, "options"?, "evals"?}``."""
    return _parse(body, limit, with_response=False)


def _trust_scorer(ctx: ChatContext, options: TLMOptions | None, has_logprobs: bool) -> Scorer:
    """The server's scorer for this request; one that reports why when there is none."""
    try:
        scorer = pick_scorer(ctx.scorers, options, has_logprobs)
        problem: Exception = RuntimeError(NO_SCORER)
    except Exception as exc:  # a scorer factory that refuses the options: reported, not raised
        scorer, problem = None, exc
    if scorer is not None:
        return scorer

    def fail(request: ScoreRequest) -> TrustResult:
        raise problem

    return FunctionScorer(fail)


def _rag_for(ctx: ChatContext, call: RagCall, *, has_logprobs: bool) -> TrustworthyRAG:
    options = call.options or TLMOptions()
    settings = {k: v for k, v in options.options.items() if k not in _SERVER_PICKS}
    return TrustworthyRAG(
        options.quality_preset or "medium",
        settings,
        call.evals if ctx.scorers is not None else (),
        judge=LocalBackend(ctx.model, model_name=ctx.model_name),  # type: ignore[arg-type]
        scorer=_skipped() if compat.disabled(call.options) else _trust_scorer(ctx, call.options, has_logprobs),
    )


def _skipped() -> Scorer:
    """The scorer of a request with ``disable_trustworthiness``: no score, no model call."""
    return FunctionScorer(lambda request: TrustResult(None))


def _reply(result: RAGResult, call: RagCall, ctx: ChatContext) -> JSONResponse:
    if ctx.scorers is None:  # evals were not run: say so in their place
        for ev in call.evals:
            result[ev.name] = {"score": None, "error": {"message": NO_SCORER, "type": "RuntimeError"}}
    trust = result.get("trustworthiness")
    if isinstance(trust, dict):
        components = (trust.get("log") or {}).get("per_component_score")
        record_score(trust.get("score"), components if isinstance(components, dict) else None, failed="error" in trust)
        result["trustworthiness"] = add_warnings(dict(trust), [*ctx.warnings, *_warnings(call.options)])
    return JSONResponse({**_scrubbed(result, ctx.secrets), **DEBERTA})


def _warnings(options: TLMOptions | None) -> list[str]:
    lines = compat.unsupported(options)
    if compat.disabled(options):
        lines.append(compat.DISABLED)
    if options is not None and "perplexity" in options.options.get("log", ()):
        lines.append(NO_PERPLEXITY)
    return lines


def _scrubbed(result: RAGResult, secrets: Secrets) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, part in result.items():
        if isinstance(part, dict) and isinstance(part.get("error"), dict):
            part = {**part, "error": {**part["error"], "message": secrets.scrub(str(part["error"]["message"]))}}
        out[name] = part
    return out


async def run_rag_score(ctx: ChatContext, call: RagCall) -> JSONResponse:
    """Trustworthiness and evals of the given response."""
    assert call.response is not None
    rag = _rag_for(ctx, call, has_logprobs=False)
    result = await rag.ascore(call.query, call.context, call.response, call.prompt)
    return _reply(result, call, ctx)


async def run_rag_generate(ctx: ChatContext, call: RagCall) -> JSONResponse:
    """Generate with the request's model, then score: the same plus ``"response"``."""
    rag = _rag_for(ctx, call, has_logprobs=True)
    try:
        result = await rag.agenerate(call.query, call.context, call.prompt)
    except Exception as exc:  # generating the answer failed: the model's error, as for /prompt
        raise model_error(exc) from exc
    return _reply(result, call, ctx)
