"""`tlm-hooks score`: arguments, exit codes, and real runs killed midway (SIGKILL, SIGINT) and rerun."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ds_helpers import CALLS_ENV, DELAY_ENV, expected_score, read_jsonl, rows, write_jsonl
from fake_openai import FakeOpenAI, Reply

from tlm_hooks.cli import main as cli_main
from tlm_hooks.datasets.command import build_parser

HERE = Path(__file__).parent
SCORER = "ds_helpers:score"


def _score(*argv: str) -> int:
    return cli_main(["score", *argv])


def test_help_lists_scorers_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for needle in ("--prompt-col", "--messages-col", "--on-bad-row", "--restart", "MODULE:NAME", "exit status", "130"):
        assert needle in text
    assert cli_main(["--help"]) == 0 and "score" in capsys.readouterr().out


def test_scores_a_file_and_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    source = write_jsonl(tmp_path / "d.jsonl", [*rows(40), {"prompt": "q", "response": ""}])
    assert _score(str(source), "--scorer", SCORER, "--quiet", "--lowest", "3") == 0
    out = capsys.readouterr().out
    assert "Scored 41 rows of d.jsonl" in out and "3 lowest-scoring rows" in out and "bad rows" in out
    assert f"output: {tmp_path / 'd.scored.jsonl'}" in out
    written = read_jsonl(tmp_path / "d.scored.jsonl")
    assert [r["trustworthiness_score"] for r in written[:40]] == [expected_score(f"answer {i}") for i in range(40)]
    assert written[40]["scoring_error"] == "bad row (line 41): 'response' is empty"


def test_column_and_argument_errors_exit_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    source = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}])
    assert _score(str(source), "--scorer", SCORER) == 2
    assert "its columns are: 'question', 'answer'" in capsys.readouterr().err
    assert _score(str(tmp_path / "d.txt"), "--scorer", SCORER) == 2
    assert "allowed .csv, .jsonl" in capsys.readouterr().err
    assert _score(str(source), "--scorer", "nosuchmodule:fn") == 2
    assert "cannot import 'nosuchmodule'" in capsys.readouterr().err
    assert _score(str(source), "--scorer", "magic") == 2
    assert "unknown scorer 'magic': allowed tlm, logprob, cleanlab" in capsys.readouterr().err
    assert _score(str(source), "--scorer", SCORER, "--quality-preset", "low") == 2
    assert "--quality-preset apply to --scorer tlm or cleanlab" in capsys.readouterr().err
    assert _score(str(source), "--scorer", "logprob") == 2
    assert "--logprobs-col" in capsys.readouterr().err
    assert _score(str(source), "--judge", "http://127.0.0.1:9/v1") == 2
    assert "needs --model" in capsys.readouterr().err
    assert _score(str(source), "--judge", str(tmp_path / "missing.gguf")) == 2
    assert "missing.gguf" in capsys.readouterr().err
    monkeypatch.delenv("CLEANLAB_TLM_API_KEY", raising=False)
    assert _score(str(source), "--scorer", "cleanlab") == 2
    assert "CLEANLAB_TLM_API_KEY" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _score(str(source), "--batch-size", "0")
    assert list(tmp_path.iterdir()) == [source]  # nothing was written


def test_stop_on_bad_row_exits_1_and_a_finished_output_needs_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    source = write_jsonl(tmp_path / "d.jsonl", [*rows(3), "[]", *rows(2, start=3)])
    assert _score(str(source), "--scorer", SCORER, "--quiet", "--on-bad-row", "stop") == 1
    err = capsys.readouterr().err
    assert "bad row (line 4): expected a JSON object, got an array" in err and "rerun the same command" in err
    assert _score(str(source), "--scorer", SCORER, "--quiet", "--restart") == 0
    assert _score(str(source), "--scorer", SCORER, "--quiet") == 2
    assert "already exists" in capsys.readouterr().err


def test_histogram_flag_writes_a_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.syspath_prepend(str(HERE))
    source = write_jsonl(tmp_path / "d.jsonl", rows(25))
    assert _score(str(source), "--scorer", SCORER, "--quiet", "--histogram", str(tmp_path / "h.png")) == 0
    assert (tmp_path / "h.png").read_bytes().startswith(b"\x89PNG")


# -- the real command, killed midway -------------------------------------------------------------


def _command(source: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tlm_hooks.cli",
        "score",
        str(source),
        "--scorer",
        SCORER,
        "--batch-size",
        "10",
        *extra,
    ]


def _env(calls: Path, delay: str) -> dict[str, str]:
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, CALLS_ENV: str(calls), DELAY_ENV: delay}


def _complete_rows(partial: Path) -> list[str]:
    """The responses of the complete (newline-terminated, parseable) records of a partial output."""
    done = []
    for raw in partial.read_bytes().split(b"\n")[:-1]:
        try:
            done.append(json.loads(raw)["response"])
        except ValueError:
            break
    return done


def _start_and_wait(
    command: list[str], env: dict[str, str], partial: Path, rows_wanted: int
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Ctrl-C must reach the child's KeyboardInterrupt even if this suite runs with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the run ended before it could be interrupted: {process.communicate()}")
        if partial.exists() and partial.read_bytes().count(b"\n") >= rows_wanted:
            return process
        time.sleep(0.01)
    process.kill()
    raise AssertionError("the run made no progress")


def _calls(path: Path) -> list[tuple[int, str]]:
    return [(int(pid), response) for pid, response in (line.split(" ", 1) for line in path.read_text().splitlines())]


def test_sigkill_midway_then_rerun_scores_every_row_exactly_once(tmp_path: Path) -> None:
    total = 400
    source = write_jsonl(tmp_path / "d.jsonl", rows(total))
    calls = tmp_path / "calls.txt"
    partial = tmp_path / "d.scored.jsonl.partial"
    killed = _start_and_wait(_command(source, "--quiet"), _env(calls, "0.02"), partial, 60)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    saved = _complete_rows(partial)
    assert 60 <= len(saved) < total, len(saved)

    rerun = subprocess.run(_command(source), env=_env(calls, "0"), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"({len(saved):,} kept from an earlier run)" in rerun.stdout

    out = read_jsonl(tmp_path / "d.scored.jsonl")
    assert [r["id"] for r in out] == list(range(total))  # every row once, in input order
    assert all(r["trustworthiness_score"] == expected_score(r["response"]) for r in out)
    second = [response for pid, response in _calls(calls) if pid != killed.pid]
    assert sorted(second) == sorted(set(second))  # the rerun scored no row twice
    assert set(second) == {f"answer {i}" for i in range(total)} - set(saved)  # ...and only the unsaved ones
    first = {response for pid, response in _calls(calls) if pid == killed.pid}
    assert set(saved) <= first  # what was saved had been scored by the killed run
    assert not partial.exists() and not (tmp_path / "d.scored.jsonl.partial.json").exists()


def test_ctrl_c_saves_progress_exits_130_and_rerun_finishes(tmp_path: Path) -> None:
    total = 300
    source = write_jsonl(tmp_path / "d.jsonl", rows(total))
    calls = tmp_path / "calls.txt"
    partial = tmp_path / "d.scored.jsonl.partial"
    interrupted = _start_and_wait(_command(source), _env(calls, "0.02"), partial, 40)
    interrupted.send_signal(signal.SIGINT)
    _, err = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130, err
    assert b"rows are saved in" in err and b"Rerun the same command to continue" in err
    saved = _complete_rows(partial)
    assert partial.read_bytes().endswith(b"\n")  # stopped between records: nothing torn

    rerun = subprocess.run(
        _command(source, "--quiet"), env=_env(calls, "0"), capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    second = [response for pid, response in _calls(calls) if pid != interrupted.pid]
    assert set(second) == {f"answer {i}" for i in range(total)} - set(saved) and len(second) == len(set(second))
    assert [r["id"] for r in read_jsonl(tmp_path / "d.scored.jsonl")] == list(range(total))


def test_url_judge_scores_each_row_with_that_server(
    tmp_path: Path, fake: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.default = Reply(text="Yes.")  # the judge's verdict on every answer
    source = write_jsonl(tmp_path / "d.jsonl", rows(6))
    argv = ["--judge", fake.url, "--model", "judge-1", "--api-key", "k-123", "--quality-preset", "base", "--quiet"]
    assert _score(str(source), *argv) == 0, capsys.readouterr().err
    out = read_jsonl(tmp_path / "d.scored.jsonl")
    assert all(r["scoring_error"] is None and 0.0 <= r["trustworthiness_score"] <= 1.0 for r in out)
    assert all("self-reflection" in r["explanation"] for r in out)
    judged = [" ".join(str(m.get("content")) for m in seen.body["messages"]) for seen in fake.requests]
    assert len(fake.requests) == 6  # base, no logprobs in the rows: one reflection per row
    assert {seen.body["model"] for seen in fake.requests} == {"judge-1"}
    assert {seen.headers["authorization"] for seen in fake.requests} == {"Bearer k-123"}
    for i in range(6):
        assert sum(f"question {i}?" in text and f"answer {i}" in text for text in judged) == 1


def test_unreachable_url_judge_fails_rows_open_with_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", rows(2))
    dead = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    argv = ["--judge", dead, "--model", "m", "--quality-preset", "base", "--quiet", "--max-concurrency", "2"]
    assert _score(str(source), *argv) == 3  # finished, but rows failed to score
    out = read_jsonl(tmp_path / "d.scored.jsonl")
    assert [r["trustworthiness_score"] for r in out] == [None, None]
    assert all(r["scoring_error"].startswith("scoring failed (") for r in out)
    assert re.search(r"failed +2 +100.0%", capsys.readouterr().out)
