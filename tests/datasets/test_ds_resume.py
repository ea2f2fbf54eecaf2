"""Resuming an interrupted run: at a window boundary, after a torn last record, after input edits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ds_helpers import Recorder, read_csv, read_jsonl, rows, score, write_csv, write_jsonl

from tlm_hooks.datasets import BadRowError, ResumeError, score_file

RESULTS = ("trustworthiness_score", "explanation", "scoring_error")


def _reference(tmp_path: Path, source: Path, **kwargs: object) -> bytes:
    """The output of an uninterrupted run of the same input."""
    out = tmp_path / ("reference" + source.suffix)
    score_file(source, scorer=score, out=out, **kwargs)  # type: ignore[arg-type]
    return out.read_bytes()


def test_interrupted_at_a_window_boundary_resumes_without_rescoring(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", rows(57))
    first = Recorder(interrupt_at="answer 25")
    with pytest.raises(KeyboardInterrupt):
        score_file(source, scorer=first, batch_size=10)
    partial = tmp_path / "d.scored.jsonl.partial"
    assert [r["id"] for r in read_jsonl(partial)] == list(range(20))  # two whole windows saved
    assert not (tmp_path / "d.scored.jsonl").exists()

    second = Recorder()
    summary = score_file(source, scorer=second, batch_size=10)
    assert second.calls == [f"answer {i}" for i in range(20, 57)]  # rows 0-19 were not scored again
    assert summary.rows == 57 and summary.resumed == 20 and summary.scored == 57
    assert (tmp_path / "d.scored.jsonl").read_bytes() == _reference(tmp_path, source, batch_size=10)
    assert not partial.exists()


def test_a_torn_last_jsonl_line_is_cut_and_redone(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", rows(30))
    with pytest.raises(KeyboardInterrupt):
        score_file(source, scorer=Recorder(interrupt_at="answer 12"), batch_size=5)
    partial = tmp_path / "d.scored.jsonl.partial"
    reference = _reference(tmp_path, source).splitlines(keepends=True)
    # a killed process had written rows 10 and 11 whole and row 12 half
    with open(partial, "ab") as file:
        file.write(reference[10] + reference[11] + reference[12][:25])
    second = Recorder()
    summary = score_file(source, scorer=second, batch_size=5)
    assert second.calls == [f"answer {i}" for i in range(12, 30)]  # whole rows kept, the torn one redone
    assert summary.resumed == 12
    assert (tmp_path / "d.scored.jsonl").read_bytes() == b"".join(reference)


def test_a_csv_record_torn_inside_a_quoted_field_is_redone(tmp_path: Path) -> None:
    body = [[f"question {i}?", f"line one\nline two of answer {i}"] for i in range(9)]
    source = write_csv(tmp_path / "d.csv", ["prompt", "response"], body)
    reference = _reference(tmp_path, source)
    with pytest.raises(KeyboardInterrupt):
        score_file(source, scorer=Recorder(interrupt_at="line one\nline two of answer 6"), batch_size=3)
    partial = tmp_path / "d.scored.csv.partial"
    assert len(read_csv(partial)) == 6
    whole = reference.split(b"question 6?")[0]
    torn = reference[len(whole) : reference.index(b"line two of answer 6")]  # ends inside the quotes
    assert partial.read_bytes() == whole
    with open(partial, "ab") as file:
        file.write(torn)
    second = Recorder()
    score_file(source, scorer=second, batch_size=3)
    assert second.calls == [f"line one\nline two of answer {i}" for i in (6, 7, 8)]
    assert (tmp_path / "d.scored.csv").read_bytes() == reference


def test_an_edited_row_is_rescored_from_where_the_input_changed(tmp_path: Path) -> None:
    data = rows(20)
    source = write_jsonl(tmp_path / "d.jsonl", data)
    with pytest.raises(KeyboardInterrupt):
        score_file(source, scorer=Recorder(interrupt_at="answer 15"), batch_size=5)
    data[7]["response"] = "a corrected answer 7"
    write_jsonl(source, data)
    second = Recorder()
    score_file(source, scorer=second, batch_size=5)
    assert second.calls[0] == "a corrected answer 7" and "answer 6" not in second.calls
    assert len(second.calls) == 13  # rows 7..19
    assert (tmp_path / "d.scored.jsonl").read_bytes() == _reference(tmp_path, source)


def test_fixing_the_row_that_stopped_the_run_continues_after_the_saved_rows(tmp_path: Path) -> None:
    data: list = [*rows(6), {"id": 6, "prompt": "q", "response": None}, *rows(5, start=7)]
    source = write_jsonl(tmp_path / "d.jsonl", data)
    with pytest.raises(BadRowError, match="line 7"):
        score_file(source, scorer=Recorder(), batch_size=4, on_bad_row="stop")
    data[6]["response"] = "fixed"
    write_jsonl(source, data)
    second = Recorder()
    summary = score_file(source, scorer=second, batch_size=4, on_bad_row="stop")
    assert second.calls == ["fixed", *(f"answer {i}" for i in range(7, 12))]
    assert summary.resumed == 6 and summary.bad_rows == 0
    assert [r["id"] for r in read_jsonl(tmp_path / "d.scored.jsonl")] == list(range(12))


def test_skipped_bad_rows_are_kept_on_resume_and_counted_once(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", [*rows(4), "{bad", *rows(8, start=4)])
    with pytest.raises(KeyboardInterrupt):
        score_file(source, scorer=Recorder(interrupt_at="answer 9"), batch_size=3)
    second = Recorder()
    summary = score_file(source, scorer=second, batch_size=3)
    assert summary.bad_rows == 1 and summary.bad_lines == (5,) and summary.rows == 13 and summary.scored == 12
    assert second.calls == [f"answer {i}" for i in range(8, 12)]
    assert (tmp_path / "d.scored.jsonl").read_bytes() == _reference(tmp_path, source)


def test_resume_refuses_other_settings_and_restart_starts_over(tmp_path: Path) -> None:
    data = [{**row, "system": "Be brief."} for row in rows(10)]
    source = write_jsonl(tmp_path / "d.jsonl", data)
    with pytest.raises(KeyboardInterrupt):
        score_file(source, scorer=Recorder(interrupt_at="answer 6"), batch_size=3)
    with pytest.raises(ResumeError, match=r"columns: was .*'system': None.*now .*'system': 'system'.*--restart"):
        score_file(source, scorer=score, system_col="system")
    state = json.loads((tmp_path / "d.scored.jsonl.partial.json").read_text())
    assert state["settings"]["scorer"].startswith("FunctionScorer(")
    again = Recorder()
    summary = score_file(source, scorer=again, system_col="system", resume=False)
    assert len(again.calls) == 10 and summary.resumed == 0


def test_a_partial_output_without_its_settings_is_not_guessed_at(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", rows(6))
    with pytest.raises(KeyboardInterrupt):
        score_file(source, scorer=Recorder(interrupt_at="answer 4"), batch_size=2)
    (tmp_path / "d.scored.jsonl.partial.json").unlink()
    with pytest.raises(ResumeError, match="settings file .* is missing"):
        score_file(source, scorer=score)


def test_an_input_that_shrank_cuts_the_surplus_output(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", rows(12))
    with pytest.raises(KeyboardInterrupt):
        score_file(source, scorer=Recorder(interrupt_at="answer 10"), batch_size=5)
    write_jsonl(source, rows(7))
    second = Recorder()
    summary = score_file(source, scorer=second, batch_size=5)
    assert second.calls == [] and summary.rows == 7 and summary.resumed == 7
    assert [r["id"] for r in read_jsonl(tmp_path / "d.scored.jsonl")] == list(range(7))
    assert all(set(RESULTS) <= set(r) for r in read_jsonl(tmp_path / "d.scored.jsonl"))
