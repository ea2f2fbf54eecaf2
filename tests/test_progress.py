"""The one progress display: plain lines in a log, per-row advance, one switch to turn it off."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tlm_hooks import TLM, BaseScorer, FunctionScorer, ScoreRequest, TrustResult
from tlm_hooks.datasets import score_file
from tlm_hooks.progress import ENV_VAR, Progress, progress

ROOT = Path(__file__).resolve().parents[1]


class InOrder(BaseScorer):
    """Finishes rows one at a time, in input order, and records how far the display was each time."""

    max_concurrency = 4

    def __init__(self, seen: list[int] | None = None, bar: Progress | None = None) -> None:
        self.turn = 0
        self.seen = seen
        self.bar = bar

    async def ascore(self, request: ScoreRequest) -> TrustResult:
        mine = int(request.response)
        while self.turn != mine:  # rows of one window finish one after another
            await asyncio.sleep(0.001)
        if self.seen is not None and self.bar is not None:
            self.seen.append(self.bar.done)
        self.turn += 1
        return TrustResult(trustworthiness_score=0.5)


def _rows(path: Path, n: int) -> Path:
    lp = [{"token": "t", "logprob": -0.1}]
    path.write_text("".join(json.dumps({"prompt": f"q{i}", "response": str(i), "lp": lp}) + "\n" for i in range(n)))
    return path


def test_score_file_advances_per_row_inside_one_window(tmp_path: Path) -> None:
    # 12 rows in one 32-row window: the old display said 0/12 until the whole window was done
    stream = io.StringIO()
    bar = Progress("scoring d.jsonl", stream=stream, every=0.0)
    seen: list[int] = []
    score_file(_rows(tmp_path / "d.jsonl", 12), scorer=InOrder(seen, bar), batch_size=32, progress=bar)
    assert seen == list(range(12))  # each row saw the rows before it already counted
    lines = stream.getvalue().splitlines()
    assert [line.split(":")[1].split()[0] for line in lines][:13] == [f"{i}/12" for i in range(13)]
    assert "\r" not in stream.getvalue()


def test_a_log_gets_a_line_each_10_percent_or_10_seconds_not_each_row() -> None:
    now = [0.0]
    stream = io.StringIO()
    bar = Progress("job", 200, stream=stream, clock=lambda: now[0])
    bar.start()
    for _ in range(200):
        bar.advance(1)
    now[0] = 30.0
    bar.finish()
    lines = stream.getvalue().splitlines()
    done = [int(re.search(r": (\d+)/200", line).group(1)) for line in lines]  # type: ignore[union-attr]
    assert done == list(range(0, 201, 20))  # start, each 10 %, no repeat at the end
    bar = Progress("slow", 1000, stream=(slow := io.StringIO()), clock=lambda: now[0])
    bar.start()
    bar.advance(1)  # under 10 % and under 10 s: no line
    now[0] += 10.0
    bar.advance(1)  # 10 s later: a line
    assert [line.split(":")[1].split()[0] for line in slow.getvalue().splitlines()] == ["0/1,000", "2/1,000"]


def test_the_environment_switch_turns_every_display_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_VAR, "0")
    stream = io.StringIO()
    with progress(5, "job", show=True, stream=stream) as bar:
        bar.advance(5)
        bar.note("a note")
    assert stream.getvalue() == "" and bar.done == 5
    score_file(_rows(tmp_path / "d.jsonl", 3), scorer=lambda r: 0.5, progress=True)
    TLM(scorer=FunctionScorer(lambda r: 0.5), show_progress=True).get_trustworthiness_score(["a", "b"], ["c", "d"])
    assert capsys.readouterr().err == ""


def test_show_none_is_a_bar_on_a_terminal_and_nothing_in_a_log() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    log, tty = io.StringIO(), Terminal()
    for stream in (log, tty):
        with progress(3, "TLM", show=None, stream=stream) as bar:
            bar.advance(3)
    assert log.getvalue() == ""
    assert "TLM: 100%" in tty.getvalue() and "3/3" in tty.getvalue()


def test_tlm_lists_advance_per_item_in_a_log(capsys: pytest.CaptureFixture[str]) -> None:
    tlm = TLM(scorer=FunctionScorer(lambda r: 0.5), verbose=True)
    tlm.get_trustworthiness_score([f"q{i}" for i in range(4)], ["a"] * 4)
    err = capsys.readouterr().err
    assert re.findall(r"TLM: (\d)/4 items", err) == ["0", "1", "2", "3", "4"]


def test_batches_nested_inside_a_row_are_not_counted_as_rows() -> None:
    inner = FunctionScorer(lambda r: 0.5)

    class Outer(BaseScorer):
        async def ascore(self, request: ScoreRequest) -> TrustResult:
            await inner.ascore_batch([request, request, request])  # three items of its own
            return TrustResult(trustworthiness_score=0.5)

    async def run() -> int:
        with progress(2, "job", show=False) as bar:
            await Outer().ascore_batch([ScoreRequest(response="a", prompt="q"), ScoreRequest(response="b", prompt="q")])
        return bar.done

    assert asyncio.run(run()) == 2


def test_cli_score_is_quiet_with_q_and_shows_lines_in_a_log(tmp_path: Path) -> None:
    source = _rows(tmp_path / "d.jsonl", 3)
    command = [sys.executable, "-m", "tlm_hooks.cli", "score", str(source), "-s", "logprob", "--logprobs-col", "lp"]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    shown = subprocess.run([*command, "-o", str(tmp_path / "a.jsonl")], capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "scoring d.jsonl: 0/3 rows" in shown.stderr and "3/3 rows (100%)" in shown.stderr
    quiet = subprocess.run([*command, "-q", "-o", str(tmp_path / "b.jsonl")], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert "rows (" not in quiet.stderr and (tmp_path / "b.jsonl").exists()
