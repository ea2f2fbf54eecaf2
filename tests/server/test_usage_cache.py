"""The server on the library's scoring path: ``options.log: ["usage"]`` in the reply, the score cache
(``log.cached``, no judge call, ``options.cache: false``), warnings said once, and a ``--cache`` file
that outlives a real ``tlm-hooks serve`` process."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_process import ServeProcess
from server_fakes import FakeModel
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the engine tests' loopback judge
from engine.judge_server import JudgeServer, judge_server  # noqa: E402

from tlm_hooks import TLMScorer  # noqa: E402
from tlm_hooks.llm import OpenAICompatibleBackend, RetryPolicy  # noqa: E402
from tlm_hooks.scorers.asked import NO_LOGPROBS  # noqa: E402
from tlm_hooks.scorers.cache import MemoryCache  # noqa: E402
from tlm_hooks.server import create_app  # noqa: E402

CONFIDENCE = "/api/v0/trustworthy_llm/get_confidence_score"


@pytest.fixture
def judge() -> Iterator[JudgeServer]:
    with judge_server(refuse_n=False, delay=0.0) as server:
        yield server


def _client(judge: JudgeServer, cache: Any) -> TestClient:
    backend = OpenAICompatibleBackend(model="judge-model", base_url=judge.url, api_key="k", retry=RetryPolicy(max_retries=0))
    scorer = TLMScorer("low", judge=backend, cache=cache, prices={"judge-model": (1.0, 2.0)})
    return TestClient(create_app(FakeModel(), scorer=scorer), raise_server_exceptions=False)


def test_usage_and_the_cache_in_replies(judge: JudgeServer) -> None:
    client = _client(judge, MemoryCache(16))
    body = {"prompt": "What is 2+2?", "response": "4", "options": {"log": ["usage"]}}
    first = client.post(CONFIDENCE, json=body).json()
    calls = len(judge.asked)
    assert first["log"]["usage"]["judge_calls"] == calls > 0 and first["log"]["usage"]["cost_usd"] > 0
    assert "cached" not in first["log"]
    second = client.post(CONFIDENCE, json=body).json()
    assert len(judge.asked) == calls
    assert second["log"]["cached"] is True and second["log"]["usage"]["judge_calls"] == 0
    assert second["confidence_score"] == first["confidence_score"] is not None
    bypass = client.post(CONFIDENCE, json={**body, "options": {"log": ["usage"], "cache": False}}).json()
    assert len(judge.asked) == 2 * calls and "cached" not in bypass["log"]


def test_usage_is_an_allowed_log_key_and_warnings_are_said_once(judge: JudgeServer) -> None:
    client = _client(judge, False)
    body = {"prompt": "q", "response": "a", "options": {"log": ["perplexity", "usage"]}}
    data = client.post(CONFIDENCE, json=body).json()
    assert data["log"]["perplexity"] is None
    assert data["log"]["warnings"].count(NO_LOGPROBS) == 1
    refused = client.post(CONFIDENCE, json={"prompt": "q", "response": "a", "options": {"log": ["usages"]}})
    assert refused.status_code in (400, 422) and "'usage'" in refused.text


@pytest.mark.timeout(1200)  # two server start-ups on a shared CPU
def test_a_serve_cache_file_outlives_the_process(judge: JudgeServer, tmp_path: Path) -> None:
    cache = tmp_path / "server-scores.sqlite"
    args = ["--model", judge.url, "--upstream-model", "judge-model", "--no-auth", "--cache", str(cache)]
    body = {"prompt": "What is 2+2?", "response": "4", "quality_preset": "low", "options": {"log": ["usage"]}}
    replies = []
    for _ in range(2):
        with ServeProcess(args, startup_timeout=240) as server:
            reply = httpx.post(server.base_url + CONFIDENCE, json=body, timeout=120)
            assert reply.status_code == 200, reply.text
            replies.append(reply.json())
        if len(replies) == 1:
            calls = len(judge.asked)
    assert calls > 0 and len(judge.asked) == calls  # the second server asked the judge nothing
    assert replies[0]["log"]["usage"]["judge_calls"] == calls and "cached" not in replies[0]["log"]
    assert replies[1]["log"]["cached"] is True
    assert replies[1]["confidence_score"] == replies[0]["confidence_score"] is not None


def test_serve_refuses_a_cache_path_it_cannot_use(tmp_path: Path) -> None:
    from tlm_hooks.server.serve import main

    assert main(["--no-auth", "--cache", str(tmp_path)]) == 2
