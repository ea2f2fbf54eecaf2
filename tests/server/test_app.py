"""The OpenAI-compatible server: wire format and errors on a fake model, then the real thing."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tlm_hooks.options import TLMOptions
from tlm_hooks.scorers import LogprobScorer
from tlm_hooks.server import CHAT_PATHS, ServerThread, create_app

QUESTION = [{"role": "user", "content": "What is 2+2?"}]


from server_fakes import BrokenScorer, FakeModel, RecordingScorer  # noqa: E402


def _client(model: FakeModel | None = None, **kwargs: Any) -> TestClient:
    return TestClient(create_app(model or FakeModel(), **kwargs), raise_server_exceptions=False)


def _post(client: TestClient, body: Any = None, path: str = "/v1/chat/completions", **kwargs: Any) -> httpx.Response:
    if body is None:
        body = {"model": "m", "messages": QUESTION}
    return client.post(path, json=body, **kwargs)


def _events(text: str) -> list[str]:
    assert text.endswith("\n\n")
    events = text.split("\n\n")[:-1]
    assert all(e.startswith("data: ") for e in events), events
    return [e[len("data: ") :] for e in events]


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param"}
    return error


# -- plain completions ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", CHAT_PATHS)
def test_every_path_answers(path: str) -> None:
    reply = _post(_client(), path=path)
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == "The answer is 4."


def test_no_scorer_means_no_metadata_and_no_forced_logprobs() -> None:
    model = FakeModel()
    body = _post(_client(model)).json()
    assert "tlm_metadata" not in body
    assert "logprobs" not in model.calls[0]


def test_scorer_gets_logprobs_the_client_did_not_ask_for() -> None:
    model, scorer = FakeModel(), RecordingScorer()
    body = _post(_client(model, scorer=scorer)).json()
    assert model.calls[0]["logprobs"] is True
    assert body["choices"][0]["logprobs"] is None  # not asked for, so not shown
    request = scorer.requests[0]
    assert request.response == "The answer is 4." and request.model == "fake-model"
    assert [t.token for t in request.response_logprobs] == model.words
    assert request.response_logprobs[1].top_logprobs == ((" answer", pytest.approx(-0.2)),)
    assert request.options is None
    expected = math.exp(sum(-0.1 * (i + 1) for i in range(4)) / 4)
    assert body["tlm_metadata"]["trustworthiness_score"] == pytest.approx(expected)


def test_logprobs_shown_when_asked() -> None:
    body = _post(_client(scorer=RecordingScorer()), {"messages": QUESTION, "logprobs": True, "top_logprobs": 1}).json()
    assert [e["token"] for e in body["choices"][0]["logprobs"]["content"]] == ["The", " answer", " is", " 4."]


def test_generation_arguments_are_passed_on() -> None:
    model = FakeModel()
    body = {
        "messages": QUESTION, "max_completion_tokens": 7, "max_tokens": 99, "temperature": 0.5, "top_p": 0.9,
        "seed": 0, "stop": ["\n"], "n": 1, "user": "ignored", "some_future_key": {"x": 1},
    }  # fmt: skip
    assert _post(_client(model), body).status_code == 200
    call = model.calls[0]
    assert call["max_tokens"] == 7 and call["temperature"] == 0.5 and call["top_p"] == 0.9
    assert call["stop"] == ["\n"] and call["seed"] == 0
    assert not {"user", "some_future_key", "n", "model"} & set(call)


def test_tlm_options_reach_the_scorer() -> None:
    scorer = RecordingScorer()
    body = {
        "messages": QUESTION,
        "quality_preset": "low",
        "task": "classification",
        "options": {"log": ["explanation"]},
    }
    reply = _post(_client(scorer=scorer), body).json()
    options = scorer.requests[0].options
    assert isinstance(options, TLMOptions)
    assert (options.quality_preset, options.task, options.options) == (
        "low",
        "classification",
        {"log": ["explanation"]},
    )
    assert "Token probability" in reply["tlm_metadata"]["log"]["explanation"]


def test_scorer_failure_is_reported_not_raised() -> None:
    reply = _post(_client(scorer=BrokenScorer()))
    assert reply.status_code == 200
    metadata = reply.json()["tlm_metadata"]
    assert metadata["trustworthiness_score"] is None
    assert metadata["error"] == {"message": "judge unreachable", "type": "RuntimeError"}


# -- request errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": QUESTION, "options": {"num_self_reflections": "x"}}, "options.num_self_reflections"),
        ({"messages": QUESTION, "options": {"bogus": 1}}, "options.bogus"),
        ({"messages": QUESTION, "quality_preset": "ultra"}, "quality_preset"),
        ({"messages": QUESTION, "task": "poetry"}, "task"),
        ({"model": "m"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": QUESTION, "n": 2}, "n"),
        ({"messages": QUESTION, "temperature": "hot"}, "temperature"),
        ({"messages": QUESTION, "temperature": 2.5}, "temperature"),
        ({"messages": QUESTION, "max_tokens": 0}, "max_tokens"),
        ({"messages": QUESTION, "max_completion_tokens": True}, "max_completion_tokens"),
        ({"messages": QUESTION, "top_logprobs": 3}, "top_logprobs"),
        ({"messages": QUESTION, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": QUESTION, "stream": "yes"}, "stream"),
        (
            {"messages": QUESTION, "stream": True, "stream_options": {"include_usage": 1}},
            "stream_options.include_usage",
        ),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    model = FakeModel()
    error = _error(_post(_client(model), body), 400)
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert param.split(".")[-1].split("[")[0] in error["message"]
    assert model.calls == []  # rejected before the model is queued


def test_malformed_json() -> None:
    client = _client()
    error = _error(
        client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}), 400
    )
    assert "JSON" in error["message"]
    assert "empty" in _error(client.post("/v1/chat/completions"), 400)["message"]
    assert "JSON object" in _error(_post(client, [1, 2]), 400)["message"]


def test_body_too_large() -> None:
    client = _client(max_body_bytes=200)
    big = {"messages": [{"role": "user", "content": "x" * 500}]}
    assert "limit of 200 bytes" in _error(_post(client, big), 413)["message"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield json.dumps(big).encode()

    assert _error(client.post("/v1/chat/completions", content=chunked()), 413)


def test_model_errors() -> None:
    error = _error(_post(_client(FakeModel(fail=ValueError("invalid messages: the prompt is too long")))), 400)
    assert error["param"] == "messages" and "too long" in error["message"]
    error = _error(_post(_client(FakeModel(fail=RuntimeError("GPU on fire")))), 500)
    assert error["type"] == "server_error" and "GPU on fire" in error["message"]


def test_unknown_route_and_method_are_openai_shaped() -> None:
    client = _client()
    assert _error(client.get("/v1/nothing"), 404)
    assert _error(client.get("/v1/chat/completions"), 405)
    assert client.get("/health").json() == {"status": "ok", "model": "fake-model"}


def test_create_app_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="chat"):
        create_app(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="api_keys"):
        create_app(FakeModel(), api_keys=[])
    with pytest.raises(ValueError, match="api_keys"):
        create_app(FakeModel(), api_keys="sk-one")  # type: ignore[arg-type]


# -- auth ------------------------------------------------------------------------------------------


def test_api_keys() -> None:
    client = _client(api_keys=["sk-one", "sk-two"])
    for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": "sk-one"}, {"api-key": "nope"}):
        response = _post(client, headers=headers)
        error = _error(response, 401)
        assert error["code"] == "invalid_api_key" and "sk-" not in response.text
    assert _post(client, headers={"Authorization": "Bearer sk-two"}).status_code == 200
    assert _post(client, headers={"authorization": "bearer sk-one"}).status_code == 200
    assert _post(client, headers={"api-key": "sk-one"}).status_code == 200  # Azure clients
    assert client.get("/health").status_code == 200


# -- streaming ---------------------------------------------------------------------------------------


def _stream(client: TestClient, body: dict[str, Any]) -> list[Any]:
    with client.stream("POST", "/v1/chat/completions", json={"messages": QUESTION, "stream": True, **body}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.read().decode())
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_stream_with_scorer() -> None:
    model, scorer = FakeModel(), RecordingScorer()
    chunks = _stream(_client(model, scorer=scorer), {})
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "The answer is 4."
    assert all(c["choices"][0]["logprobs"] is None for c in chunks)  # not asked for
    assert model.calls[0]["logprobs"] is True and model.calls[0]["include_usage"] is False
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert 0 < chunks[-1]["tlm_metadata"]["trustworthiness_score"] <= 1
    assert all("tlm_metadata" not in c for c in chunks[:-1])
    assert [t.token for t in scorer.requests[0].response_logprobs] == model.words


def test_stream_usage_and_logprobs() -> None:
    chunks = _stream(_client(scorer=RecordingScorer()), {"stream_options": {"include_usage": True}, "logprobs": True})
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
    assert "tlm_metadata" in chunks[-1] and "tlm_metadata" not in chunks[-2]
    assert chunks[1]["choices"][0]["logprobs"]["content"][0]["token"] == "The"


def test_stream_without_scorer_has_no_metadata() -> None:
    chunks = _stream(_client(), {"stream_options": {"include_usage": True}})
    assert not any("tlm_metadata" in c for c in chunks)
    assert chunks[-1]["usage"]["total_tokens"] == 9


def test_stream_scorer_failure_still_finishes() -> None:
    chunks = _stream(_client(scorer=BrokenScorer()), {})
    assert chunks[-1]["tlm_metadata"]["error"]["type"] == "RuntimeError"


def test_stream_error_before_first_chunk_is_an_http_error() -> None:
    client = _client(FakeModel(fail=ValueError("invalid temperature=9: allowed 0 to 2")))
    error = _error(_post(client, {"messages": QUESTION, "stream": True}), 400)
    assert error["param"] == "temperature"


def test_stream_error_midway_ends_with_an_error_event() -> None:
    model = FakeModel()
    model.fail_mid_stream = True
    with _client(model).stream("POST", "/v1/chat/completions", json={"messages": QUESTION, "stream": True}) as response:
        events = _events(response.read().decode())
    assert "[DONE]" not in events
    assert "boom mid-stream" in json.loads(events[-1])["error"]["message"]
    assert model.closed.wait(5)


# -- over real HTTP (uvicorn in a thread) -----------------------------------------------------------


def test_server_thread_lifecycle() -> None:
    server = ServerThread(create_app(FakeModel()))
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
    with server:
        assert server.base_url.startswith("http://127.0.0.1:") and server.port > 0
        assert httpx.get(f"{server.base_url}/health", timeout=5).json()["status"] == "ok"
        url = server.base_url
    assert not server.running
    server.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)


def test_stream_chunks_are_not_buffered() -> None:
    model = FakeModel()
    model.gate = threading.Event()  # the model stalls after the first word until the client sees it
    with ServerThread(create_app(model)) as server, httpx.Client(timeout=20) as http:
        body = {"messages": QUESTION, "stream": True}
        with http.stream("POST", f"{server.base_url}/v1/chat/completions", json=body) as response:
            contents = []
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    delta = json.loads(line[6:])["choices"][0]["delta"]
                    contents.append(delta.get("content"))
                    if delta.get("content") == "The":
                        model.gate.set()
        assert model.gate.is_set() and "".join(c or "" for c in contents) == "The answer is 4."


def test_client_disconnect_releases_the_model() -> None:
    model = FakeModel()
    model.gate = threading.Event()
    with ServerThread(create_app(model)) as server, httpx.Client(timeout=20) as http:
        with http.stream(
            "POST", f"{server.base_url}/v1/chat/completions", json={"messages": QUESTION, "stream": True}
        ) as response:
            for line in response.iter_lines():
                if '"The"' in line:
                    break  # hang up mid-answer
        model.gate.set()
        assert model.closed.wait(10), "the model's stream was never closed"


def test_slow_model_does_not_block_other_requests() -> None:
    model = FakeModel()
    with ServerThread(create_app(model)) as server, httpx.Client(timeout=20) as http:
        slow = threading.Thread(
            target=http.post,
            args=(f"{server.base_url}/v1/chat/completions",),
            kwargs={"json": {"messages": QUESTION, "seed": 1}},
        )
        slow.start()
        while not model.calls:
            time.sleep(0.01)
        started = time.monotonic()
        assert http.get(f"{server.base_url}/health").status_code == 200
        assert time.monotonic() - started < 0.5, "the event loop was blocked by the model call"
        assert slow.is_alive()
        slow.join(10)


# -- the real embedded model, through the real OpenAI client ----------------------------------------


@pytest.fixture(scope="module")
def real_server() -> Iterator[ServerThread]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    from tlm_hooks.local import LocalModel

    model = LocalModel()
    with ServerThread(create_app(model, scorer=LogprobScorer(), api_keys=["sk-local-test"])) as server:
        yield server
    model.close()


@pytest.mark.embedded_model
def test_openai_client_against_the_embedded_model(real_server: ServerThread) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{real_server.base_url}/v1", api_key="sk-local-test", max_retries=0, timeout=60)
    extra = {"quality_preset": "base", "options": {"log": ["explanation"]}}

    resp = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=48, logprobs=True, extra_body=extra
    )
    text = resp.choices[0].message.content
    assert text.strip() and resp.model == "smollm2-135m-instruct"
    metadata = resp.tlm_metadata
    score = metadata["trustworthiness_score"]
    assert isinstance(score, float) and 0.0 <= score <= 1.0
    # computed by LogprobScorer from this very answer's token logprobs
    logprobs = [t.logprob for t in resp.choices[0].logprobs.content]
    assert "".join(t.token for t in resp.choices[0].logprobs.content) == text
    assert score == pytest.approx(math.exp(sum(logprobs) / len(logprobs)), rel=1e-6)
    assert metadata["log"]["per_component_score"]["token_probability_geometric_mean"] == pytest.approx(score)
    assert "Token probability" in metadata["log"]["explanation"]

    plain = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=48)
    assert plain.choices[0].logprobs is None and plain.choices[0].message.content == text
    assert plain.tlm_metadata["trustworthiness_score"] == pytest.approx(score)

    chunks = list(
        client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=48, stream=True, extra_body=extra)
    )
    assert len(chunks) > 3
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].tlm_metadata["trustworthiness_score"] == pytest.approx(score)
    assert all(getattr(c, "tlm_metadata", None) is None for c in chunks[:-1])

    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{real_server.base_url}/v1", api_key="sk-wrong", max_retries=0).chat.completions.create(
            model="m", messages=QUESTION
        )

    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="m", messages=QUESTION, extra_body={"options": {"num_self_reflections": "x"}}
        )
    assert info.value.body["param"] == "options.num_self_reflections"
    assert "num_self_reflections" in info.value.body["message"]
