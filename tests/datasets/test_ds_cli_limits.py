"""`tlm-hooks score`: `-o`, `--max-concurrency` with a MODULE:NAME scorer, and how many rows a
killed run costs (rows scored twice)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
from ds_helpers import CALLS_ENV, KILL_AT_ENV, expected_score, read_jsonl, rows, write_jsonl

from tlm_hooks.cli import main as cli_main
from tlm_hooks.scorers import BaseScorer
from tlm_hooks.types import ScoreRequest, TrustResult

HERE = Path(__file__).parent


def _score(*argv: str) -> int:
    return cli_main(["score", *argv])


def test_short_o_names_the_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    source = write_jsonl(tmp_path / "d.jsonl", rows(3))
    out = tmp_path / "elsewhere.jsonl"
    assert _score(str(source), "-o", str(out), "--scorer", "ds_helpers:score", "--quiet") == 0
    assert [r["trustworthiness_score"] for r in read_jsonl(out)] == [expected_score(f"answer {i}") for i in range(3)]
    assert not (tmp_path / "d.scored.jsonl").exists()


class Peak:
    """Counts how many scores are in flight at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def run(self) -> float:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(0.03)
        self.now -= 1
        return 0.5


class Sleepy(BaseScorer):
    def __init__(self) -> None:
        self.seen = Peak()

    async def ascore(self, request: ScoreRequest) -> TrustResult:
        return TrustResult(await self.seen.run())


class OwnBatches(Sleepy):
    async def ascore_batch(self, requests: object) -> list[TrustResult]:  # type: ignore[override]
        return [TrustResult(0.5) for _ in requests]  # type: ignore[attr-defined]


@pytest.fixture
def scorers(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("concurrency_scorers_for_test")
    peak = Peak()

    async def fn(request: ScoreRequest) -> float:
        return await peak.run()

    module.fn = fn  # type: ignore[attr-defined]
    module.fn_peak = peak  # type: ignore[attr-defined]
    module.instance = Sleepy()  # type: ignore[attr-defined]
    module.own_batches = OwnBatches()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


@pytest.mark.parametrize("name", ["fn", "instance"])
def test_max_concurrency_applies_to_a_module_scorer(tmp_path: Path, scorers: types.ModuleType, name: str) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", rows(12))
    spec = f"{scorers.__name__}:{name}"
    assert _score(str(source), "--scorer", spec, "--max-concurrency", "3", "--quiet") == 0
    seen = scorers.fn_peak if name == "fn" else scorers.instance.seen
    assert seen.peak == 3
    if name == "instance":
        assert scorers.instance.max_concurrency == 8  # the module's own object is not changed


def test_max_concurrency_is_refused_for_a_scorer_with_its_own_batches(
    tmp_path: Path, scorers: types.ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", rows(2))
    spec = f"{scorers.__name__}:own_batches"
    assert _score(str(source), "--scorer", spec, "--max-concurrency", "2", "--quiet") == 2
    assert "--max-concurrency cannot be applied to --scorer" in capsys.readouterr().err
    assert not (tmp_path / "d.scored.jsonl").exists()
    assert _score(str(source), "--scorer", spec, "--quiet") == 0  # without the flag: the scorer's own limit


def test_a_killed_run_rescores_only_the_unsaved_rows_of_its_last_batch(tmp_path: Path) -> None:
    """SIGKILL at row 25 with batches of 10, one row at a time: rows 20-24 were scored but their
    batch was never written, so the rerun scores exactly those 5 again (the documented bound is
    one batch); rows 0-19 are kept."""
    total, batch = 50, 10
    source = write_jsonl(tmp_path / "d.jsonl", rows(total))
    calls = tmp_path / "calls.txt"
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, CALLS_ENV: str(calls)}
    command = [
        sys.executable, "-m", "tlm_hooks.cli", "score", str(source), "--scorer", "ds_helpers:score",
        "--batch-size", str(batch), "--max-concurrency", "1", "--quiet",
    ]  # fmt: skip
    killed = subprocess.run(command, env={**env, KILL_AT_ENV: "answer 25"}, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    scored = [line.split(" ", 1)[1] for line in calls.read_text().splitlines()]
    twice = sorted({r for r in scored if scored.count(r) > 1}, key=lambda r: int(r.split()[1]))
    assert twice == [f"answer {i}" for i in range(20, 25)]
    assert len(twice) <= batch
    assert [r["id"] for r in read_jsonl(tmp_path / "d.scored.jsonl")] == list(range(total))
