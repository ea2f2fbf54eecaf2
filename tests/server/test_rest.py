"""The REST API (TLM's shapes), ``/api/chat/score``, Azure paths, the OpenAPI document, the default scorers."""

from __future__ import annotations

from typing import Any

import pytest
from server_fakes import FakeModel, RecordingScorer
from starlette.routing import Route
from starlette.testclient import TestClient

from tlm_hooks.errors import InvalidOptionError
from tlm_hooks.options import TLMOptions
from tlm_hooks.scorers import FunctionScorer, LogprobScorer
from tlm_hooks.server import DefaultScorers, create_app
from tlm_hooks.server import scoring as scoring_module
from tlm_hooks.types import ScoreRequest, TrustResult

QUESTION = [{"role": "user", "content": "What is 2+2?"}]


def _explained(request: ScoreRequest) -> TrustResult:
    return TrustResult(0.8, explanation=f"scored {request.response!r}")


def _client(scorer: Any = None, model: Any = None) -> TestClient:
    return TestClient(
        create_app(model or FakeModel(), scorer=scorer or FunctionScorer(_explained)), raise_server_exceptions=False
    )


def test_prompt_generates_and_scores() -> None:
    model, scorer = FakeModel(), RecordingScorer()
    client = _client(scorer, model)
    body = {
        "task": "default",
        "quality": "base",
        "prompt": "What is 2+2?",
        "options": {"log": ["explanation"], "max_tokens": 9},
    }
    reply = client.post("/api/v0/trustworthy_llm/prompt", json=body)
    assert reply.status_code == 200
    data = reply.json()
    assert set(data) == {"response", "confidence_score", "log", "deberta_success"} and data["deberta_success"] is True
    assert data["response"] == "The answer is 4." and 0 < data["confidence_score"] < 1
    assert "Token probability" in data["log"]["explanation"]
    assert model.calls[0]["max_tokens"] == 9 and model.calls[0]["logprobs"] is True
    assert model.calls[0]["messages"] == [{"role": "user", "content": "What is 2+2?"}]
    request = scorer.requests[0]
    assert request.prompt == "What is 2+2?" and request.options.quality_preset == "base"
    batch = client.post("/api/v0/trustworthy_llm/prompt", json={"prompt": ["a?", "b?"]}).json()
    assert isinstance(batch, list) and len(batch) == 2 and all("confidence_score" in item for item in batch)


def test_get_confidence_score() -> None:
    reply = _client().post(
        "/api/v0/trustworthy_llm/get_confidence_score",
        json={"task": "classification", "quality": "medium", "prompt": "Classify: 'I love it'", "response": "negative"},
    )
    assert reply.json() == {
        "confidence_score": 0.8,
        "log": {"explanation": "scored 'negative'"},
        "deberta_success": True,
    }


def test_get_confidence_score_without_logprobs_says_why() -> None:
    # LogprobScorer cannot score a bare string: the reply says so instead of inventing a score
    scoring_module_engine = scoring_module._engine
    try:
        scoring_module._engine = lambda: None  # type: ignore[assignment]
        reply = _client(DefaultScorers()).post(
            "/api/v0/trustworthy_llm/get_confidence_score", json={"prompt": "p", "response": "r"}
        )
    finally:
        scoring_module._engine = scoring_module_engine  # type: ignore[assignment]
    data = reply.json()
    assert data["confidence_score"] is None and data["error"]["type"] == "MissingLogprobs"


def test_rag_score_and_generate() -> None:
    client = _client()
    base = {"context": "The first month is January.", "query": "First month?", "prompt": "Context: ... Question: ..."}
    evals = [{"name": "context_sufficiency", "criteria": "...", "query_identifier": "Question"}]
    scored = client.post(
        "/api/v1/rag_trustworthy_llm/score", json={**base, "response": {"response": "February"}, "evals": evals}
    )
    data = scored.json()  # the evals themselves are tested in tests/rag/test_rag_server.py
    assert data["trustworthiness"] == {"score": 0.8, "log": {"explanation": "scored 'February'"}}
    assert set(data) == {"trustworthiness", "context_sufficiency", "deberta_success"}
    generated = client.post("/api/v1/rag_trustworthy_llm/generate", json={**base, "quality": "low"}).json()
    assert generated["response"] == "The answer is 4." and generated["trustworthiness"]["score"] == 0.8
    assert {"context_sufficiency", "response_groundedness", "response_helpfulness", "query_ease"} <= set(generated)


def test_chat_score_with_a_completion_object_or_a_string() -> None:
    model, scorer = FakeModel(), RecordingScorer()
    client = _client(scorer, model)
    completion = client.post("/v1/chat/completions", json={"messages": QUESTION, "logprobs": True}).json()
    body = {"model": "m", "messages": QUESTION, "response": completion, "options": {"log": ["explanation"]}}
    scored = client.post("/api/chat/score", json=body).json()
    assert completion["tlm_metadata"]["trustworthiness_score"] == pytest.approx(
        scored["tlm_metadata"]["trustworthiness_score"]
    )
    request = scorer.requests[-1]
    assert request.response == "The answer is 4." and request.model == "fake-model"
    assert [t.token for t in request.response_logprobs] == model.words
    assert len(model.calls) == 1  # scoring generated nothing
    as_text = client.post("/api/chat/score", json={"messages": QUESTION, "response": "4"}).json()
    assert as_text["tlm_metadata"]["error"]["type"] == "MissingLogprobs"


def test_azure_model_info() -> None:
    client = _client()
    for path in ("/info", "/api/info"):
        assert client.get(path).json() == {
            "model_name": "fake-model",
            "model_type": "chat-completion",
            "model_provider_name": "tlm-hooks",
        }


def test_openapi_describes_every_route() -> None:
    app = create_app(FakeModel(), api_keys=["k"])
    document = TestClient(app).get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    routes = [route for route in app.routes if isinstance(route, Route)]
    assert len(routes) >= 13
    for route in routes:
        described = document["paths"][route.path]
        for method in route.methods - {"HEAD"}:
            operation = described[method.lower()]
            assert operation["summary"] and "200" in operation["responses"]
    refs = {ref.split("/")[-1] for ref in _refs(document)}
    assert refs <= set(document["components"]["schemas"])
    assert document["components"]["securitySchemes"]["apiKey"]["name"] == "api-key"


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [v for k, v in value.items() if k == "$ref"] + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


class FakeEngine:
    def __init__(self, quality_preset: str, task: str, options: dict[str, Any], judge: Any) -> None:
        self.quality_preset, self.task, self.options, self.judge = quality_preset, task, options, judge

    def score(self, request: ScoreRequest) -> TrustResult:
        return TrustResult(0.5)

    async def ascore(self, request: ScoreRequest) -> TrustResult:
        return TrustResult(0.5)

    def score_batch(self, requests: Any) -> list[TrustResult]:
        return [TrustResult(0.5) for _ in requests]

    async def ascore_batch(self, requests: Any) -> list[TrustResult]:
        return [TrustResult(0.5) for _ in requests]


def test_default_scorers_choose_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    judge = object()
    scorers = DefaultScorers(judge=judge)
    monkeypatch.setattr(scoring_module, "_engine", lambda: None)
    assert isinstance(scorers(TLMOptions("high")), LogprobScorer)  # no engine installed
    monkeypatch.setattr(scoring_module, "_engine", lambda: FakeEngine)
    assert isinstance(scorers(TLMOptions()), LogprobScorer)
    assert isinstance(scorers(TLMOptions("base", options={"log": ["explanation"]})), LogprobScorer)
    engine = scorers(TLMOptions("low", "classification", {"log": ["explanation"]}))
    assert isinstance(engine, FakeEngine) and engine.judge is judge
    assert (engine.quality_preset, engine.task, engine.options) == ("low", "classification", {"log": ["explanation"]})
    assert isinstance(scorers(TLMOptions(options={"num_self_reflections": 1})), FakeEngine)
    assert scorers(TLMOptions(options={"num_self_reflections": 1})).quality_preset == "medium"
    assert isinstance(scorers(TLMOptions("base"), has_logprobs=False), FakeEngine)  # nothing to score from


def test_the_real_engine_is_found_when_installed() -> None:
    try:
        from tlm_hooks.scorers.tlm import TLMScorer
    except ImportError:
        pytest.skip("the scoring engine is not installed")
    assert scoring_module._engine() is TLMScorer


def test_model_provider_is_refused_unless_allowed() -> None:
    from tlm_hooks.options import TLMOptions
    from tlm_hooks.server.scoring import DefaultScorers

    options = TLMOptions(
        "medium", options={"model_provider": {"api_base": "http://169.254.169.254", "api_key": "secret"}}
    )
    with pytest.raises(InvalidOptionError) as info:
        DefaultScorers()(options)
    assert info.value.key == "options.model_provider" and "--allow-model-provider" in str(info.value)
    assert "secret" not in str(info.value)
    assert DefaultScorers(allow_model_provider=True)(options) is not None
