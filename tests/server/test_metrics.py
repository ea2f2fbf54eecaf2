"""GET /metrics: what real requests leave in it, who may read it, and what it never contains."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from fake_openai import FakeOpenAI
from prometheus_client.parser import text_string_to_metric_families
from server_fakes import FakeModel
from starlette.testclient import TestClient

from tlm_hooks.llm.local import LocalBackend
from tlm_hooks.scorers import LogprobScorer
from tlm_hooks.server import Limits, ServerThread, UpstreamModel, create_app
from tlm_hooks.server.scoring import DefaultScorers

KEY = "sk-metrics-KEY-7f3a9"
AUTH = {"Authorization": f"Bearer {KEY}"}
PROMPT = "PROMPT-MARKER-4c1d: what is the capital of France?"
QUESTION = [{"role": "user", "content": PROMPT}]
CHAT = "/v1/chat/completions"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of an exposition text (parsed by prometheus_client)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _scrape(client: TestClient | httpx.Client, headers: dict[str, str] | None = None) -> dict[Any, float]:
    response = client.get("/metrics", headers=headers or AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


def _client(**kwargs: Any) -> TestClient:
    kwargs.setdefault("scorer", LogprobScorer())
    kwargs.setdefault("api_keys", [KEY])
    kwargs.setdefault("metrics", "auth")
    return TestClient(create_app(FakeModel(), **kwargs), raise_server_exceptions=False)


def test_requests_scores_and_refusals_are_counted_by_route_template() -> None:
    client = _client()
    before = _scrape(client)
    scores = []
    for _ in range(3):
        reply = client.post(CHAT, json={"messages": QUESTION, "logprobs": True}, headers=AUTH)
        assert reply.status_code == 200, reply.text
        scores.append(reply.json()["tlm_metadata"]["trustworthiness_score"])
    assert client.post(CHAT, json={"messages": QUESTION}).status_code == 401
    assert client.post(CHAT, json={"messages": "not a list"}, headers=AUTH).status_code == 400
    deployment = "/openai/deployments/customer-secret-deployment/chat/completions?api-version=2024-10-21"
    assert client.post(deployment, json={"messages": QUESTION}, headers=AUTH).status_code == 200
    assert client.get("/scanner/probe-path-9d2e").status_code == 404
    assert client.get(CHAT).status_code == 405

    after = _scrape(client)
    moved = {key: value - before.get(key, 0.0) for key, value in after.items()}
    requests = "tlm_hooks_requests_total"
    assert _value(moved, requests, route=CHAT, method="POST", status="200") == 3
    assert _value(moved, requests, route=CHAT, method="POST", status="401") == 1
    assert _value(moved, requests, route=CHAT, method="POST", status="400") == 1
    assert _value(moved, requests, route=CHAT, method="GET", status="405") == 1
    azure = "/openai/deployments/{deployment:path}/chat/completions"
    assert _value(moved, requests, route=azure, method="POST", status="200") == 1
    assert _value(moved, requests, route="unmatched", method="GET", status="404") == 1
    assert _value(moved, requests, route="/metrics", method="GET", status="200") == 1  # the first scrape
    # every request was timed (refusals too), under its route template only
    assert _value(moved, "tlm_hooks_request_duration_seconds_count", route=CHAT) == 6
    assert _value(moved, "tlm_hooks_request_duration_seconds_bucket", route=CHAT, le="+Inf") == 6
    # four scored replies (three here, one Azure), the histogram sums the scores the clients got
    assert _value(moved, "tlm_hooks_scores_total", outcome="scored") == 4
    assert _value(moved, "tlm_hooks_trustworthiness_score_count") == 4
    assert _value(moved, "tlm_hooks_trustworthiness_score_sum") == pytest.approx(sum(scores) + scores[0])
    # a logprob score makes no judge call
    assert _value(after, "tlm_hooks_judge_calls_total") == 0
    assert _value(after, "tlm_hooks_requests_in_flight") == 1  # the scrape itself
    assert _value(after, "tlm_hooks_queue_depth") == 0 and _value(after, "tlm_hooks_running") == 0
    assert _value(after, "tlm_hooks_max_concurrency") == Limits().max_concurrency


def test_nothing_a_client_sends_becomes_a_label_or_appears() -> None:
    client = _client()
    body = {"messages": QUESTION, "model": "model-name-from-request-5b7e", "options": {"model": "asked-model-8a1f"}}
    client.post(CHAT, json=body, headers=AUTH)
    client.request("FROBNICATE", CHAT, headers=AUTH)
    client.post("/v1/chat/completions/../../etc/passwd-like-6e0a", headers=AUTH)
    text = client.get("/metrics", headers=AUTH).text
    for secret in (KEY, "PROMPT-MARKER", "capital of France", "model-name-from-request", "asked-model", "6e0a"):
        assert secret not in text
    assert "FROBNICATE" not in text and 'method="other"' in text
    labels = {name for family in text_string_to_metric_families(text) for s in family.samples for name in s.labels}
    assert labels <= {"route", "method", "status", "outcome", "reason", "le"}


def test_a_saturated_gate_shows_in_queue_depth_and_503_counts() -> None:
    model = FakeModel()
    app = create_app(
        model, scorer=LogprobScorer(), api_keys=[KEY], limits=Limits(max_concurrency=1, max_queue=1), metrics="auth"
    )
    statuses: list[int] = []
    with ServerThread(app) as server, httpx.Client(base_url=server.base_url, timeout=30, headers=AUTH) as http:

        def call() -> None:  # FakeModel sleeps `seed` seconds: each call holds the slot for 1 s
            statuses.append(http.post(CHAT, json={"messages": QUESTION, "seed": 1}).status_code)

        threads = [threading.Thread(target=call) for _ in range(5)]
        for thread in threads[:2]:
            thread.start()
            time.sleep(0.1)
        during = _scrape(http)
        for thread in threads[2:]:
            thread.start()
            time.sleep(0.05)
        for thread in threads:
            thread.join(30)
        after = _scrape(http)
    assert sorted(statuses) == [200, 200, 503, 503, 503]
    assert _value(during, "tlm_hooks_running") == 1 and _value(during, "tlm_hooks_queue_depth") == 1
    assert _value(during, "tlm_hooks_requests_in_flight") == 3  # two calls and the scrape
    assert _value(after, "tlm_hooks_rejected_total", reason="queue_full") == 3
    assert _value(after, "tlm_hooks_rejected_total", reason="queue_timeout") == 0
    assert _value(after, "tlm_hooks_requests_total", route=CHAT, method="POST", status="503") == 3
    assert _value(after, "tlm_hooks_requests_total", route=CHAT, method="POST", status="200") == 2
    assert _value(after, "tlm_hooks_queue_depth") == 0 and _value(after, "tlm_hooks_running") == 0
    # a refused request is timed too, and fast: it never waited
    assert _value(after, "tlm_hooks_request_duration_seconds_bucket", route=CHAT, le="0.5") == 3


def test_shutting_down_refusals_are_counted() -> None:
    app = create_app(FakeModel(), scorer=LogprobScorer(), metrics="public")
    client = TestClient(app, raise_server_exceptions=False)
    app.state.draining.begin(5)
    assert client.post(CHAT, json={"messages": QUESTION}).status_code == 503
    samples = _scrape(client, headers={})
    assert _value(samples, "tlm_hooks_rejected_total", reason="shutting_down") == 1
    assert _value(samples, "tlm_hooks_draining") == 1


def test_judge_calls_and_tokens_are_counted_as_the_judge_saw_them(fake: FakeOpenAI) -> None:
    """The engine judges through an OpenAI-compatible server: the counters match what it served."""
    pytest.importorskip("tlm_hooks.scorers.tlm")
    model = UpstreamModel(fake.url, model="judge-x")
    app = create_app(model, scorer=DefaultScorers(judge=LocalBackend(model)), metrics="public")
    client = TestClient(app, raise_server_exceptions=False)
    replies = [client.post(CHAT, json={"messages": QUESTION, "quality_preset": preset}) for preset in ("low", "medium")]
    for reply in replies:
        assert reply.status_code == 200, reply.text
        assert reply.json()["tlm_metadata"]["trustworthiness_score"] is not None
    judge_requests = len(fake.requests) - len(replies)  # one generation per reply, the rest judged
    assert judge_requests > 0
    samples = _scrape(client, headers={})
    assert _value(samples, "tlm_hooks_judge_calls_total") == judge_requests
    # the fake reports 5 prompt + 5 completion tokens per request
    assert _value(samples, "tlm_hooks_judge_tokens_total") == 10 * judge_requests
    assert _value(samples, "tlm_hooks_scores_total", outcome="scored") == 2
    model.close()


@pytest.mark.parametrize(
    ("mode", "key", "status"),
    [
        ("auth", None, 401),
        ("auth", "wrong-key", 401),
        ("auth", KEY, 200),
        ("public", None, 200),
        ("off", KEY, 404),
    ],
)
def test_metrics_modes(mode: str, key: str | None, status: int) -> None:
    client = _client(metrics=mode)
    headers = {"api-key": key} if key else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == status, response.text
    if status == 200:
        assert "tlm_hooks_requests_total" in response.text
    if mode == "off":  # no route, and no counting either
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_auth_mode_without_keys_is_open_like_the_rest() -> None:
    client = _client(api_keys=None)
    assert client.get("/metrics").status_code == 200


def test_a_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="off, auth, public"):
        create_app(FakeModel(), metrics="on")


def test_two_apps_in_one_process_count_separately() -> None:
    first, second = _client(), _client()
    assert first.post(CHAT, json={"messages": QUESTION}, headers=AUTH).status_code == 200
    first_samples, second_samples = _scrape(first), _scrape(second)
    assert _value(first_samples, "tlm_hooks_requests_total", route=CHAT, method="POST", status="200") == 1
    assert _value(second_samples, "tlm_hooks_requests_total", route=CHAT, method="POST", status="200") == 0
