"""Cleanlab TLM wire format: endpoint URLs, request payloads, response mapping (no I/O).

Base URL rule: trailing slashes are dropped; if the remaining path ends in ``/api`` it is
the API root, otherwise ``/api`` is appended. So ``https://api.cleanlab.ai``,
``http://host:8080/api`` and ``http://host:8080/api/`` all work, and a proxy prefix such as
``https://gw.example.com/tlm`` becomes ``https://gw.example.com/tlm/api``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..errors import CleanlabAPIError, InvalidOptionError
from ..options import TLMOptions, deep_merge
from ..types import ScoreRequest, TrustResult, _content_text

__all__ = [
    "PROMPT_PATH",
    "SCORE_PATH",
    "RAG_SCORE_PATH",
    "RAG_GENERATE_PATH",
    "api_root",
    "base_payload",
    "rag_payload",
    "check_evals",
    "default_rag_prompt",
    "last_user_text",
    "map_tlm_result",
    "map_rag_result",
    "to_trust_result",
    "rag_to_trust_result",
]

# paths below the API root (the documents' /api/v0/... and /api/v1/...)
PROMPT_PATH = "/v0/trustworthy_llm/prompt"
SCORE_PATH = "/v0/trustworthy_llm/get_confidence_score"
RAG_SCORE_PATH = "/v1/rag_trustworthy_llm/score"
RAG_GENERATE_PATH = "/v1/rag_trustworthy_llm/generate"

_DROPPED_KEYS = frozenset({"deberta_success"})
_EVAL_KEYS = ("name", "criteria", "query_identifier", "context_identifier", "response_identifier")


def api_root(base_url: str) -> str:
    """The API root for ``base_url`` (see the module docstring for the rule)."""
    if not isinstance(base_url, str):
        raise InvalidOptionError("base_url", base_url, "an http(s) URL string")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InvalidOptionError("base_url", base_url, "an http(s) URL without query or fragment")
    path = parts.path.rstrip("/")
    if not path.endswith("/api"):
        path += "/api"
    return f"{parts.scheme}://{parts.netloc}{path}"


def merged_config(defaults: TLMOptions, override: Any) -> TLMOptions:
    """``defaults`` with a request's own ``TLMOptions`` (if any) taking precedence."""
    if not isinstance(override, TLMOptions):
        return defaults
    return TLMOptions(
        quality_preset=override.quality_preset or defaults.quality_preset,
        task=override.task or defaults.task,
        options=deep_merge(defaults.options, override.options),
    )


def base_payload(config: TLMOptions, *, with_task: bool = True) -> dict[str, Any]:
    """``task``, ``quality`` and (when not empty) ``options``, as the REST document names them."""
    payload: dict[str, Any] = {}
    if with_task and config.task is not None:
        payload["task"] = config.task
    if config.quality_preset is not None:
        payload["quality"] = config.quality_preset
    if config.options:
        payload["options"] = copy.deepcopy(dict(config.options))
    return payload


def check_evals(evals: Any) -> list[dict[str, Any]] | None:
    """Validate RAG ``evals``: a list of dicts with a ``name``, ``criteria`` and optional
    ``query_identifier``/``context_identifier``/``response_identifier`` (str or None)."""
    if evals is None:
        return None
    if isinstance(evals, (str, bytes)) or not isinstance(evals, Sequence):
        raise InvalidOptionError("evals", evals, "a list of eval dicts")
    out = []
    for i, item in enumerate(evals):
        if not isinstance(item, Mapping):
            raise InvalidOptionError(f"evals[{i}]", item, "a dict with 'name' and 'criteria'")
        unknown = sorted(set(item) - set(_EVAL_KEYS), key=str)
        if unknown:
            raise InvalidOptionError(f"evals[{i}].{unknown[0]}", item[unknown[0]], f"keys {', '.join(_EVAL_KEYS)}")
        for key in ("name", "criteria"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise InvalidOptionError(f"evals[{i}].{key}", item.get(key), "a non-empty string")
        for key in _EVAL_KEYS[2:]:
            if item.get(key) is not None and not isinstance(item[key], str):
                raise InvalidOptionError(f"evals[{i}].{key}", item[key], "a string or None")
        out.append(dict(item))
    return out


def default_rag_prompt(query: str, context: str) -> str:
    """The prompt sent when the caller gives none: context first, then the question."""
    return f"Use the context to answer the question.\n\nContext:\n{context}\n\nQuestion: {query}\n\nAnswer:"


def rag_payload(
    config: TLMOptions,
    *,
    query: str,
    context: str,
    prompt: str | None,
    evals: list[dict[str, Any]] | None,
    response: str | None = None,
) -> dict[str, Any]:
    """The body of a RAG ``score`` (with ``response``) or ``generate`` (without) call."""
    payload: dict[str, Any] = {
        "context": context,
        "query": query,
        "prompt": prompt if prompt is not None else default_rag_prompt(query, context),
    }
    if response is not None:
        payload["response"] = {"response": response}
    payload.update(base_payload(config, with_task=False))
    if evals is not None:
        payload["evals"] = evals
    return payload


def last_user_text(request: ScoreRequest) -> str:
    """The question of a request: its last user message, else its whole prompt text."""
    for message in reversed(request.messages or ()):
        if message.get("role") == "user":
            return _content_text(message.get("content"))
    return request.prompt_text()


def _score_of(value: Any, endpoint: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise CleanlabAPIError(
            f"Cleanlab TLM returned no valid {key} (got {value!r}) from {endpoint}",
            status=200,
            endpoint=endpoint,
        )
    return float(value)


def map_tlm_result(data: Mapping[str, Any], endpoint: str) -> dict[str, Any]:
    """A ``prompt``/``get_confidence_score`` reply as ``{"trustworthiness_score", "log"?, ...}``:
    ``confidence_score`` renamed, ``deberta_success`` dropped, other keys kept."""
    out: dict[str, Any] = {}
    if "response" in data:
        out["response"] = data["response"]
    out["trustworthiness_score"] = _score_of(data.get("confidence_score"), endpoint, "confidence_score")
    for key, value in data.items():
        if key not in _DROPPED_KEYS and key not in ("confidence_score", "response"):
            out[key] = value
    return out


def map_rag_result(data: Mapping[str, Any], endpoint: str) -> dict[str, Any]:
    """A RAG reply in the document's shape (``trustworthiness`` + per-eval ``{"score": ...}``),
    with ``deberta_success`` dropped and other keys kept."""
    trust = data.get("trustworthiness")
    if not isinstance(trust, Mapping):
        raise CleanlabAPIError(
            f"Cleanlab TLM returned no 'trustworthiness' object from {endpoint}", status=200, endpoint=endpoint
        )
    _score_of(trust.get("score"), endpoint, "trustworthiness.score")
    return {key: copy.deepcopy(value) for key, value in data.items() if key not in _DROPPED_KEYS}


def to_trust_result(mapped: Mapping[str, Any]) -> TrustResult:
    """A :class:`TrustResult` from :func:`map_tlm_result`'s output."""
    log = mapped.get("log")
    explanation = log.get("explanation") if isinstance(log, Mapping) else None
    return TrustResult(mapped["trustworthiness_score"], explanation=_text_or_none(explanation))


def rag_to_trust_result(mapped: Mapping[str, Any]) -> TrustResult:
    """A :class:`TrustResult` from :func:`map_rag_result`'s output (evals kept)."""
    trust = mapped["trustworthiness"]
    log = trust.get("log")
    explanation = log.get("explanation") if isinstance(log, Mapping) else None
    evals = {
        name: dict(value)
        for name, value in mapped.items()
        if name not in ("trustworthiness", "response") and isinstance(value, Mapping) and "score" in value
    }
    return TrustResult(float(trust["score"]), explanation=_text_or_none(explanation), evals=evals)


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
