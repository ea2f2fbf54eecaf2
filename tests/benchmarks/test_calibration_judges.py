"""benchmarks/calibration.py's second judge configuration (``<preset>.reviewer``): what it changes
in the judge calls, and that its committed scores are read when this machine has none."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
_spec = importlib.util.spec_from_file_location("tlm_bench_calibration", ROOT / "benchmarks" / "calibration.py")
assert _spec is not None and _spec.loader is not None
calibration = importlib.util.module_from_spec(_spec)
sys.modules["tlm_bench_calibration"] = calibration
_spec.loader.exec_module(calibration)


class Recording:
    name = "local:test"

    def __init__(self) -> None:
        self.calls: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []

    async def acomplete(self, messages: Any, **kwargs: Any) -> list[Any]:
        self.calls.append((list(messages), kwargs))
        return []


def test_reviewer_judge_asks_verdicts_under_its_system_message_and_samples_hotter() -> None:
    inner = Recording()
    judge = calibration.ReviewerJudge(inner)
    verdict = [{"role": "user", "content": "Is the reply correct?"}]
    own_system = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "2+2?"}]
    asyncio.run(judge.acomplete(verdict, temperature=0.0, max_tokens=6, logprobs=True, top_logprobs=10))
    asyncio.run(judge.acomplete(own_system, n=4, temperature=0.7, max_tokens=40))
    # a reflection repeated beyond the distinct prompts runs warm, and is still a verdict
    asyncio.run(judge.acomplete(verdict, temperature=0.7, max_tokens=6, logprobs=True, top_logprobs=10))
    (asked, verdict_kwargs), (sampled, sample_kwargs), (again, again_kwargs) = inner.calls
    assert asked == again == [{"role": "system", "content": calibration.REVIEWER_SYSTEM}, *verdict]
    assert verdict_kwargs["temperature"] == 0.0 and again_kwargs["temperature"] == 0.7
    assert sampled == own_system and sample_kwargs["temperature"] == calibration.REVIEWER_SAMPLE_TEMPERATURE
    assert verdict == [{"role": "user", "content": "Is the reply correct?"}]  # the caller's list untouched
    assert judge.name == "local:test+reviewer"


def test_committed_scores_are_read_and_an_unknown_configuration_is_refused(tmp_path: Path) -> None:
    rows = [{"id": "add1-000"}, {"id": "not-scored"}]
    recs = calibration.scored_rows("medium.reviewer", rows, tmp_path, True, 1)
    assert [r["id"] for r in recs] == ["add1-000"] and recs[0]["components"]["self_reflection"] > 0
    with pytest.raises(SystemExit, match="unknown judge configuration 'critic'"):
        calibration.scored_rows("medium.critic", rows, tmp_path, True, 1)
