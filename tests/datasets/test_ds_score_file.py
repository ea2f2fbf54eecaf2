"""`score_file` end to end with a deterministic scorer: output, order, bad rows, failures, summary."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import pytest
from ds_helpers import Recorder, expected_score, read_csv, read_jsonl, rows, score, write_csv, write_jsonl

from tlm_hooks.datasets import (
    BANDS,
    BadRowError,
    DatasetError,
    MissingColumnsError,
    ResumeError,
    ascore_file,
    format_summary,
    score_file,
)
from tlm_hooks.errors import MissingDependencyError
from tlm_hooks.scorers import BaseScorer
from tlm_hooks.types import ScoreRequest, TrustResult


def test_jsonl_output_keeps_every_column_in_input_order(tmp_path: Path) -> None:
    data = rows(50)
    data[7]["meta"] = {"tags": ["a", "b"], "n": 1.5}
    source = write_jsonl(tmp_path / "data.jsonl", data)
    summary = score_file(source, scorer=score, batch_size=8)
    out = read_jsonl(tmp_path / "data.scored.jsonl")
    assert summary.output_path == tmp_path / "data.scored.jsonl" and summary.rows == summary.scored == 50
    assert [
        {k: v for k, v in r.items() if k not in ("trustworthiness_score", "explanation", "scoring_error")} for r in out
    ] == data
    assert [r["trustworthiness_score"] for r in out] == [expected_score(d["response"]) for d in data]
    assert out[3]["explanation"] == "explained answer 3" and out[3]["scoring_error"] is None
    assert not (tmp_path / "data.scored.jsonl.partial").exists()
    assert not (tmp_path / "data.scored.jsonl.partial.json").exists()


def test_csv_output_is_csv_with_the_result_columns_appended(tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "qa.csv",
        ["question", "human_response", "note"],
        [["What is 2+2?", "4", "x"], ["Multi\nline?", 'yes, "quoted"', ""]],
    )
    score_file(source, prompt_col="question", response_col="human_response", scorer=score, out=tmp_path / "o.csv")
    out = read_csv(tmp_path / "o.csv")
    assert list(out[0]) == [
        "question",
        "human_response",
        "note",
        "trustworthiness_score",
        "explanation",
        "scoring_error",
    ]
    assert out[1]["question"] == "Multi\nline?" and out[1]["human_response"] == 'yes, "quoted"'
    assert float(out[1]["trustworthiness_score"]) == expected_score('yes, "quoted"') and out[1]["scoring_error"] == ""


def test_bad_rows_are_skipped_with_their_line_and_written_with_the_reason(tmp_path: Path) -> None:
    items = [*rows(3), "{oops", {"id": 9, "prompt": "q", "response": None}, *rows(2, start=3)]
    source = write_jsonl(tmp_path / "d.jsonl", items)
    recorder = Recorder()
    summary = score_file(source, scorer=recorder, batch_size=2)
    out = read_jsonl(tmp_path / "d.scored.jsonl")
    assert len(out) == 7 and summary.rows == 7 and summary.bad_rows == 2 and summary.scored == 5
    assert summary.bad_lines == (4, 5)
    assert out[3] == {
        "trustworthiness_score": None,
        "explanation": None,
        "scoring_error": "bad row (line 4): invalid JSON: Expecting property name enclosed in double quotes (column 2)",
    }
    assert out[4]["id"] == 9 and out[4]["scoring_error"] == "bad row (line 5): 'response' is missing (null)"
    assert recorder.calls == ["answer 0", "answer 1", "answer 2", "answer 3", "answer 4"]


def test_stop_on_a_bad_row_saves_the_rows_before_it(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", [*rows(5), {"prompt": "q", "response": 3}, *rows(4, start=5)])
    recorder = Recorder()
    with pytest.raises(BadRowError) as caught:
        score_file(source, scorer=recorder, batch_size=4, on_bad_row="stop")
    assert caught.value.line == 6 and "line 6" in str(caught.value) and "'response' must be text" in str(caught.value)
    assert recorder.calls == [f"answer {i}" for i in range(5)]  # nothing after the bad row was scored
    saved = read_jsonl(tmp_path / "d.scored.jsonl.partial")
    assert [r["id"] for r in saved] == [0, 1, 2, 3, 4]
    assert not (tmp_path / "d.scored.jsonl").exists()


def test_failed_scores_stay_in_the_output_fail_open(tmp_path: Path) -> None:
    data = rows(6)
    data[2]["response"] = "please FAIL here"
    source = write_jsonl(tmp_path / "d.jsonl", data)
    summary = score_file(source, scorer=score)
    out = read_jsonl(tmp_path / "d.scored.jsonl")
    assert len(out) == 6 and out[2]["trustworthiness_score"] is None
    assert out[2]["scoring_error"] == "scoring failed (RuntimeError): cannot score 'please FAIL here'"
    assert summary.failed == 1 and summary.errors["RuntimeError"][0] == 1


def test_a_scorer_that_raises_for_a_whole_batch_fails_those_rows_only(tmp_path: Path) -> None:
    class Flaky(BaseScorer):
        def score(self, request: ScoreRequest) -> TrustResult:
            return TrustResult(0.5)

        async def ascore_batch(self, requests):  # type: ignore[no-untyped-def,override]
            if any(r.response == "answer 5" for r in requests):
                raise ConnectionError("service down")
            return await super().ascore_batch(requests)

    source = write_jsonl(tmp_path / "d.jsonl", rows(12))
    summary = score_file(source, scorer=Flaky(), batch_size=4)
    out = read_jsonl(tmp_path / "d.scored.jsonl")
    assert [r["trustworthiness_score"] is None for r in out] == [False] * 4 + [True] * 4 + [False] * 4
    assert out[4]["scoring_error"] == "scoring failed (ConnectionError): service down"
    assert summary.failed == 4 and summary.scored == 8


def test_summary_bands_mean_and_lowest_rows_match_the_output(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", rows(200))
    summary = score_file(source, scorer=score, lowest=4)
    scores = [r["trustworthiness_score"] for r in read_jsonl(tmp_path / "d.scored.jsonl")]
    expected = {label: 0 for _, label in BANDS}
    for value in scores:
        expected[next(label for bound, label in BANDS if value < bound)] += 1
    assert summary.bands == expected and sum(expected.values()) == 200
    assert all(count > 0 for count in expected.values())  # the data spans every band
    assert summary.mean_score == pytest.approx(sum(scores) / 200)
    lowest = sorted(range(200), key=lambda i: (scores[i], i))[:4]
    assert [row.line for row in summary.lowest] == [i + 1 for i in lowest]
    assert summary.lowest[0].prompt == f"question {lowest[0]}?" and summary.lowest[0].response == f"answer {lowest[0]}"
    assert sum(summary.histogram) == 200
    text = format_summary(summary)
    assert "4 lowest-scoring rows" in text and f"line {lowest[0] + 1}" in text and "d.scored.jsonl" in text


def test_histogram_png_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    source = write_jsonl(tmp_path / "d.jsonl", rows(30))
    summary = score_file(source, scorer=score, histogram=tmp_path / "h.png")
    assert summary.histogram_path == tmp_path / "h.png"
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_matplotlib_is_reported_before_scoring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    recorder = Recorder()
    with pytest.raises(MissingDependencyError, match="matplotlib"):
        score_file(write_jsonl(tmp_path / "d.jsonl", rows(3)), scorer=recorder, histogram=tmp_path / "h.png")
    assert recorder.calls == [] and not (tmp_path / "d.scored.jsonl.partial").exists()


def test_input_errors_come_before_any_scoring(tmp_path: Path) -> None:
    recorder = Recorder()
    source = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(MissingColumnsError, match="'question', 'answer'"):
        score_file(source, scorer=recorder)
    with pytest.raises(DatasetError, match="no such file"):
        score_file(tmp_path / "nope.jsonl", scorer=recorder)
    with pytest.raises(DatasetError, match="is the input file"):
        score_file(source, out=source, prompt_col="question", response_col="answer", scorer=recorder)
    with pytest.raises(DatasetError, match="batch_size must be an integer >= 1"):
        score_file(source, batch_size=0, scorer=recorder)
    with pytest.raises(DatasetError, match="on_bad_row must be one of skip, stop"):
        score_file(source, on_bad_row="ignore", scorer=recorder)  # type: ignore[arg-type]
    assert recorder.calls == [] and list(tmp_path.iterdir()) == [source]


def test_a_finished_output_is_not_overwritten_without_restart(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", rows(3))
    score_file(source, scorer=score)
    with pytest.raises(ResumeError, match="already exists"):
        score_file(source, scorer=score)
    write_jsonl(source, rows(4))
    assert score_file(source, scorer=score, resume=False).rows == 4
    assert len(read_jsonl(tmp_path / "d.scored.jsonl")) == 4


def test_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", rows(5))

    async def from_async_code() -> tuple[int, int]:
        inside = score_file(source, scorer=score, out=tmp_path / "a.jsonl")  # sync API in a loop
        awaited = await ascore_file(source, scorer=score, out=tmp_path / "b.jsonl")
        return inside.scored, awaited.scored

    assert asyncio.run(from_async_code()) == (5, 5)
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()


def test_progress_reports_rows_of_the_total(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", [*rows(20), "nope"])
    score_file(source, scorer=score, progress=True)
    err = capsys.readouterr().err
    assert "scoring d.jsonl: 0/21 rows (0%)" in err and "21/21 rows (100%)" in err
    assert "skipped bad row (line 21): invalid JSON" in err and "1 bad rows" in err
    assert json.loads((tmp_path / "d.scored.jsonl").read_text().splitlines()[-1])["scoring_error"].startswith("bad row")


def test_logprob_scorer_reads_the_rows_own_token_logprobs(tmp_path: Path) -> None:
    import math

    from tlm_hooks.scorers import LogprobScorer

    logprobs = [[-0.1, -0.2], [-2.0, -0.5, -1.5]]
    data = [
        {"prompt": f"q{i}", "response": f"a{i}", "lp": [{"token": f"t{j}", "logprob": v} for j, v in enumerate(lps)]}
        for i, lps in enumerate(logprobs)
    ]
    source = write_jsonl(tmp_path / "d.jsonl", data)
    score_file(source, scorer=LogprobScorer(), logprobs_col="lp")
    out = read_jsonl(tmp_path / "d.scored.jsonl")
    expected = [math.exp(sum(lps) / len(lps)) for lps in logprobs]
    assert [r["trustworthiness_score"] for r in out] == pytest.approx(expected)


def test_output_name_must_not_claim_another_format(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "d.jsonl", rows(2))
    with pytest.raises(DatasetError, match="written as jsonl, like the input"):
        score_file(source, scorer=score, out=tmp_path / "d.csv")
    assert score_file(source, scorer=score, out=tmp_path / "d.out").rows == 2  # an unknown suffix is fine
