"""``/api/v1/tlm_explanation/get_explanation``: why a response got its score (``TLM.get_explanation``).

Cleanlab's client sends ``{"prompt", "response": {"response", "trustworthiness_score", "log"?, ...},
"options"}`` and reads ``explanation`` from the reply. The explanation comes from scoring the
response again with ``log: ["explanation"]`` (preset ``quality``/``quality_preset``, default
``low``: the client sends none), so it describes that fresh score; the reply also carries it as
``trustworthiness_score``, and a ``log.warnings`` line says so when it differs from the given one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from starlette.responses import JSONResponse

from ..options import QualityPreset, TLMOptions
from ..types import ScoreRequest
from .bodies import CLIENT_KEYS, check_keys, rest_options
from .chat import ChatContext
from .errors import ApiError, bad_field
from .limits import check_text_length
from .scoring import run_scorer

__all__ = ["ExplanationCall", "parse_explanation", "run_explanation", "DEFAULT_PRESET"]

DEFAULT_PRESET: QualityPreset = "low"
_KEYS = ("prompt", "response", "options", "quality", "quality_preset", "task", *CLIENT_KEYS)
_SAME = 0.05  # scores this close to the given one need no warning


@dataclass(frozen=True)
class ExplanationCall:
    prompt: str
    response: str
    given_score: float | None
    options: TLMOptions


def parse_explanation(body: Any, limit: int) -> ExplanationCall:
    """``{"prompt", "response": str | {"response", "trustworthiness_score"?, ...}, "options"?, "quality"?}``."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    check_keys(body, _KEYS)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise bad_field("prompt", "expected a non-empty string")
    given = body.get("response")
    score = None
    if isinstance(given, dict):
        score = given.get("trustworthiness_score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise bad_field("response.trustworthiness_score", f"expected a number or null, got {score!r}")
        given = given.get("response")
    if not isinstance(given, str):
        raise bad_field("response", 'expected {"response": "<text>", "trustworthiness_score": ...} or a string')
    check_text_length("prompt", [prompt], limit)
    check_text_length("response", [given], limit)
    options = rest_options(body) or TLMOptions()
    log = [*options.options.get("log", ()), *(() if options.wants_explanation else ("explanation",))]
    options = replace(
        options, quality_preset=options.quality_preset or DEFAULT_PRESET, options={**options.options, "log": log}
    )
    return ExplanationCall(prompt, given, None if score is None else float(score), options)


async def run_explanation(ctx: ChatContext, call: ExplanationCall) -> JSONResponse:
    """``{"explanation", "trustworthiness_score", "log"}``."""
    request = ScoreRequest(response=call.response, prompt=call.prompt, options=call.options)
    metadata = await run_scorer(ctx.scorers, request, ctx.secrets, ctx.warnings)
    log = dict(metadata.get("log") or {})
    explanation = log.pop("explanation", None)
    fresh = metadata.get("trustworthiness_score")
    if explanation is None:
        error = metadata.get("error") or {}
        reason = error.get("message") if isinstance(error, dict) else None
        raise ApiError(500, f"no explanation could be made: {reason or 'the scorer gave none'}", kind="server_error")
    if call.given_score is not None and fresh is not None and abs(fresh - call.given_score) > _SAME:
        log["warnings"] = [
            *log.get("warnings", ()),
            f"the explanation is of a fresh score of {fresh:.3f}; the given score was {call.given_score:.3f}",
        ]
    return JSONResponse({"explanation": explanation, "trustworthiness_score": fresh, "log": log})
