"""Concurrent scores against a judge that refuses ``n>1`` (as ``tlm-hooks serve`` does over an upstream server): one
probe learns it, every score still gets all its consistency samples, from async callers, sync
callers on the shared background loop, and callers on loops of their own."""

from __future__ import annotations

import asyncio
import math
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from engine.judge_server import JudgeServer, judge_server
from tlm_hooks import ScoreRequest, TLMScorer, TokenLogprob, TrustResult
from tlm_hooks.llm import OpenAICompatibleBackend, RetryPolicy
from tlm_hooks.scorers.signals.presets import PRESET_PLANS

ITEMS = 8
MEDIUM = PRESET_PLANS["medium"]
SURE = (TokenLogprob("4", math.log(0.9)),)


def requests() -> list[ScoreRequest]:
    return [ScoreRequest(prompt=f"What is {i}+{4 - i}?", response="4", response_logprobs=SURE) for i in range(ITEMS)]


@pytest.fixture
def refusing() -> Iterator[JudgeServer]:
    with judge_server(refuse_n=True, delay=0.05) as server:
        yield server


def scorer_for(server: JudgeServer) -> TLMScorer:
    judge = OpenAICompatibleBackend(
        model="judge-model", base_url=server.url, api_key="k", retry=RetryPolicy(max_retries=0)
    )
    return TLMScorer("medium", judge=judge)


def _async_gather(scorer: TLMScorer, items: list[ScoreRequest]) -> list[TrustResult]:
    async def run() -> list[TrustResult]:
        return list(await asyncio.gather(*(scorer.ascore(item) for item in items)))

    return asyncio.run(run())


def _sync_threads(scorer: TLMScorer, items: list[ScoreRequest]) -> list[TrustResult]:
    # sync callers: each score runs on tlm-hooks' one background loop
    with ThreadPoolExecutor(ITEMS) as pool:
        return list(pool.map(scorer.score, items))


def _loop_per_thread(scorer: TLMScorer, items: list[ScoreRequest]) -> list[TrustResult]:
    # every caller on its own event loop, sharing one judge backend
    with ThreadPoolExecutor(ITEMS) as pool:
        return list(pool.map(lambda item: asyncio.run(scorer.ascore(item)), items))


def _batch(scorer: TLMScorer, items: list[ScoreRequest]) -> list[TrustResult]:
    return scorer.score_batch(items)


@pytest.mark.parametrize(
    "run",
    [_async_gather, _sync_threads, _loop_per_thread, _batch],
    ids=["async_gather", "sync_threads", "loop_per_thread", "score_batch"],
)
def test_every_concurrent_score_gets_its_consistency_samples(
    refusing: JudgeServer, run: Callable[[TLMScorer, list[ScoreRequest]], list[TrustResult]]
) -> None:
    results = run(scorer_for(refusing), requests())

    assert len(results) == ITEMS
    for result in results:
        assert result.ok, result.error
        assert "consistency" in result.components and "self_reflection" in result.components
        assert result.signals["consistency"] == {"asked": MEDIUM.samples, "ran": MEDIUM.samples}
        assert result.warnings == ()
        assert result.components["llm_calls"] == MEDIUM.reflections + MEDIUM.samples
    # one request asked for n>1 and was refused; every sample after it was asked one at a time
    refused = [a for a in refusing.asked if a.refused]
    assert [(a.kind, a.n) for a in refused] == [("sample", MEDIUM.samples)]
    answered = refusing.kinds(refused=False)
    assert answered.count("sample") == ITEMS * MEDIUM.samples
    assert len(answered) == ITEMS * (MEDIUM.reflections + MEDIUM.samples)


def test_a_judge_that_honours_n_gets_one_sampling_request_per_score() -> None:
    with judge_server(refuse_n=False) as server:
        results = _async_gather(scorer_for(server), requests())
    assert all(r.ok and r.signals["consistency"]["ran"] == MEDIUM.samples for r in results)
    samples = [a for a in server.asked if a.kind == "sample"]
    assert len(samples) == ITEMS and {a.n for a in samples} == {MEDIUM.samples}


def _serve(upstream: str, key: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "tlm_hooks.cli", "serve", "--port", str(port), "--model", upstream]
    command += ["--no-score", "--api-key", key, "--log-level", "warning", "--max-concurrency", "8"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.communicate()[1].decode()}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("serve did not come up within 60 s")


@pytest.mark.parametrize("upstream_refuses_n", [False, True], ids=["upstream-honours-n", "upstream-refuses-n"])
def test_concurrent_scores_with_tlm_hooks_serve_as_the_judge(upstream_refuses_n: bool) -> None:
    """The real server (passing n>1 on to its upstream server) judging, generating on a loopback model."""
    with judge_server(refuse_n=upstream_refuses_n, delay=0.02) as upstream:
        process, base = _serve(upstream.url, "sk-judge-key")
        try:
            judge = OpenAICompatibleBackend(
                model="served", base_url=f"{base}/v1", api_key="sk-judge-key", retry=RetryPolicy(max_retries=0)
            )
            results = _async_gather(TLMScorer("medium", judge=judge), requests())
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for result in results:
        assert result.ok and result.warnings == (), (result.error, result.warnings)
        assert result.signals["consistency"] == {"asked": MEDIUM.samples, "ran": MEDIUM.samples}
    samples = [a for a in upstream.asked if a.kind == "sample"]
    if upstream_refuses_n:  # its 400 reached the judge, which probed once, then asked one sample at a time
        assert [a.n for a in samples].count(MEDIUM.samples) == 1
        assert [a.n for a in samples].count(1) == ITEMS * MEDIUM.samples
    else:  # each score's samples in one request, answered by the upstream
        assert [a.n for a in samples] == [MEDIUM.samples] * ITEMS
