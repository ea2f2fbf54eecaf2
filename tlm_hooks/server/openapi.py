"""The OpenAPI 3.1 description of the server (``GET /openapi.json``), schemas written by hand."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Route

__all__ = ["openapi_document", "OPERATIONS"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_STR = {"type": "string"}
_SCORE = _nullable({"type": "number", "minimum": 0, "maximum": 1})

SCHEMAS: dict[str, Any] = {
    "Message": {
        "type": "object",
        "required": ["role"],
        "properties": {"role": _STR, "content": {"anyOf": [_STR, {"type": "array"}, {"type": "null"}]}},
    },
    "TLMOptions": {
        "type": "object",
        "description": "TLM options: model, max_tokens, num_candidate_responses, num_consistency_samples, "
        "num_self_reflections, use_self_reflection, similarity_measure, reasoning_effort, log, "
        "custom_eval_criteria, model_provider, constrain_outputs, disable_trustworthiness, "
        "disable_persistence, max_timeout, score_tool_calls, cache. Options the server cannot honour are named in log.warnings.",
        "additionalProperties": False,
        "properties": {
            "model": _STR,
            "max_tokens": {"type": "integer", "minimum": 1},
            "max_timeout": {"type": "number", "exclusiveMinimum": 0},
            "use_self_reflection": {"type": "boolean"},
            "disable_trustworthiness": {"type": "boolean"},
            "disable_persistence": {"type": "boolean"},
            "score_tool_calls": {"type": "boolean"},
            "cache": {"type": "boolean"},
            "log": {
                "type": "array",
                "items": {"enum": ["explanation", "per_component_score", "perplexity", "per_field_score", "usage"]},
            },
            "model_provider": {
                "type": "object",
                "properties": {k: _STR for k in ("api_base", "api_key", "api_version", "provider")},
            },
        },
    },
    "QualityPreset": {"enum": ["best", "high", "medium", "low", "base"]},
    "Task": {"enum": ["default", "classification", "code_generation"]},
    "TLMMetadata": {
        "type": "object",
        "required": ["trustworthiness_score"],
        "properties": {
            "trustworthiness_score": _SCORE,
            "log": _ref("Log"),
            "error": {"type": "object", "properties": {"message": _STR, "type": _STR}},
        },
    },
    "Log": {
        "type": "object",
        "properties": {
            "explanation": _STR,
            "per_component_score": {"type": "object"},
            "perplexity": _nullable({"type": "number"}),
            "warnings": {
                "type": "array",
                "items": _STR,
                "description": "what the server did differently from what was asked (another model, an "
                "option it cannot honour, signals left out)",
            },
        },
    },
    "ChatRequest": {
        "type": "object",
        "required": ["messages"],
        "description": "OpenAI chat-completions request; TLM keys at the top level (extra_body / model_extras).",
        "properties": {
            "model": _STR,
            "messages": {"type": "array", "minItems": 1, "items": _ref("Message")},
            "max_tokens": {"type": "integer", "minimum": 1},
            "max_completion_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "seed": {"type": "integer"},
            "stop": {"anyOf": [_STR, {"type": "array", "items": _STR, "maxItems": 4}]},
            "n": {
                "type": "integer",
                "minimum": 1,
                "description": "choices to generate: above 1 only with a model that decodes several per request "
                "(the embedded model: up to 8) or an upstream server (passed on, up to 128), and never with "
                "stream; tlm_metadata scores the first",
            },
            "logprobs": {"type": "boolean"},
            "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
            "stream": {"type": "boolean"},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
            "quality_preset": _ref("QualityPreset"),
            "task": _ref("Task"),
            "options": _ref("TLMOptions"),
        },
    },
    "ChatCompletion": {
        "type": "object",
        "description": "OpenAI chat.completion plus tlm_metadata (with stream: true, SSE chunks; "
        "tlm_metadata on the last one).",
        "properties": {
            "id": _STR,
            "object": {"const": "chat.completion"},
            "created": {"type": "integer"},
            "model": _STR,
            "choices": {"type": "array"},
            "usage": {"type": "object"},
            "tlm_metadata": _ref("TLMMetadata"),
        },
    },
    "ResponsesRequest": {
        "type": "object",
        "required": ["input"],
        "description": "OpenAI Responses request; TLM keys at the top level (extra_body). The server keeps "
        "no conversations: previous_response_id/conversation are answered without the earlier turns "
        "(tlm_metadata.log.warnings says so).",
        "properties": {
            "model": _STR,
            "input": {"anyOf": [_STR, {"type": "array", "minItems": 1, "items": {"type": "object"}}]},
            "instructions": _STR,
            "include": {"type": "array", "items": _STR},
            "max_output_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1},
            "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
            "stream": {"type": "boolean"},
            "quality_preset": _ref("QualityPreset"),
            "task": _STR,
            "options": {"type": "object"},
        },
    },
    "Response": {
        "type": "object",
        "description": "OpenAI response plus tlm_metadata (with stream: true, the Responses API's SSE events; "
        "tlm_metadata on the response of response.completed).",
        "properties": {
            "id": _STR,
            "object": {"const": "response"},
            "created_at": {"type": "integer"},
            "model": _STR,
            "status": _STR,
            "output": {"type": "array"},
            "usage": {"type": "object"},
            "tlm_metadata": _ref("TLMMetadata"),
        },
    },
    "ChatScoreRequest": {
        "allOf": [_ref("ChatRequest")],
        "required": ["messages"],
        "description": "the scored completion as response or completion (Cleanlab's VPC client), not both",
        "properties": {
            "response": {"anyOf": [_ref("ChatCompletion"), _STR]},
            "completion": {"anyOf": [_ref("ChatCompletion"), _STR]},
        },
    },
    "OpenAIScoreRequest": {
        "allOf": [_ref("ChatRequest")],
        "required": ["messages", "response"],
        "description": "Cleanlab's hosted TLMChatCompletion.score: the TLM options are spread at the top level "
        "(model, log, max_tokens, max_timeout, ...) next to the OpenAI request fields",
        "properties": {"response": _ref("ChatCompletion"), "response_format": {"type": "object"}},
    },
    "OpenAIScoreResponse": {
        "type": "object",
        "properties": {"trustworthiness_score": _SCORE, "log": _ref("Log")},
    },
    "ExplanationRequest": {
        "type": "object",
        "required": ["prompt", "response"],
        "properties": {
            "prompt": _STR,
            "response": {
                "anyOf": [
                    _STR,
                    {"type": "object", "properties": {"response": _STR, "trustworthiness_score": _SCORE}},
                ]
            },
            "quality": {**_ref("QualityPreset"), "description": "default base"},
            "options": _ref("TLMOptions"),
        },
    },
    "ExplanationResponse": {
        "type": "object",
        "properties": {"explanation": _STR, "trustworthiness_score": _SCORE, "log": _ref("Log")},
    },
    "ChatScoreResponse": {"type": "object", "properties": {"tlm_metadata": _ref("TLMMetadata")}},
    "PromptRequest": {
        "type": "object",
        "required": ["prompt"],
        "properties": {
            "prompt": {"anyOf": [_STR, {"type": "array", "items": _STR}]},
            "task": _ref("Task"),
            "quality": _ref("QualityPreset"),
            "options": _ref("TLMOptions"),
            "constrain_outputs": _nullable({"type": "array", "items": _STR}),
        },
    },
    "PromptResponse": {
        "type": "object",
        "description": "One object per prompt (a list when the request sent a list).",
        "properties": {
            "response": _STR,
            "confidence_score": _SCORE,
            "log": _ref("Log"),
            "deberta_success": {"const": True},
        },
    },
    "ConfidenceRequest": {
        "type": "object",
        "required": ["prompt", "response"],
        "properties": {
            "prompt": _STR,
            "response": {
                "anyOf": [
                    _STR,
                    {
                        "type": "object",
                        "required": ["response"],
                        "properties": {
                            "response": _STR,
                            "perplexity": {"type": "number", "minimum": 0, "maximum": 1},
                            "constrain_outputs": {"type": "array", "items": _STR},
                        },
                    },
                ]
            },
            "task": _ref("Task"),
            "quality": _ref("QualityPreset"),
            "options": _ref("TLMOptions"),
        },
    },
    "ConfidenceResponse": {
        "type": "object",
        "properties": {"confidence_score": _SCORE, "log": _ref("Log"), "deberta_success": {"const": True}},
    },
    "RagRequest": {
        "type": "object",
        "required": ["context", "query"],
        "properties": {
            "context": _STR,
            "query": _STR,
            "prompt": {**_STR, "description": "the prompt the response answers; default: built from query and context"},
            "response": {"anyOf": [{"type": "object", "properties": {"response": _STR}}, _STR]},
            "quality": _ref("QualityPreset"),
            "quality_preset": {**_ref("QualityPreset"), "description": "accepted instead of quality"},
            "options": _ref("TLMOptions"),
            "evals": {
                "type": "array",
                "description": "absent: context_sufficiency, response_groundedness, response_helpfulness, "
                "query_ease; []: none. An item is an eval object or the name of a default eval.",
                "items": {
                    "anyOf": [
                        _STR,
                        {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": _STR,
                                "criteria": _STR,
                                "query_identifier": _nullable(_STR),
                                "context_identifier": _nullable(_STR),
                                "response_identifier": _nullable(_STR),
                            },
                        },
                    ]
                },
            },
        },
    },
    "RagResponse": {
        "type": "object",
        "description": "trustworthiness plus one entry per eval (by name); response from generate. "
        "A part that could not be scored has score null and an error.",
        "properties": {
            "response": _STR,
            "trustworthiness": _ref("RagScore"),
            "deberta_success": {"const": True},
        },
        "additionalProperties": _ref("RagScore"),
    },
    "RagScore": {
        "type": "object",
        "properties": {
            "score": _SCORE,
            "log": _ref("Log"),
            "error": {"type": "object", "properties": {"message": _STR, "type": _STR}},
        },
    },
    "Error": {
        "type": "object",
        "description": "OpenAI's shape on the chat endpoints and /api/chat/score. A 401 also has a top-level "
        "code 'invalid_api_key'.",
        "properties": {
            "error": {
                "type": "object",
                "properties": {"message": _STR, "type": _STR, "param": _nullable(_STR), "code": _nullable(_STR)},
            },
            "code": _STR,
        },
    },
    "TLMError": {
        "type": "object",
        "description": "TLM's REST shape (the /api/v0 and /api/v1 TLM routes): the message as a string",
        "properties": {"error": _STR, "type": _STR, "param": _nullable(_STR), "code": _nullable(_STR)},
    },
    "Health": {"type": "object", "properties": {"status": {"const": "ok"}, "model": _nullable(_STR)}},
    "ModelInfo": {
        "type": "object",
        "properties": {"model_name": _STR, "model_type": _STR, "model_provider_name": _STR},
    },
}

_BAD = "bad request: malformed JSON, a bad field or option (param names it), prompt over max_prompt_chars"
_ERRORS = {
    "400": _BAD,
    "401": "missing or invalid API key",
    "413": "body over max_body_bytes",
    "503": "busy: concurrency and queue are full (Retry-After says when to retry)",
    "504": "the request ran past the timeout",
}


def _post(summary: str, request: str, response: str, *, tlm_rest: bool = False) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": _ref(response)}}}
    }
    for status, text in _ERRORS.items():
        if tlm_rest and status == "400":  # Cleanlab's client retries a 400; it raises a 422 at once
            status, text = "422", _BAD
        schema = _ref("TLMError" if tlm_rest and status != "401" else "Error")
        responses[status] = {"description": text, "content": {"application/json": {"schema": schema}}}
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(request)}}},
            "responses": responses,
        }
    }


def _get(summary: str, response: str, *, public: bool = True) -> dict[str, Any]:
    content = {"application/json": {"schema": _ref(response) if response else {"type": "object"}}}
    operation: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "OK", "content": content}}}
    if public:
        operation["security"] = []
    return {"get": operation}


_CHAT = _post(
    "Chat completion with tlm_metadata (OpenAI / Azure AI Inference compatible)", "ChatRequest", "ChatCompletion"
)


def _azure_paths(*paths: str) -> list[str]:
    return [prefix + path for prefix in ("", "/api") for path in paths]


def _azure_chat() -> dict[str, Any]:
    operation = copy.deepcopy(_CHAT)
    operation["post"]["summary"] = "Chat completion with tlm_metadata (Azure OpenAI: the deployment names the model)"
    operation["post"]["parameters"] = [
        {"name": "deployment", "in": "path", "required": True, "schema": _STR},
        {"name": "api-version", "in": "query", "required": False, "schema": _STR},
    ]
    return operation


_AZURE_CHAT = _azure_chat()
OPERATIONS: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": _CHAT,
    "/api/chat/completions": _CHAT,
    "/api/v1/openai_trustworthy_llm/chat/completions": _CHAT,
    "/chat/completions": _CHAT,
    "/api/chat/score": _post("Score a completion you already have", "ChatScoreRequest", "ChatScoreResponse"),
    "/api/v0/trustworthy_llm/prompt": _post(
        "Generate a response and its confidence score", "PromptRequest", "PromptResponse", tlm_rest=True
    ),
    "/api/v0/trustworthy_llm/get_confidence_score": _post(
        "Confidence score of a given response", "ConfidenceRequest", "ConfidenceResponse", tlm_rest=True
    ),
    "/api/v1/rag_trustworthy_llm/score": _post(
        "Score a RAG response: trustworthiness and RAG evals", "RagRequest", "RagResponse", tlm_rest=True
    ),
    "/api/v1/rag_trustworthy_llm/generate": _post(
        "Generate a RAG response and score it: trustworthiness and RAG evals",
        "RagRequest",
        "RagResponse",
        tlm_rest=True,
    ),
    "/api/v1/openai_trustworthy_llm/score": _post(
        "Score a chat completion (Cleanlab's hosted TLMChatCompletion.score)",
        "OpenAIScoreRequest",
        "OpenAIScoreResponse",
        tlm_rest=True,
    ),
    "/api/v1/tlm_explanation/get_explanation": _post(
        "Explain a response's trustworthiness (TLM.get_explanation)",
        "ExplanationRequest",
        "ExplanationResponse",
        tlm_rest=True,
    ),
    **{path: _AZURE_CHAT for path in _azure_paths("/openai/deployments/{deployment}/chat/completions")},
    **{path: _CHAT for path in _azure_paths("/openai/chat/completions", "/openai/v1/chat/completions")},
    **{
        path: _post("Response with tlm_metadata (OpenAI Responses API compatible)", "ResponsesRequest", "Response")
        for path in ("/v1/responses", "/api/responses", *_azure_paths("/openai/responses", "/openai/v1/responses"))
    },
    "/health": _get("Liveness and the served model's name", "Health"),
    "/info": _get("Model info (Azure AI Inference get_model_info)", "ModelInfo"),
    "/api/info": _get("Model info (Azure AI Inference get_model_info)", "ModelInfo"),
    "/v1/models": _get("The models this server answers with (OpenAI models.list)", "", public=False),
    "/api/models": _get("The models this server answers with (OpenAI models.list)", "", public=False),
    "/openapi.json": _get("This document", ""),
    "/metrics": _get("Prometheus metrics (served with --metrics auth|public; auth asks for the API key)", ""),
}


def openapi_document(routes: Iterable[BaseRoute], *, auth: bool) -> dict[str, Any]:
    """The document for ``routes``; a route without a description here is a programming error."""
    paths: dict[str, Any] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        path = route.path.replace(":path}", "}")  # OpenAPI path templates carry no converters
        if path not in OPERATIONS:
            raise KeyError(f"no OpenAPI description for {path}: add it to tlm_hooks/server/openapi.py")
        paths[path] = OPERATIONS[path]
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "tlm-hooks serve",
            "version": "0.1.0",
            "description": "A self-hostable TLM-compatible backend: chat completions with tlm_metadata, "
            "and TLM's REST API. The chat endpoints also accept api-version (ignored) and the "
            "extra-parameters header (pass-through, drop, error).",
        },
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
    if auth:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "api-key"},
        }
        document["security"] = [{"bearer": []}, {"apiKey": []}]
    return document
