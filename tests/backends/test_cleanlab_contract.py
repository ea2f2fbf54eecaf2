"""Contract: the exact requests CleanlabTLM sends and how it reads the documented replies."""

from __future__ import annotations

import httpx
import pytest
from cleanlab_fakes import API_KEY, PROMPT_REPLY, RAG_GENERATE_REPLY, RAG_SCORE_REPLY, SCORE_REPLY, Service, ok

from tlm_hooks import CleanlabTLM, InvalidOptionError, ScoreRequest, TLMOptions
from tlm_hooks.errors import CleanlabAPIError, CleanlabAuthError

HOSTED = "https://api.cleanlab.ai"
VPC = "http://example.customer.com:8080/api"
OPTIONS = {"model": "gpt-4o-mini", "log": ["explanation"]}
EVALS = [
    {
        "name": "response_groundedness",
        "criteria": "Is every claim in the Response supported by the Context?",
        "query_identifier": "Query",
        "context_identifier": "Context",
        "response_identifier": "Response",
    }
]
CONTEXT = "The first month of the year is January."
QUERY = "What's the first month of the year?"
RAG_PROMPT = f"Context: {CONTEXT}\nQuestion: {QUERY}\nAnswer:"


def assert_request(request: httpx.Request, url: str) -> None:
    assert request.method == "POST"
    assert str(request.url) == url
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"


@pytest.mark.parametrize("base_url", [HOSTED, VPC])
def test_prompt_request_and_reply(make_tlm, service: Service, base_url: str) -> None:
    service.push(ok(PROMPT_REPLY))
    tlm = make_tlm(base_url=base_url, options=OPTIONS)
    out = tlm.prompt(QUERY)
    root = "https://api.cleanlab.ai/api" if base_url == HOSTED else VPC
    assert_request(service.requests[0], f"{root}/v0/trustworthy_llm/prompt")
    assert service.body() == {"task": "default", "quality": "medium", "prompt": QUERY, "options": OPTIONS}
    assert out == {
        "response": "The first month of the year is January.",
        "trustworthiness_score": 0.9895625234542792,
        "log": {"explanation": "Did not find a reason to doubt trustworthiness."},
    }


@pytest.mark.parametrize("base_url", [HOSTED, VPC])
def test_score_request_and_reply(make_tlm, service: Service, base_url: str) -> None:
    service.push(ok(SCORE_REPLY))
    tlm = make_tlm(base_url=base_url, task="classification", quality_preset="low", options=OPTIONS)
    prompt = "Classify this text as positive or negative: 'I love this product!'"
    out = tlm.get_trustworthiness_score(prompt, "negative")
    root = "https://api.cleanlab.ai/api" if base_url == HOSTED else VPC
    assert_request(service.requests[0], f"{root}/v0/trustworthy_llm/get_confidence_score")
    assert service.body() == {
        "task": "classification",
        "quality": "low",
        "prompt": prompt,
        "response": "negative",
        "options": OPTIONS,
    }
    assert out == {"trustworthiness_score": 0.018654437417664177, "log": SCORE_REPLY["log"]}


@pytest.mark.parametrize("base_url", [HOSTED, VPC])
def test_rag_score_request_and_reply(make_tlm, service: Service, base_url: str) -> None:
    service.push(ok(RAG_SCORE_REPLY))
    tlm = make_tlm(base_url=base_url, options=OPTIONS)
    out = tlm.score_rag(QUERY, CONTEXT, "February", prompt=RAG_PROMPT, evals=EVALS)
    root = "https://api.cleanlab.ai/api" if base_url == HOSTED else VPC
    assert_request(service.requests[0], f"{root}/v1/rag_trustworthy_llm/score")
    assert service.body() == {
        "context": CONTEXT,
        "query": QUERY,
        "prompt": RAG_PROMPT,
        "response": {"response": "February"},
        "quality": "medium",
        "options": OPTIONS,
        "evals": EVALS,
    }
    expected = {k: v for k, v in RAG_SCORE_REPLY.items() if k != "deberta_success"}
    assert out == expected
    assert out["trustworthiness"]["score"] == 0.0
    assert out["response_groundedness"] == {"score": 0.0024875622025382848}


@pytest.mark.parametrize("base_url", [HOSTED, VPC])
async def test_rag_generate_request_and_reply(make_tlm, service: Service, base_url: str) -> None:
    service.push(ok(RAG_GENERATE_REPLY), ok(RAG_GENERATE_REPLY))
    tlm = make_tlm(base_url=base_url, options=OPTIONS)
    out = tlm.generate_rag(QUERY, CONTEXT, prompt=RAG_PROMPT, evals=EVALS)
    out_async = await tlm.generate_rag_async(QUERY, CONTEXT, prompt=RAG_PROMPT, evals=EVALS)
    root = "https://api.cleanlab.ai/api" if base_url == HOSTED else VPC
    for request in service.requests:
        assert_request(request, f"{root}/v1/rag_trustworthy_llm/generate")
    expected_body = {
        "context": CONTEXT,
        "query": QUERY,
        "prompt": RAG_PROMPT,
        "quality": "medium",
        "options": OPTIONS,
        "evals": EVALS,
    }
    assert service.body(0) == service.body(1) == expected_body
    assert out == out_async == {k: v for k, v in RAG_GENERATE_REPLY.items() if k != "deberta_success"}
    assert out["response"] == "The first month of the year is January."


def test_rag_defaults_prompt_and_leaves_evals_to_the_service(make_tlm, service: Service) -> None:
    service.push(ok(RAG_SCORE_REPLY))
    make_tlm().score_rag(QUERY, CONTEXT, "February")
    body = service.body()
    assert "evals" not in body and "options" not in body and "task" not in body
    assert QUERY in body["prompt"] and CONTEXT in body["prompt"]


@pytest.mark.parametrize(
    ("base_url", "root"),
    [
        ("https://api.cleanlab.ai", "https://api.cleanlab.ai/api"),
        ("https://api.cleanlab.ai/", "https://api.cleanlab.ai/api"),
        ("https://api.cleanlab.ai/api", "https://api.cleanlab.ai/api"),
        ("http://example.customer.com:8080/api", "http://example.customer.com:8080/api"),
        ("http://example.customer.com:8080/api/", "http://example.customer.com:8080/api"),
        ("http://example.customer.com:8080", "http://example.customer.com:8080/api"),
        ("https://gateway.example.com/tlm/", "https://gateway.example.com/tlm/api"),
    ],
)
def test_base_url_rule(make_tlm, service: Service, base_url: str, root: str) -> None:
    tlm = make_tlm(base_url=base_url)
    assert tlm.api_root == root
    tlm.get_trustworthiness_score("p", "r")
    assert str(service.requests[0].url) == f"{root}/v0/trustworthy_llm/get_confidence_score"


@pytest.mark.parametrize("base_url", ["api.cleanlab.ai", "ftp://host/api", "https://host/api?x=1", "", 42])
def test_bad_base_url_fails_at_construction(make_tlm, service: Service, base_url: object) -> None:
    with pytest.raises(InvalidOptionError, match="base_url"):
        make_tlm(base_url=base_url)
    assert service.requests == []


def test_missing_key_names_both_ways_and_sends_nothing(service: Service) -> None:
    with pytest.raises(CleanlabAuthError) as info:
        CleanlabTLM(http_client=service.client())
    assert "api_key=" in str(info.value) and "CLEANLAB_TLM_API_KEY" in str(info.value)
    with pytest.raises(CleanlabAuthError):
        CleanlabTLM("   ", http_client=service.client())
    assert service.requests == []


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch, make_tlm, service: Service) -> None:
    monkeypatch.setenv("CLEANLAB_TLM_API_KEY", "env-key-777")
    make_tlm(api_key=None).get_trustworthiness_score("p", "r")
    assert service.requests[0].headers["authorization"] == "Bearer env-key-777"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"quality_preset": "ultra"},
        {"task": "summarize"},
        {"options": {"modle": "gpt-4o-mini"}},
        {"options": {"log": ["everything"]}},
        {"timeout": 0},
        {"max_retries": -1},
        {"max_retry_wait": float("inf")},
        {"max_concurrency": 0},
    ],
)
def test_invalid_configuration_fails_at_construction(make_tlm, service: Service, kwargs: dict) -> None:
    with pytest.raises(InvalidOptionError):
        make_tlm(**kwargs)
    assert service.requests == []


def test_no_options_key_when_no_options(make_tlm, service: Service) -> None:
    make_tlm().get_trustworthiness_score("p", "r")
    assert service.body() == {"task": "default", "quality": "medium", "prompt": "p", "response": "r"}


def test_scorer_sends_flattened_messages_and_maps_the_reply(make_tlm, service: Service) -> None:
    service.push(ok(SCORE_REPLY))
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Sentiment of 'I love it'?"}]
    request = ScoreRequest(response="negative", messages=messages)
    result = make_tlm(options=OPTIONS).score(request)
    assert str(service.requests[0].url) == "https://api.cleanlab.ai/api/v0/trustworthy_llm/get_confidence_score"
    assert service.body() == {
        "task": "default",
        "quality": "medium",
        "prompt": request.prompt_text(),
        "response": "negative",
        "options": OPTIONS,
    }
    assert result.trustworthiness_score == SCORE_REPLY["confidence_score"]
    assert result.explanation == SCORE_REPLY["log"]["explanation"]
    assert result.to_dict()["log"] == {"explanation": SCORE_REPLY["log"]["explanation"]}


async def test_async_scorer_matches_sync(make_tlm, service: Service) -> None:
    service.push(ok(SCORE_REPLY), ok(SCORE_REPLY))
    tlm = make_tlm()
    request = ScoreRequest(response="r", prompt="p")
    assert await tlm.ascore(request) == tlm.score(request)
    assert service.body(0) == service.body(1)


def test_request_options_override_constructor_options(make_tlm, service: Service) -> None:
    tlm = make_tlm(quality_preset="medium", options={"model": "gpt-4o-mini"})
    override = TLMOptions(quality_preset="best", options={"log": ["explanation"]})
    tlm.score(ScoreRequest(response="r", prompt="p", options=override))
    assert service.body() == {
        "task": "default",
        "quality": "best",
        "prompt": "p",
        "response": "r",
        "options": {"model": "gpt-4o-mini", "log": ["explanation"]},
    }


def test_scorer_uses_rag_endpoint_when_request_has_context(make_tlm, service: Service) -> None:
    service.push(ok(RAG_SCORE_REPLY))
    messages = [{"role": "system", "content": f"Context: {CONTEXT}"}, {"role": "user", "content": QUERY}]
    request = ScoreRequest(response="February", messages=messages, context=CONTEXT)
    result = make_tlm().score(request)
    assert str(service.requests[0].url) == "https://api.cleanlab.ai/api/v1/rag_trustworthy_llm/score"
    assert service.body() == {
        "context": CONTEXT,
        "query": QUERY,
        "prompt": request.prompt_text(),
        "response": {"response": "February"},
        "quality": "medium",
    }
    assert result.trustworthiness_score == 0.0
    assert result.explanation == "Cannot verify that this response is correct."
    assert dict(result.evals)["response_groundedness"] == {"score": 0.0024875622025382848}
    assert set(result.evals) == {"context_sufficiency", "query_ease", "response_groundedness", "response_helpfulness"}


def test_context_can_stay_on_the_plain_endpoint(make_tlm, service: Service) -> None:
    make_tlm(use_rag_for_context=False).score(ScoreRequest(response="r", prompt="p", context="c"))
    assert str(service.requests[0].url).endswith("/v0/trustworthy_llm/get_confidence_score")


def test_unknown_reply_keys_are_tolerated(make_tlm, service: Service) -> None:
    service.push(ok({**PROMPT_REPLY, "new_field": [1, 2], "usage": {"tokens": 3}}))
    out = make_tlm().prompt("q")
    assert "deberta_success" not in out and "confidence_score" not in out
    assert out["new_field"] == [1, 2] and out["trustworthiness_score"] == PROMPT_REPLY["confidence_score"]
    service.push(ok({**RAG_SCORE_REPLY, "new_eval": {"score": 0.5}, "extra": "x"}))
    rag = make_tlm().score_rag("q", "c", "r")
    assert rag["new_eval"] == {"score": 0.5} and rag["extra"] == "x" and "deberta_success" not in rag


@pytest.mark.parametrize(
    "reply",
    [{"response": "x"}, {"confidence_score": "high"}, {"confidence_score": 1.5}, {"confidence_score": True}],
)
def test_reply_without_a_valid_score_is_an_api_error(make_tlm, service: Service, reply: dict) -> None:
    service.push(ok(reply))
    with pytest.raises(CleanlabAPIError, match="confidence_score") as info:
        make_tlm().prompt("q")
    assert info.value.status == 200


def test_rag_reply_without_trustworthiness_is_an_api_error(make_tlm, service: Service) -> None:
    service.push(ok({"context_sufficiency": {"score": 0.5}}))
    with pytest.raises(CleanlabAPIError, match="trustworthiness"):
        make_tlm().score_rag("q", "c", "r")


def test_non_json_reply_is_an_api_error(make_tlm, service: Service) -> None:
    service.push(httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(CleanlabAPIError, match="not a JSON object"):
        make_tlm().prompt("q")


@pytest.mark.parametrize(
    "evals",
    [
        "context_sufficiency",
        [{"name": "x"}],
        [{"name": "x", "criteria": "c", "query_identifer": "Q"}],
        [{"name": "x", "criteria": "c", "context_identifier": 3}],
    ],
)
def test_bad_evals_are_rejected_before_sending(make_tlm, service: Service, evals: object) -> None:
    with pytest.raises(InvalidOptionError, match="evals"):
        make_tlm().score_rag("q", "c", "r", evals=evals)
    assert service.requests == []
