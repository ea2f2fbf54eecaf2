"""`TLM`: dict shapes, list order, per-item errors, async twins, sync inside a running loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.conftest import FakeJudge
from tlm_hooks import TLM, FunctionScorer, ScoreRequest, TLMScorer, TrustScoringError


def make(preset: str = "low", judge: FakeJudge | None = None, **options: Any) -> TLM:
    judge = judge or FakeJudge()
    return TLM(preset, options=options or None, scorer=TLMScorer(preset, options=options or None, judge=judge))


def test_prompt_single_shape() -> None:
    out = make().prompt("What is 2+2?")
    assert set(out) == {"response", "trustworthiness_score"}
    assert out["response"] == "4" and 0.0 <= out["trustworthiness_score"] <= 1.0


def test_log_is_returned_when_asked() -> None:
    out = make(log=["explanation", "per_component_score"]).prompt("What is 2+2?")
    assert set(out) == {"response", "trustworthiness_score", "log"}
    assert isinstance(out["log"]["explanation"], str)
    assert {"self_reflection", "consistency", "llm_calls"} <= set(out["log"]["per_component_score"])


def test_get_trustworthiness_score_shapes_and_order() -> None:
    judge = FakeJudge(verdict_for=lambda text: "bad" if "17" in text else "good", samples=("4",))
    tlm = make(judge=judge)
    single = tlm.get_trustworthiness_score("What is 2+2?", "4")
    assert set(single) == {"trustworthiness_score"}
    outs = tlm.get_trustworthiness_score(["What is 2+2?"] * 3, ["4", "17", "4"])
    assert [set(o) for o in outs] == [{"trustworthiness_score"}] * 3
    assert outs[1]["trustworthiness_score"] < outs[0]["trustworthiness_score"] == outs[2]["trustworthiness_score"]


def test_list_prompt_keeps_order_and_isolates_errors() -> None:
    judge = FakeJudge(fail_if="BROKEN")
    outs = make("low", judge=judge).prompt(["What is 2+2?", "BROKEN", "What is 3+3?"])
    assert "error" in outs[1] and outs[1]["trustworthiness_score"] is None
    assert outs[0]["response"] == "4" and "error" not in outs[0] and "error" not in outs[2]


def test_single_failure_raises() -> None:
    with pytest.raises(TrustScoringError):
        make(judge=FakeJudge(fail_if="2+2")).get_trustworthiness_score("What is 2+2?", "4")


def test_mismatched_lists_are_rejected() -> None:
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        make().get_trustworthiness_score(["a", "b"], ["x"])
    with pytest.raises(TypeError):
        make().get_trustworthiness_score("a", ["x"])


async def test_async_twins() -> None:
    tlm = make()
    outs = await tlm.prompt_async(["What is 2+2?", "What is 1+1?"])
    assert len(outs) == 2 and all("response" in o for o in outs)
    score = await tlm.get_trustworthiness_score_async("What is 2+2?", "4")
    assert score["trustworthiness_score"] is not None


async def test_sync_methods_inside_a_running_loop() -> None:
    asyncio.get_running_loop()  # we are in one
    assert make().get_trustworthiness_score("What is 2+2?", "4")["trustworthiness_score"] is not None
    assert make().prompt(["What is 2+2?"])[0]["response"] == "4"


def test_any_scorer_works_and_gets_the_options() -> None:
    seen: list[ScoreRequest] = []

    def fn(request: ScoreRequest) -> float:
        seen.append(request)
        return 0.25

    tlm = TLM("high", options={"log": ["explanation"]}, scorer=FunctionScorer(fn))
    out = tlm.get_trustworthiness_score("q", "a")
    assert out == {"trustworthiness_score": 0.25, "log": {}}
    assert seen[0].options.quality_preset == "high" and seen[0].prompt == "q"


def test_progress_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    tlm = make()
    tlm.show_progress = True
    tlm.get_trustworthiness_score(["q1", "q2", "q3"], ["4", "4", "4"])
    captured = capsys.readouterr()
    assert "3/3" in captured.err and captured.out == ""
