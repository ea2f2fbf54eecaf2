"""The score cache, counted at a judge on loopback: a repeated score makes no judge call and says it
was stored; ``cache=False`` and a changed request score anew; a failed or partial score is not kept;
a cache file is shared by two processes and by re-runs of ``tlm-hooks score``."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.judge_server import JudgeServer, judge_server
from tlm_hooks import ScoreRequest, TLMScorer, TokenLogprob
from tlm_hooks.llm import OpenAICompatibleBackend, RetryPolicy
from tlm_hooks.options import TLMOptions
from tlm_hooks.scorers.cache import MemoryCache, SQLiteCache, open_cache

SURE = (TokenLogprob("4", math.log(0.9)),)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def judge() -> Iterator[JudgeServer]:
    with judge_server(refuse_n=False, delay=0.0) as server:
        yield server


def backend(server: JudgeServer) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(model="judge-model", base_url=server.url, api_key="k", retry=RetryPolicy(max_retries=0))


def req(i: int = 0, options: dict | None = None, response: str = "4") -> ScoreRequest:
    opts = TLMOptions(options=options) if options is not None else None
    return ScoreRequest(prompt=f"What is {i}+{4 - i}?", response=response, response_logprobs=SURE, options=opts)


def score(scorer: TLMScorer, request: ScoreRequest):  # type: ignore[no-untyped-def]
    return asyncio.run(scorer.ascore(request))


def test_a_repeated_score_makes_no_judge_call_and_says_it_was_stored(judge: JudgeServer) -> None:
    scorer = TLMScorer("medium", options={"log": ["usage", "explanation"]}, judge=backend(judge), cache=MemoryCache(8))
    first = score(scorer, req())
    calls = len(judge.asked)
    assert first.ok and calls > 0 and "cached" not in first.log
    assert first.log["usage"]["judge_calls"] == calls
    again = score(scorer, req())
    assert len(judge.asked) == calls  # not one more request at the judge
    assert again.trustworthiness_score == first.trustworthiness_score
    assert again.explanation == first.explanation and again.signals == first.signals
    assert again.log["cached"] is True
    assert again.log["usage"]["judge_calls"] == 0 and again.log["usage"]["prompt_tokens"] == 0
    assert again.components["llm_calls"] == 0
    assert again.to_dict()["log"]["cached"] is True


def test_another_response_options_or_judge_is_scored_anew(judge: JudgeServer) -> None:
    cache = MemoryCache(64)
    scorer = TLMScorer("low", judge=backend(judge), cache=cache)
    score(scorer, req())
    counts = [len(judge.asked)]
    for changed in (req(response="5"), req(1), req(options={"num_self_reflections": 1})):
        assert "cached" not in score(scorer, changed).log
        counts.append(len(judge.asked))
    other_judge = OpenAICompatibleBackend(model="other-model", base_url=judge.url, api_key="k")
    assert "cached" not in score(TLMScorer("low", judge=other_judge, cache=cache), req()).log
    counts.append(len(judge.asked))
    assert all(b > a for a, b in zip(counts, counts[1:], strict=False))
    # options that act around the score do not change what is stored
    before = len(judge.asked)
    assert score(scorer, req(options={"max_timeout": 60, "log": ["usage"]})).log["cached"] is True
    assert len(judge.asked) == before


def test_cache_false_bypasses_it_and_disable_persistence_stores_nothing(judge: JudgeServer) -> None:
    cache = MemoryCache(8)
    scorer = TLMScorer("low", judge=backend(judge), cache=cache)
    score(scorer, req(options={"disable_persistence": True}))
    assert len(cache) == 0
    score(scorer, req())
    assert len(cache) == 1
    before = len(judge.asked)
    result = score(scorer, req(options={"cache": False}))
    assert len(judge.asked) > before and "cached" not in result.log
    before = len(judge.asked)
    score(TLMScorer("low", judge=backend(judge), cache=False), req())
    assert len(judge.asked) > before


def test_failed_and_partial_scores_are_not_cached() -> None:
    cache = MemoryCache(8)
    kinds = frozenset({"word_yes", "word_true", "letter", "scale", "sample", "agreement"})
    with judge_server(refuse_n=False, delay=0.0, fail_kinds=kinds) as failing:
        failed = score(TLMScorer("low", judge=backend(failing), cache=cache), req())
    assert not failed.ok and len(cache) == 0
    with judge_server(refuse_n=False, delay=0.0, fail_kinds=frozenset({"letter"})) as partial:
        result = score(TLMScorer("medium", judge=backend(partial), cache=cache), req())
        assert result.ok and result.warnings  # one reflection failed: the score says so ...
        assert len(cache) == 0  # ... and is not kept
    with judge_server(refuse_n=False, delay=0.0) as healthy:  # the same request, now whole, is stored
        scorer = TLMScorer("medium", judge=backend(healthy), cache=cache)
        assert score(scorer, req()).ok and len(cache) == 1


def test_keys_hold_no_text_and_values_hold_scores(judge: JudgeServer, tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    scorer = TLMScorer("low", options={"log": ["explanation"]}, judge=backend(judge), cache=str(path))
    score(scorer, ScoreRequest(prompt="a secret question xyzzy", response="plugh answer"))
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT key, value FROM scores").fetchall()
    assert len(rows) == 1
    key, value = rows[0]
    assert len(key) == 64 and "xyzzy" not in key and "plugh" not in key
    assert json.loads(value)["trustworthiness_score"] is not None


_CHILD = """
import asyncio, math, sys
from tlm_hooks import ScoreRequest, TLMScorer, TokenLogprob
from tlm_hooks.llm import OpenAICompatibleBackend
judge = OpenAICompatibleBackend(model="judge-model", base_url=sys.argv[1], api_key="k")
scorer = TLMScorer("low", judge=judge, cache=sys.argv[2])
req = ScoreRequest(prompt="What is 0+4?", response="4", response_logprobs=(TokenLogprob("4", math.log(0.9)),))
result = asyncio.run(scorer.ascore(req))
print(result.trustworthiness_score, result.log.get("cached", False))
"""


def test_a_cache_file_is_shared_by_two_processes(judge: JudgeServer, tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", _CHILD, judge.url, path], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outs.append(done.stdout.split())
        if len(outs) == 1:
            first_calls = len(judge.asked)
    assert first_calls > 0 and len(judge.asked) == first_calls  # the second process asked nothing
    assert outs[0] == [outs[1][0], "False"] and outs[1][1] == "True"


def test_tlm_hooks_score_reruns_share_a_cache_file(judge: JudgeServer, tmp_path: Path) -> None:
    rows = [{"prompt": f"What is {i % 3}+1?", "response": str(i % 3 + 1)} for i in range(6)]  # 3 distinct pairs
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cache = tmp_path / "scores.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(out: str, *flags: str) -> list[dict]:
        command = [sys.executable, "-c", "import sys; from tlm_hooks.cli import main; sys.exit(main(sys.argv[1:]))",
                   "score", str(data), "-o", str(tmp_path / out), "--quiet", "--judge", judge.url,
                   "--model", "judge-model", "--quality-preset", "low", "--max-concurrency", "1", *flags]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in (tmp_path / out).read_text().splitlines()]

    first = run("one.jsonl", "--cache", str(cache))
    cached_run = len(judge.asked)
    second = run("two.jsonl", "--cache", str(cache))
    assert len(judge.asked) == cached_run  # the re-run asked the judge nothing
    assert [r["trustworthiness_score"] for r in first] == [r["trustworthiness_score"] for r in second]
    run("three.jsonl", "--no-cache")
    assert len(judge.asked) - cached_run == 2 * cached_run > 0  # 6 rows scored, not 3 distinct pairs


def test_open_cache_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    assert open_cache(False) is None
    assert open_cache(True) is open_cache(None)
    with pytest.raises(ValueError, match="ScoreCache"):
        open_cache(3)
    with pytest.raises(ValueError, match="directory"):
        SQLiteCache(tmp_path)
    with pytest.raises(ValueError, match="max_entries"):
        MemoryCache(0)


def test_memory_cache_keeps_the_most_recently_used() -> None:
    cache = MemoryCache(2)
    cache.put("a", {"trustworthiness_score": 0.1})
    cache.put("b", {"trustworthiness_score": 0.2})
    assert cache.get("a") == {"trustworthiness_score": 0.1}
    cache.put("c", {"trustworthiness_score": 0.3})
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 2
    assert MemoryCache(1) and SQLiteCache(":memory:")  # empty, yet a cache: `cache or default` keeps it


def test_the_same_score_running_concurrently_is_paid_once(judge: JudgeServer) -> None:
    scorer = TLMScorer("low", judge=backend(judge), cache=MemoryCache(8))

    async def both() -> list:  # type: ignore[type-arg]
        return list(await asyncio.gather(*(scorer.ascore(req()) for _ in range(4))))

    results = asyncio.run(both())
    alone = len(judge.asked)
    score(TLMScorer("low", judge=backend(judge), cache=False), req())
    assert len(judge.asked) - alone == alone  # four concurrent copies cost what one score costs
    assert sum(bool(r.log.get("cached")) for r in results) == 3
    assert len({r.trustworthiness_score for r in results}) == 1
