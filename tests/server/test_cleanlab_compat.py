"""What Cleanlab's client sends and reads, at the HTTP level: options it can send, the bodies of
each route, the reply fields, and the error shapes its retry rules depend on."""

from __future__ import annotations

import math
import time
from typing import Any

import httpx
import pytest
from server_fakes import FakeModel, RecordingScorer
from starlette.testclient import TestClient

from tlm_hooks.backends import CleanlabTLM
from tlm_hooks.errors import CleanlabBadRequestError, InvalidOptionError
from tlm_hooks.options import TLMOptions
from tlm_hooks.scorers import FunctionScorer, LogprobScorer
from tlm_hooks.scorers.signals.presets import plan_for
from tlm_hooks.server import DefaultScorers, Limits, ServerThread, create_app
from tlm_hooks.server.bodies import constrain
from tlm_hooks.types import ScoreRequest, TrustResult

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
PROMPT = "/api/v0/trustworthy_llm/prompt"
CONFIDENCE = "/api/v0/trustworthy_llm/get_confidence_score"
EXPLANATION = "/api/v1/tlm_explanation/get_explanation"
OPENAI_SCORE = "/api/v1/openai_trustworthy_llm/score"
CHAT_SCORE = "/api/chat/score"


def _client(scorer: Any = None, model: Any = None, **kwargs: Any) -> TestClient:
    app = create_app(model or FakeModel(), scorer=scorer or RecordingScorer(), **kwargs)
    return TestClient(app, raise_server_exceptions=False)


# -- options the client can send ------------------------------------------------------------------


def test_every_option_the_client_can_send_is_accepted() -> None:
    options = TLMOptions(
        "medium",
        options={
            "model": "gpt-4.1-mini",
            "max_timeout": 30,
            "use_self_reflection": False,
            "disable_trustworthiness": False,
            "disable_persistence": True,
            "log": ["perplexity", "explanation", "per_field_score"],
        },
    )
    assert options.options["max_timeout"] == 30 and options.options["use_self_reflection"] is False


@pytest.mark.parametrize(
    ("options", "key", "allowed"),
    [
        ({"max_timeout": 0}, "options.max_timeout", "above 0"),
        ({"max_timeout": "5"}, "options.max_timeout", "seconds"),
        ({"use_self_reflection": "no"}, "options.use_self_reflection", "true or false"),
        ({"disable_trustworthiness": 1}, "options.disable_trustworthiness", "true or false"),
        ({"log": ["perplexities"]}, "options.log[0]", "'perplexity'"),
        ({"use_self_reflection": True, "num_self_reflections": 2}, "options.use_self_reflection", "one of them"),
    ],
)
def test_invalid_values_are_refused_naming_the_key(options: dict[str, Any], key: str, allowed: str) -> None:
    with pytest.raises(InvalidOptionError) as info:
        TLMOptions(options=options)
    assert info.value.key == key and allowed in str(info.value)


def test_use_self_reflection_false_means_no_reflections() -> None:
    assert plan_for("medium", {"use_self_reflection": False}).reflections == 0
    assert plan_for("medium", {"use_self_reflection": True}) == plan_for("medium", {})


def test_max_timeout_bounds_the_request() -> None:
    app = create_app(FakeModel(), scorer=LogprobScorer(), limits=Limits(timeout=30, max_concurrency=1, max_queue=0))
    with ServerThread(app) as server, httpx.Client(base_url=server.base_url, timeout=10) as http:
        started = time.monotonic()
        body = {"messages": QUESTION, "seed": 1, "options": {"max_timeout": 0.3}}  # FakeModel sleeps `seed` s
        reply = http.post("/v1/chat/completions", json=body)
        assert reply.status_code == 504 and "0.3s" in reply.json()["error"]["message"]
        assert time.monotonic() - started < 0.9


def test_disable_trustworthiness_skips_scoring_and_says_so() -> None:
    scorer = RecordingScorer()
    client = _client(scorer)
    body = {"prompt": "p", "response": "r", "options": {"disable_trustworthiness": True}}
    data = client.post(CONFIDENCE, json=body).json()
    assert data["confidence_score"] is None and scorer.requests == []
    assert data["log"]["warnings"] == ["trustworthiness was not scored: options.disable_trustworthiness is true"]


def test_perplexity_from_logprobs_and_a_warning_for_what_is_not_computed() -> None:
    client = _client()
    data = client.post(PROMPT, json={"prompt": "2+2?", "options": {"log": ["perplexity", "per_field_score"]}}).json()
    # FakeModel's tokens have logprobs -0.1, -0.2, -0.3, -0.4
    assert data["log"]["perplexity"] == pytest.approx(math.exp(-0.25))
    assert any("per_field_score" in line for line in data["log"]["warnings"])


def test_a_given_perplexity_is_the_token_probability() -> None:
    scorer = RecordingScorer()
    client = _client(scorer)
    body = {"prompt": "p", "response": {"response": "4", "perplexity": 0.6}, "quality": "base"}
    data = client.post(CONFIDENCE, json=body).json()
    assert data["confidence_score"] == pytest.approx(0.6) and scorer.requests[0].response == "4"
    assert client.post(CONFIDENCE, json={"prompt": "p", "response": {"response": "4", "perplexity": 2}}).json()[
        "param"
    ] == ("response.perplexity")


# -- bodies -----------------------------------------------------------------------------------------


def test_the_client_keys_are_accepted_and_a_misspelt_key_is_refused() -> None:
    model = FakeModel()
    client = _client(model=model)
    sent = {"prompt": "p", "quality": "base", "task": "default", "options": {}, "user_id": "k", "client_id": "k"}
    assert client.post(PROMPT, json={**sent, "constrain_outputs": None}).status_code == 200
    refused = client.post(PROMPT, json={"prompt": "p", "qualty": "base"})
    assert refused.status_code == 422 and refused.json()["param"] == "qualty" and "'quality'" in refused.json()["error"]
    calls = len(model.calls)
    assert client.post(CONFIDENCE, json={"prompt": "p", "response": "r", "respons": "r"}).json()["param"] == "respons"
    assert len(model.calls) == calls


@pytest.mark.parametrize("key", ["quality", "quality_preset"])
def test_prompt_uses_the_preset_it_is_given(key: str) -> None:
    scorer = RecordingScorer()
    _client(scorer).post(PROMPT, json={"prompt": "p", key: "low"})
    assert scorer.requests[-1].options.quality_preset == "low"


def test_constrain_outputs_maps_the_answer_onto_a_label() -> None:
    assert constrain("The answer is 4.", ["3", "4", "other"]) == "4"
    assert constrain("Positive!", ["negative", "positive"]) == "positive"
    assert constrain("no idea", ["yes", "no idea", "other"]) == "no idea"
    assert constrain("Maybe", ["yes", "no", "other"]) == "other"
    scorer = RecordingScorer()
    client = _client(scorer)
    data = client.post(PROMPT, json={"prompt": "2+2?", "constrain_outputs": ["3", "4", "other"]}).json()
    assert data["response"] == "4" and scorer.requests[-1].options.options["constrain_outputs"] == ["3", "4", "other"]
    conflict = {"prompt": "p", "constrain_outputs": ["a"], "options": {"constrain_outputs": ["b"]}}
    assert client.post(PROMPT, json=conflict).json()["param"] == "constrain_outputs"


def test_chat_score_takes_the_vpc_clients_completion() -> None:
    client = _client()
    completion = client.post("/v1/chat/completions", json={"messages": QUESTION, "logprobs": True}).json()
    body = {"quality_preset": "base", "options": {"model": "gpt-4.1-mini"}, "messages": QUESTION, "model": "m"}
    scored = client.post(CHAT_SCORE, json={**body, "completion": completion})
    assert scored.status_code == 200, scored.text
    assert scored.json()["tlm_metadata"]["trustworthiness_score"] == pytest.approx(
        completion["tlm_metadata"]["trustworthiness_score"]
    )
    both = client.post(CHAT_SCORE, json={**body, "completion": completion, "response": "4"})
    assert both.status_code == 400 and both.json()["error"]["param"] == "completion"  # OpenAI's shape here


def test_openai_score_reads_options_from_the_top_level() -> None:
    scorer = RecordingScorer()
    client = _client(scorer)
    completion = client.post("/v1/chat/completions", json={"messages": QUESTION, "logprobs": True}).json()
    body = {
        "response": completion,
        "messages": QUESTION,
        "quality_preset": "base",
        "model": "gpt-4.1-mini",
        "log": ["explanation"],
        "max_timeout": 30,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
    }
    data = client.post(OPENAI_SCORE, json=body).json()
    assert 0 < data["trustworthiness_score"] <= 1 and data["log"]["explanation"]
    options = scorer.requests[-1].options
    assert options.quality_preset == "base" and options.options["log"] == ["explanation"]
    assert options.options["max_timeout"] == 30 and scorer.requests[-1].response_logprobs


def test_explanation_scores_again_and_says_when_the_score_differs() -> None:
    seen: list[ScoreRequest] = []

    def explain(request: ScoreRequest) -> TrustResult:
        seen.append(request)
        return TrustResult(0.9, explanation="Looks right.")

    client = _client(FunctionScorer(explain))
    body = {"prompt": "2+2?", "response": {"response": "4", "trustworthiness_score": 0.2}, "options": {"model": "x"}}
    data = client.post(EXPLANATION, json=body).json()
    assert data["explanation"] == "Looks right." and data["trustworthiness_score"] == 0.9
    assert any("given score was 0.200" in line for line in data["log"]["warnings"])
    assert seen[0].options.quality_preset == "base" and seen[0].options.wants_explanation
    same = client.post(EXPLANATION, json={**body, "response": {"response": "4", "trustworthiness_score": 0.9}}).json()
    assert not any("given score" in line for line in same["log"].get("warnings", ()))


# -- error shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [PROMPT, CONFIDENCE, EXPLANATION, OPENAI_SCORE, CHAT_SCORE, "/v1/chat/completions"])
def test_401_has_the_code_the_client_maps_to_auth_error(path: str) -> None:
    reply = _client(api_keys=["sk-right"]).post(path, json={}, headers={"authorization": "bearer sk-wrong"})
    assert reply.status_code == 401 and reply.json()["code"] == "invalid_api_key"


def test_tlm_rest_errors_are_422_with_a_message_and_chat_errors_stay_openai_shaped() -> None:
    client = _client()
    rest = client.post(PROMPT, json={"prompt": "p", "quality": "ultra"})
    assert rest.status_code == 422 and rest.json()["param"] == "quality" and "'ultra'" in rest.json()["error"]
    chat = client.post("/v1/chat/completions", json={"messages": QUESTION, "quality_preset": "ultra"})
    assert chat.status_code == 400 and chat.json()["error"]["param"] == "quality_preset"


def test_our_cleanlab_backend_reads_the_servers_errors() -> None:
    app = create_app(FakeModel(), scorer=DefaultScorers(), api_keys=["sk-backend"], limits=Limits(max_prompt_chars=40))
    with ServerThread(app) as server:
        backend = CleanlabTLM("sk-backend", base_url=server.base_url, quality_preset="base", max_retries=0)
        assert backend.prompt("What is 2+2?")["response"] == "The answer is 4."
        with pytest.raises(CleanlabBadRequestError) as info:
            backend.prompt("What is 2+2? " * 10)
        assert info.value.status == 422 and "max_prompt_chars" in str(info.value)


def test_prompt_says_it_returns_one_candidate() -> None:
    client = _client()
    best = client.post(PROMPT, json={"prompt": "2+2?", "quality": "best"}).json()
    assert any("num_candidate_responses" in line for line in best["log"]["warnings"])
    base = client.post(PROMPT, json={"prompt": "2+2?", "quality": "base"}).json()
    assert "warnings" not in base["log"]
