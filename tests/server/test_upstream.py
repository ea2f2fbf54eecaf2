"""`UpstreamModel`: the server generating on an OpenAI-compatible server (the loopback fake), scoring here."""

from __future__ import annotations

import json
import logging
import math
import socket
from typing import Any

import pytest
from fake_openai import FakeOpenAI, Reply
from starlette.testclient import TestClient

from tlm_hooks.scorers import LogprobScorer
from tlm_hooks.server import UpstreamModel, create_app

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
UPSTREAM_KEY = "sk-upstream-VERYSECRET-42"


def _app(fake: FakeOpenAI, **kwargs: Any) -> TestClient:
    model = UpstreamModel(fake.url, api_key=UPSTREAM_KEY, **kwargs)
    app = create_app(model, scorer=LogprobScorer(), hidden=[UPSTREAM_KEY])
    return TestClient(app, raise_server_exceptions=False)


def test_direct_calls(fake: FakeOpenAI) -> None:
    model = UpstreamModel(fake.url, api_key=UPSTREAM_KEY)
    reply = model.chat(QUESTION, model="gpt-x", max_tokens=5)
    assert reply["choices"][0]["message"]["content"] == "The answer is 4."
    seen = fake.requests[-1]
    assert seen.path == "/v1/chat/completions" and seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert seen.body == {"model": "gpt-x", "messages": QUESTION, "max_tokens": 5}
    chunks = list(model.chat_stream(QUESTION, model="gpt-x", include_usage=True))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "The answer is 4."
    assert fake.requests[-1].body["stream"] is True and fake.requests[-1].body["stream_options"] == {
        "include_usage": True
    }
    assert UPSTREAM_KEY not in repr(model)
    model.close()


def test_proxied_completion_is_scored_from_upstream_logprobs(fake: FakeOpenAI) -> None:
    client = _app(fake)
    reply = client.post(
        "/api/chat/completions", json={"model": "gpt-x", "messages": QUESTION, "quality_preset": "base"}
    )
    assert reply.status_code == 200
    data = reply.json()
    assert data["model"] == "gpt-x" and data["choices"][0]["logprobs"] is None
    assert data["tlm_metadata"]["trustworthiness_score"] == pytest.approx(math.exp(-0.05))
    sent = fake.requests[-1].body
    assert sent["logprobs"] is True and "quality_preset" not in sent  # TLM keys stay here


def test_fixed_upstream_model_wins(fake: FakeOpenAI) -> None:
    client = _app(fake, model="served-model")
    assert client.post("/v1/chat/completions", json={"model": "whatever", "messages": QUESTION}).status_code == 200
    assert fake.requests[-1].body["model"] == "served-model"


def test_proxied_stream(fake: FakeOpenAI) -> None:
    client = _app(fake)
    body = {"model": "gpt-x", "messages": QUESTION, "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "The answer is 4."
    assert chunks[-1]["tlm_metadata"]["trustworthiness_score"] == pytest.approx(math.exp(-0.05))


def test_upstream_failures_map_to_clear_errors(fake: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = _app(fake)
    body = {"model": "gpt-x", "messages": QUESTION}
    texts = []
    fake.push(Reply(status=401))
    refused = client.post("/v1/chat/completions", json=body)
    assert refused.status_code == 502 and "credentials" in refused.json()["error"]["message"]
    fake.push(Reply(status=400, error_param="temperature"))
    bad = client.post("/v1/chat/completions", json=body)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "temperature"
    fake.push(Reply(status=429))
    limited = client.post("/v1/chat/completions", json=body)
    assert limited.status_code == 503 and limited.headers["retry-after"] == "1"
    fake.push(Reply(status=500))
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as failed_stream:
        assert failed_stream.status_code == 502
        texts.append(failed_stream.read().decode())
    no_model = client.post("/v1/chat/completions", json={"messages": QUESTION})
    assert no_model.status_code == 400 and no_model.json()["error"]["param"] == "model"
    texts += [refused.text, bad.text, limited.text, no_model.text]
    assert UPSTREAM_KEY not in "\n".join(texts + [r.getMessage() for r in caplog.records])


def test_unreachable_and_slow_upstreams(fake: FakeOpenAI) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = TestClient(
        create_app(UpstreamModel(f"http://127.0.0.1:{port}/v1", model="m")), raise_server_exceptions=False
    )
    reply = gone.post("/v1/chat/completions", json={"messages": QUESTION})
    assert reply.status_code == 502 and "cannot reach" in reply.json()["error"]["message"]
    fake.push(Reply(delay=1.0))
    slow = TestClient(create_app(UpstreamModel(fake.url, model="m", timeout=0.2)), raise_server_exceptions=False)
    assert slow.post("/v1/chat/completions", json={"messages": QUESTION}).status_code == 504


def test_base_url_is_checked() -> None:
    with pytest.raises(ValueError, match="http"):
        UpstreamModel("ftp://example.com/v1")


def test_n_is_passed_upstream_and_every_choice_comes_back(fake: FakeOpenAI) -> None:
    fake.honour_n = True
    fake.default = Reply(text="Four.", choices=["4", "It is 4."])
    reply = _app(fake).post("/v1/chat/completions", json={"model": "gpt-x", "messages": QUESTION, "n": 3})
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert [c["message"]["content"] for c in data["choices"]] == ["Four.", "4", "It is 4."]
    assert fake.requests[-1].body["n"] == 3  # one upstream request for the three
    warnings = data["tlm_metadata"]["log"]["warnings"]
    assert "n=3: tlm_metadata scores the first choice" in warnings
    assert not [w for w in warnings if "answered" in w]
    assert data["tlm_metadata"]["trustworthiness_score"] == pytest.approx(math.exp(-0.05))


def test_an_upstream_that_answers_fewer_choices_is_reported_not_hidden(fake: FakeOpenAI) -> None:
    fake.honour_n = False
    reply = _app(fake).post("/v1/chat/completions", json={"model": "gpt-x", "messages": QUESTION, "n": 3})
    assert reply.status_code == 200
    data = reply.json()
    assert len(data["choices"]) == 1
    assert "n=3: the model answered 1 choice(s)" in data["tlm_metadata"]["log"]["warnings"]


def test_n_above_openais_limit_or_with_a_stream_is_refused_before_the_upstream_call(fake: FakeOpenAI) -> None:
    client = _app(fake)
    too_many = client.post("/v1/chat/completions", json={"model": "gpt-x", "messages": QUESTION, "n": 129})
    streamed = client.post(
        "/v1/chat/completions", json={"model": "gpt-x", "messages": QUESTION, "n": 2, "stream": True}
    )
    for refused in (too_many, streamed):
        assert refused.status_code == 400
        assert refused.json()["error"]["param"] == "n"
    assert "at most 128" in too_many.json()["error"]["message"]
    assert fake.requests == []


@pytest.mark.parametrize("upstream", ["honours-n", "ignores-n", "refuses-n"])
async def test_the_engine_judging_through_the_upstream_asks_for_n_once_and_tops_up(
    fake: FakeOpenAI, upstream: str
) -> None:
    from tlm_hooks.llm.local import LocalBackend

    honoured = upstream == "honours-n"
    fake.honour_n = honoured
    fake.default = Reply(text="Four.", choices=["4", "four", "It is 4."])
    if upstream == "refuses-n":  # a 400 naming n, as a server that generates one choice sends
        fake.push(Reply(status=400, error_param="n"))
    model = UpstreamModel(fake.url, model="judge-m")
    judge = LocalBackend(model)
    assert judge.n_honoured is None  # not yet seen
    samples = await judge.acomplete(QUESTION, n=4, temperature=1.0, seed=7)
    assert len(samples) == 4
    asked = [r.body for r in fake.requests]
    assert asked[0]["n"] == 4
    if honoured:
        assert len(asked) == 1 and judge.n_honoured is True
    elif upstream == "ignores-n":  # the short answer is topped up: one request per missing sample, own seeds
        assert len(asked) == 4 and judge.n_honoured is False
        assert [b.get("n") for b in asked[1:]] == [None, None, None]
        assert len({b["seed"] for b in asked}) == 4
    else:  # the refusal (relayed as an error naming its status) is learned: one request per sample
        assert len(asked) == 5 and judge.n_honoured is False
        assert [b.get("n") for b in asked[1:]] == [None] * 4
        assert len({b["seed"] for b in asked[1:]}) == 4
    if not honoured:
        fake.requests.clear()
        await judge.acomplete(QUESTION, n=3, temperature=1.0)  # learned: once per sample from now on
        assert [r.body.get("n") for r in fake.requests] == [None, None, None]
    model.close()
