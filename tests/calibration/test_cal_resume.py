"""Saved scores: an interrupted calibration resumes, scoring only the rows not saved yet, and a
re-fit reuses every saved row (calibrate(scores_path=...) and `tlm-hooks calibrate`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cal_rows import engine_rows
from cal_scorers import counted, other

from tlm_hooks import Calibration, calibrate
from tlm_hooks.calibration import CalibrationError
from tlm_hooks.cli import main
from tlm_hooks.datasets import ResumeError
from tlm_hooks.scorers.function import FunctionScorer

N = 60  # rows; scored in batches of 16, so a stop at call 40 leaves batches 1-2 (32 rows) saved


@pytest.fixture(autouse=True)
def fresh_counter() -> Iterator[None]:
    counted.reset()
    yield
    counted.reset()


def unscored_rows(n: int = N) -> tuple[list[dict[str, Any]], list[bool]]:
    rows, labels = engine_rows(n)
    table = [{"prompt": f"q{i} c={row['log']['per_component_score']['consistency']}", "response": "x"}
             for i, row in enumerate(rows)]  # fmt: skip
    return table, labels


def saved_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def fitted(profile: Calibration) -> dict[str, Any]:
    """The profile without what says when and how its rows were scored."""
    data = profile.to_dict()
    data["data"] = {k: v for k, v in data["data"].items() if k not in ("fitted_at", "scored_here", "scores_reused")}
    return data


def test_an_interrupted_run_resumes_with_only_the_rest_and_fits_the_same_profile(tmp_path: Path) -> None:
    rows, labels = unscored_rows()
    scores = tmp_path / "p.scores.jsonl"
    whole = calibrate(rows, labels, scorer=FunctionScorer(counted))  # the uninterrupted run, nothing saved
    assert len(counted.calls) == N

    counted.reset(stop_at=40)
    with pytest.raises(KeyboardInterrupt):
        calibrate(rows, labels, scorer=FunctionScorer(counted), scores_path=scores)
    header, *kept = saved_lines(scores)
    assert header["scorer"]["scorer"] == "FunctionScorer(cal_scorers.Counted)"
    assert [line["row"] for line in kept] == [f"row {i}" for i in range(32)]  # the two finished batches

    counted.reset()
    resumed = calibrate(rows, labels, scorer=FunctionScorer(counted), scores_path=scores)
    assert sorted(counted.calls) == sorted(row["prompt"] for row in rows[32:])  # only the rest, once each
    assert resumed.data["scored_here"] == N - 32 and resumed.data["scores_reused"] == 32
    assert fitted(resumed) == fitted(whole)
    assert len(saved_lines(scores)) == 1 + N  # the file is kept, now with every row


def test_a_judge_outage_keeps_the_rows_scored_before_it(tmp_path: Path) -> None:
    rows, labels = unscored_rows()
    scores = tmp_path / "scores.jsonl"
    counted.reset(stop_at=21, stop=RuntimeError)  # every call from the 21st fails
    with pytest.raises(CalibrationError) as caught:
        calibrate(rows, labels, scorer=FunctionScorer(counted), scores_path=scores)
    assert "failed to score" in str(caught.value) and f"saved in {scores}: rerun" in str(caught.value)
    saved = len(saved_lines(scores)) - 1
    assert saved == 20

    counted.reset()
    profile = calibrate(rows, labels, scorer=FunctionScorer(counted), scores_path=scores)
    assert len(counted.calls) == N - saved
    assert profile.data["scores_reused"] == saved


def test_a_refit_needs_no_scorer_and_a_changed_row_is_scored_again(tmp_path: Path) -> None:
    rows, labels = unscored_rows()
    scores = tmp_path / "scores.jsonl"
    first = calibrate(rows, labels, scorer=FunctionScorer(counted), scores_path=scores)

    # relabelled, no scorer at all: every score is read back, and the file's scorer is what the profile is valid for
    relabelled = [not y if i % 7 == 0 else y for i, y in enumerate(labels)]
    refit = calibrate(rows, relabelled, scores_path=scores)
    assert refit.data["scores_reused"] == N and refit.data["scored_here"] == 0
    assert refit.valid_for.scorer == first.valid_for.scorer == "FunctionScorer(cal_scorers.Counted)"
    assert refit.data["acceptable"] != first.data["acceptable"]

    changed = [dict(row) for row in rows]
    changed[5]["response"] = "another answer"
    with pytest.raises(CalibrationError, match=rf"1 row\(s\) have no scores \(nor saved in {scores}\): row 5"):
        calibrate(changed, labels, scores_path=scores)
    counted.reset()
    calibrate(changed, labels, scorer=FunctionScorer(counted), scores_path=scores)
    assert counted.calls == [rows[5]["prompt"]]


def test_saved_scores_of_another_scorer_are_refused_naming_both(tmp_path: Path) -> None:
    rows, labels = unscored_rows()
    scores = tmp_path / "scores.jsonl"
    calibrate(rows, labels, scorer=FunctionScorer(counted), scores_path=scores)
    before = scores.read_bytes()
    with pytest.raises(ResumeError) as caught:
        calibrate(rows, labels, scorer=FunctionScorer(other), scores_path=scores)
    message = str(caught.value)
    assert "FunctionScorer(cal_scorers.Counted)" in message and "FunctionScorer(cal_scorers.other)" in message
    assert "--restart" in message and "resume=False" in message
    assert scores.read_bytes() == before

    profile = calibrate(rows, labels, scorer=FunctionScorer(other), scores_path=scores, resume=False)
    assert profile.data["scored_here"] == N
    assert saved_lines(scores)[0]["scorer"]["scorer"] == "FunctionScorer(cal_scorers.other)"


def test_a_file_that_is_not_a_scores_file_is_left_alone(tmp_path: Path) -> None:
    rows, labels = unscored_rows()
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(ResumeError, match="is not a tlm-hooks calibration scores file"):
        calibrate(rows, labels, scorer=FunctionScorer(counted), scores_path=notes)
    assert notes.read_text() == "my notes\n" and counted.calls == []


# -- the command line ------------------------------------------------------------------------------


def labelled_csv(path: Path) -> Path:
    rows, labels = unscored_rows()
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["prompt", "response", "label"])
        writer.writeheader()
        writer.writerows({**row, "label": int(y)} for row, y in zip(rows, labels, strict=True))
    return path


def calibrate_cli(source: Path, *extra: str) -> int:
    return main(["calibrate", str(source), "-o", str(source.parent / "p.json"), "--scorer", "cal_scorers:counted",
                 "--no-plots", "--quiet", *extra])  # fmt: skip


@pytest.fixture
def cli_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(Path(__file__).parent)  # --scorer MODULE:NAME imports from the current directory
    return labelled_csv(tmp_path / "labelled.csv")


def test_cli_interrupted_then_rerun_scores_only_the_rest(cli_source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = cli_source.parent / "p.json.scores.jsonl"
    counted.reset(stop_at=40)
    assert calibrate_cli(cli_source) == 130
    err = capsys.readouterr().err
    assert f"the rows scored so far are saved in {scores}: rerun the same command" in err
    assert not (cli_source.parent / "p.json").exists()
    assert len(saved_lines(scores)) == 1 + 32

    counted.reset()
    assert calibrate_cli(cli_source) == 0
    out = capsys.readouterr().out
    assert len(counted.calls) == N - 32
    assert f"{N - 32} scored now, 32 reused from saved scores" in out and f"scores  -> {scores}" in out
    assert [line["row"] for line in saved_lines(scores)[1:]] == [f"line {i}" for i in range(2, N + 2)]

    counted.reset()  # a re-fit with other options: no scorer call
    assert calibrate_cli(cli_source, "--no-evidence") == 0
    assert counted.calls == [] and f"{N} reused from saved scores" in capsys.readouterr().out


def test_cli_restart_scores_every_row_again(cli_source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = cli_source.parent / "mine.jsonl"
    assert calibrate_cli(cli_source, "--scores", str(scores)) == 0
    counted.reset()
    assert calibrate_cli(cli_source, "--scores", str(scores), "--restart") == 0
    assert len(counted.calls) == N and len(saved_lines(scores)) == 1 + N
    assert "reused" not in capsys.readouterr().out


def test_cli_a_half_written_last_line_is_redone(cli_source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scores = cli_source.parent / "p.json.scores.jsonl"
    assert calibrate_cli(cli_source) == 0
    text = scores.read_bytes()
    scores.write_bytes(text[: text.rstrip(b"\n").rfind(b"\n") + 30])  # the last row, cut 29 bytes in
    counted.reset()
    assert calibrate_cli(cli_source) == 0
    assert len(counted.calls) == 1 and counted.calls[0].startswith(f"q{N - 1} ")
    assert scores.read_bytes() == text  # cut, then the same row written again
    assert f"1 scored now, {N - 1} reused" in capsys.readouterr().out


def test_cli_refuses_another_scorer_naming_both(cli_source: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert calibrate_cli(cli_source) == 0
    capsys.readouterr()
    code = main(["calibrate", str(cli_source), "-o", str(cli_source.parent / "p.json"), "--scorer",
                 "cal_scorers:other", "--no-plots", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "FunctionScorer(cal_scorers.Counted)" in err and "FunctionScorer(cal_scorers.other)" in err
    assert "--restart" in err
