"""The summary's bands, lowest rows and failure counts; the progress line's rate and ETA."""

from __future__ import annotations

import io

from tlm_hooks.datasets.progress import Progress
from tlm_hooks.datasets.summary import Tally, format_summary
from tlm_hooks.datasets.writer import Outcome


def test_band_edges_belong_to_the_upper_band() -> None:
    tally = Tally()
    for value in (0.0, 0.29999, 0.3, 0.5, 0.69, 0.7, 0.9, 1.0):
        tally.add(1, "line 1", Outcome(value))
    assert tally.bands == {"< 0.3": 2, "0.3-0.5": 1, "0.5-0.7": 2, "0.7-0.9": 1, ">= 0.9": 2}
    assert (tally.histogram[0], tally.histogram[5], tally.histogram[6], tally.histogram[18], tally.histogram[19]) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert sum(tally.histogram) == 8


def test_lowest_rows_are_the_n_lowest_earliest_first_on_ties() -> None:
    tally = Tally(keep_lowest=3)
    scores = [0.9, 0.2, 0.5, 0.2, 0.1, 0.8, 0.2]
    for line, value in enumerate(scores, 1):
        tally.add(line, f"line {line}", Outcome(value), f"prompt {line}", f"response {line}")
    summary = tally.summary()
    assert [(r.line, r.score) for r in summary.lowest] == [(5, 0.1), (2, 0.2), (4, 0.2)]
    assert summary.lowest[0].prompt == "prompt 5"


def test_failures_are_grouped_by_kind_and_bad_rows_by_line() -> None:
    tally = Tally()
    tally.add(1, "line 1", Outcome(None, None, "scoring failed (TimeoutError): judge took too long"))
    tally.add(2, "line 2", Outcome(None, None, "scoring failed (TimeoutError): again"))
    tally.add(3, "line 3", Outcome(None, None, "bad row (line 3): 'prompt' is empty"))
    tally.add(4, "line 4", Outcome(0.95))
    summary = tally.summary()
    assert (summary.rows, summary.scored, summary.failed, summary.bad_rows) == (4, 1, 2, 1)
    assert summary.errors == {"TimeoutError": (2, "scoring failed (TimeoutError): judge took too long")}
    text = format_summary(summary)
    assert "TimeoutError x2" in text and "lines 3" in text and "mean score 0.950" in text


def test_progress_shows_rate_and_eta_from_this_run_only() -> None:
    now = [100.0]
    stream = io.StringIO()
    progress = Progress("scoring d.jsonl", 1000, stream=stream, every=0.0, clock=lambda: now[0])
    progress.start(already_done=400)  # from an earlier run: not part of the rate
    now[0] += 10.0
    progress.advance(100, failed=2)
    assert progress.text() == "scoring d.jsonl: 500/1,000 rows (50%) | 10.0 rows/s | ETA 50s | 2 failed"
    progress.finish()
    assert stream.getvalue().splitlines()[0] == "scoring d.jsonl: 400/1,000 rows (40%)"


def test_a_terminal_gets_a_tqdm_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = Progress("scoring d.jsonl", 8, stream=stream, every=0.0, clock=lambda: 0.0)
    progress.start()
    progress.advance(2, failed=1)
    progress.finish()
    out = stream.getvalue()
    assert "\r" in out and "scoring d.jsonl:  25%" in out and "2/8" in out and "1 failed" in out
    assert out.endswith("\n")
