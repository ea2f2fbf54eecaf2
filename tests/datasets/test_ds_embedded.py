"""`tlm-hooks score` for real: the open engine on the embedded local model, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded_model

QA = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is 7 times 8?", "7 times 8 is 54."),
    ("Which planet is the largest in the Solar System?", "The largest planet is Jvpit3r."),
    ("Who wrote Middlemarch?", "George Eliot wrote Middlemarch."),
]


def test_cli_scores_five_rows_with_the_embedded_model(tmp_path: Path) -> None:
    source = tmp_path / "qa.csv"
    lines = ["system,question,answer"] + [f'"Answer briefly.","{q}","{a}"' for q, a in QA]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    command = [
        sys.executable, "-m", "tlm_hooks.cli", "score", str(source),
        "--prompt-col", "question", "--response-col", "answer", "--system-col", "system",
        "--quality-preset", "base", "--batch-size", "2", "--lowest", "2",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Scored 5 rows of qa.csv" in done.stdout and "2 lowest-scoring rows" in done.stdout
    assert "5/5 rows (100%)" in done.stderr

    import csv

    with open(tmp_path / "qa.scored.csv", encoding="utf-8", newline="") as file:
        out = list(csv.DictReader(file))
    assert [(r["question"], r["answer"]) for r in out] == QA  # input order, every row once
    for row in out:
        assert row["scoring_error"] == "", row
        assert 0.0 <= float(row["trustworthiness_score"]) <= 1.0
        assert "self-reflection" in row["explanation"]  # no logprobs in a dataset: the judge was asked
    assert not (tmp_path / "qa.scored.csv.partial").exists()
