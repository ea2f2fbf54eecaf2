"""Protection: auth, size limits, admission (503 + Retry-After), timeouts (504), bad input, key redaction."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import httpx
import pytest
from server_fakes import FakeModel, RecordingScorer
from starlette.testclient import TestClient

from tlm_hooks.options import TLMOptions
from tlm_hooks.scorers import FunctionScorer, LogprobScorer
from tlm_hooks.server import Limits, ServerThread, create_app
from tlm_hooks.server.errors import ApiError
from tlm_hooks.server.limits import Gate
from tlm_hooks.types import ScoreRequest

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
CHAT = "/v1/chat/completions"
REST_BODIES: dict[str, dict[str, Any]] = {
    "/api/chat/score": {"messages": QUESTION, "response": "4"},
    "/api/v0/trustworthy_llm/prompt": {"prompt": "What is 2+2?"},
    "/api/v0/trustworthy_llm/get_confidence_score": {"prompt": "What is 2+2?", "response": "4"},
    "/api/v1/rag_trustworthy_llm/score": {"context": "c", "query": "q", "prompt": "p", "response": {"response": "r"}},
    "/api/v1/rag_trustworthy_llm/generate": {"context": "c", "query": "q", "prompt": "p"},
}
ALL_POSTS = {CHAT: {"messages": QUESTION}, "/chat/completions": {"messages": QUESTION}, **REST_BODIES}


def _client(model: Any = None, **kwargs: Any) -> TestClient:
    kwargs.setdefault("scorer", LogprobScorer())
    return TestClient(create_app(model or FakeModel(), **kwargs), raise_server_exceptions=False)


# Cleanlab's client calls these with its own retry rules: TLM's REST error shape, 422 for a 400
TLM_REST = {path for path in REST_BODIES if path != "/api/chat/score"}


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error object of ``response`` (OpenAI's shape, or TLM's REST shape read into it)."""
    body = response.json()
    if response.request.url.path not in TLM_REST:
        assert response.status_code == status, response.text
        return body["error"]  # type: ignore[no-any-return]
    assert response.status_code == (422 if status == 400 else status), response.text
    assert isinstance(body["error"], str), body
    return {"message": body["error"], **{k: body.get(k) for k in ("type", "param", "code")}}


# -- auth ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(ALL_POSTS))
def test_every_model_endpoint_needs_a_key(path: str) -> None:
    client = _client(api_keys=["sk-right-key"])
    for headers in ({}, {"authorization": "Bearer sk-wrong"}, {"api-key": "sk-wrong"}, {"authorization": "Basic x"}):
        response = client.post(path, json=ALL_POSTS[path], headers=headers)
        assert _error(response, 401)["code"] == "invalid_api_key"
        assert "sk-" not in response.text and response.headers["www-authenticate"] == "Bearer"
    assert client.post(path, json=ALL_POSTS[path], headers={"api-key": "sk-right-key"}).status_code == 200
    assert client.post(path, json=ALL_POSTS[path], headers={"authorization": "Bearer sk-right-key"}).status_code == 200


def test_public_endpoints_need_no_key() -> None:
    client = _client(api_keys=["sk-right-key"])
    for path in ("/health", "/openapi.json", "/info", "/api/info"):
        assert client.get(path).status_code == 200, path


# -- sizes and bad input ------------------------------------------------------------------------------


def test_prompt_length_limit_names_the_field_and_limit() -> None:
    client = _client(limits=Limits(max_prompt_chars=20))
    long = "x" * 21
    error = _error(client.post(CHAT, json={"messages": [{"role": "user", "content": long}]}), 400)
    assert error["param"] == "messages" and "20" in error["message"] and "max_prompt_chars" in error["message"]
    error = _error(client.post("/api/v0/trustworthy_llm/prompt", json={"prompt": long}), 400)
    assert error["param"] == "prompt"
    body = {"prompt": "p", "query": "q", "context": long, "response": "r"}
    assert _error(client.post("/api/v1/rag_trustworthy_llm/score", json=body), 400)["param"] == "context"
    body = {"prompt": "p", "response": long}
    assert _error(client.post("/api/v0/trustworthy_llm/get_confidence_score", json=body), 400)["param"] == "response"


@pytest.mark.parametrize("path", list(REST_BODIES))
def test_rest_body_limit_and_malformed_json(path: str) -> None:
    client = _client(limits=Limits(max_body_bytes=300))
    big = {**REST_BODIES[path], "pad": "x" * 400}
    assert "300 bytes" in _error(client.post(path, json=big), 413)["message"]
    assert "JSON" in _error(client.post(path, content=b"{oops"), 400)["message"]
    assert "JSON object" in _error(client.post(path, json=[1]), 400)["message"]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/api/v0/trustworthy_llm/prompt", {"prompt": "p", "quality": "ultra"}, "quality"),
        ("/api/v0/trustworthy_llm/prompt", {"prompt": "p", "task": "poetry"}, "task"),
        ("/api/v0/trustworthy_llm/prompt", {"prompt": "p", "options": {"bogus": 1}}, "options.bogus"),
        ("/api/v0/trustworthy_llm/prompt", {"prompt": 5}, "prompt"),
        ("/api/v0/trustworthy_llm/prompt", {"prompt": []}, "prompt"),
        ("/api/v0/trustworthy_llm/get_confidence_score", {"prompt": "p"}, "response"),
        ("/api/v1/rag_trustworthy_llm/score", {"prompt": "p", "query": "q", "response": "r"}, "context"),
        ("/api/v1/rag_trustworthy_llm/score", {"prompt": "p", "query": "q", "context": "c"}, "response"),
        (
            "/api/v1/rag_trustworthy_llm/generate",
            {"prompt": "p", "query": "q", "context": "c", "evals": [{}]},
            "evals[0].name",
        ),
        ("/api/chat/score", {"messages": QUESTION}, "response"),
        ("/api/chat/score", {"messages": QUESTION, "response": {"choices": []}}, "response.choices"),
        ("/api/chat/score", {"messages": QUESTION, "response": "r", "quality_preset": "x"}, "quality_preset"),
    ],
)
def test_bad_rest_input_names_the_field(path: str, body: dict[str, Any], param: str) -> None:
    model = FakeModel()
    error = _error(_client(model).post(path, json=body), 400)
    assert error["param"] == param
    assert param.split(".")[-1].split("[")[0] in error["message"]
    assert model.calls == []


def test_extra_parameters_header() -> None:
    scorer = RecordingScorer()
    client = _client(scorer=scorer)
    body = {"messages": QUESTION, "quality_preset": "low", "options": {"log": ["explanation"]}}
    assert client.post(CHAT, json=body, headers={"extra-parameters": "pass-through"}).status_code == 200
    assert scorer.requests[-1].options.quality_preset == "low"
    assert client.post(CHAT, json=body, headers={"extra-parameters": "drop"}).status_code == 200
    assert scorer.requests[-1].options is None
    error = _error(client.post(CHAT, json=body, headers={"extra-parameters": "error"}), 400)
    assert error["param"] == "quality_preset"
    assert "extra-parameters" in _error(client.post(CHAT, json=body, headers={"extra-parameters": "x"}), 400)["message"]


def test_api_version_is_ignored() -> None:
    client = _client()
    for path in ("/chat/completions?api-version=2024-05-01-preview", "/api/chat/completions?api-version=x"):
        assert client.post(path, json={"messages": QUESTION}).status_code == 200


# -- admission and time ------------------------------------------------------------------------------


def test_saturated_server_refuses_with_retry_after_and_never_hangs() -> None:
    model = FakeModel()
    app = create_app(model, limits=Limits(max_concurrency=1, max_queue=1, timeout=20))
    results: list[tuple[int, str | None, float]] = []
    with ServerThread(app) as server, httpx.Client(timeout=30) as http:

        def call() -> None:
            started = time.monotonic()
            response = http.post(f"{server.base_url}{CHAT}", json={"messages": QUESTION, "seed": 1})
            results.append((response.status_code, response.headers.get("retry-after"), time.monotonic() - started))

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        for thread in threads:
            thread.join(30)
    codes = sorted(code for code, _, _ in results)
    assert codes == [200, 200, 503, 503, 503, 503], results
    for code, retry_after, took in results:
        if code == 503:
            assert retry_after == "1" and took < 0.9  # refused at once, not after waiting
    assert len(model.calls) == 2


def test_gate_refuses_after_waiting_too_long() -> None:
    async def scenario() -> None:
        gate = Gate(1, 5, max_wait=0.1)
        slot = await gate.acquire()
        with pytest.raises(ApiError) as info:
            await gate.acquire()
        assert info.value.status == 503 and info.value.headers["Retry-After"] == "1"
        assert "queued for more than" in info.value.message
        assert gate.waiting == 0 and gate.running == 1
        slot.release()
        slot.release()  # idempotent
        assert gate.running == 0
        again = await gate.acquire()
        again.release()

    asyncio.run(scenario())


def test_timeout_is_504_and_frees_the_slot() -> None:
    app = create_app(FakeModel(), scorer=LogprobScorer(), limits=Limits(max_concurrency=1, max_queue=0, timeout=0.3))
    with ServerThread(app) as server, httpx.Client(base_url=server.base_url, timeout=10) as http:
        started = time.monotonic()
        error = _error(http.post(CHAT, json={"messages": QUESTION, "seed": 1}), 504)
        assert error["code"] == "timeout" and "0.3s" in error["message"]
        assert time.monotonic() - started < 0.9
        time.sleep(0.8)  # the abandoned worker thread finishes
        assert http.post(CHAT, json={"messages": QUESTION}).status_code == 200


def test_stream_past_the_deadline_ends_with_a_timeout_event() -> None:
    model = FakeModel()
    model.gate = threading.Event()  # the stream stalls after the first word
    client = _client(model, limits=Limits(max_concurrency=1, max_queue=0, timeout=0.5))
    try:
        with client.stream("POST", CHAT, json={"messages": QUESTION, "stream": True}) as response:
            assert response.status_code == 200
            events = [line for line in response.iter_lines() if line.startswith("data: ")]
        assert "timeout" in json.loads(events[-1][6:])["error"]["code"]
    finally:
        model.gate.set()
    assert model.closed.wait(5)
    assert client.post(CHAT, json={"messages": QUESTION}).status_code == 200  # the slot came back


# -- secrets ------------------------------------------------------------------------------------------

PROVIDER_KEY = "sk-provider-TOPSECRET-123"
SERVER_KEY = "sk-server-KEY-456"


def test_keys_never_appear_in_errors_or_logs(caplog: pytest.LogCaptureFixture, fake: Any) -> None:
    caplog.set_level(logging.DEBUG)

    def leaky(request: ScoreRequest) -> float:
        raise RuntimeError(f"judge refused key {request.options.options['model_provider']['api_key']}")

    client = _client(scorer=FunctionScorer(leaky), api_keys=[SERVER_KEY], allow_model_provider=True)
    auth = {"authorization": f"Bearer {SERVER_KEY}"}
    options = {"model": "m", "model_provider": {"api_base": fake.url, "api_key": PROVIDER_KEY}}
    texts = []
    reply = client.post(CHAT, json={"messages": QUESTION, "options": options}, headers=auth)
    assert reply.status_code == 200 and "***" in reply.json()["tlm_metadata"]["error"]["message"]
    assert fake.requests[-1].headers["authorization"] == f"Bearer {PROVIDER_KEY}"  # generated at the provider
    texts.append(reply.text)
    refused = _client(scorer=FunctionScorer(leaky), api_keys=[SERVER_KEY])  # model_provider not allowed
    denied = refused.post(CHAT, json={"messages": QUESTION, "options": options}, headers=auth)
    assert denied.status_code == 400 and denied.json()["error"]["param"] == "options.model_provider"
    texts.append(denied.text)
    for path, body in REST_BODIES.items():
        texts.append(client.post(path, json={**body, "options": options}, headers=auth).text)
    # a misspelt key name, a bad type: the validation error must not echo the value
    for provider in ({"apikey": PROVIDER_KEY}, {"api_key": PROVIDER_KEY, "provider": 5}):
        bad = client.post(CHAT, json={"messages": QUESTION, "options": {"model_provider": provider}}, headers=auth)
        assert bad.status_code == 400
        texts.append(bad.text)
    # the model fails with the key in its message: 500, scrubbed
    failing = _client(FakeModel(fail=RuntimeError(f"upstream said no to {SERVER_KEY}")), api_keys=[SERVER_KEY])
    broken = failing.post(CHAT, json={"messages": QUESTION}, headers=auth)
    assert broken.status_code == 500
    texts.append(broken.text)
    wrong = client.post(CHAT, json={"messages": QUESTION}, headers={"authorization": "Bearer sk-guess-789"})
    texts.append(wrong.text)
    everything = "\n".join(texts + [record.getMessage() for record in caplog.records])
    for secret in (PROVIDER_KEY, SERVER_KEY, "sk-guess-789"):
        assert secret not in everything


def test_per_request_scorer_factory_sees_the_request_options() -> None:
    seen: list[TLMOptions] = []

    def factory(options: TLMOptions) -> FunctionScorer:
        seen.append(options)
        return FunctionScorer(lambda request: 0.25 if options.quality_preset == "low" else 0.75)

    client = _client(scorer=factory)
    low = client.post(CHAT, json={"messages": QUESTION, "quality_preset": "low"}).json()
    plain = client.post(CHAT, json={"messages": QUESTION}).json()
    assert low["tlm_metadata"]["trustworthiness_score"] == 0.25
    assert plain["tlm_metadata"]["trustworthiness_score"] == 0.75
    rest = client.post(
        "/api/v0/trustworthy_llm/get_confidence_score", json={"prompt": "p", "response": "r", "quality": "low"}
    )
    assert rest.json()["confidence_score"] == 0.25
    assert [o.quality_preset for o in seen] == ["low", None, "low"]
