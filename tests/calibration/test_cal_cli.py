"""`tlm-hooks calibrate`: a labelled CSV in, a profile, a report and two pictures out."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cal_rows import engine_rows

from tlm_hooks import Calibration
from tlm_hooks.cli import main


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def scored_csv(path: Path, n: int = 200) -> Path:
    rows, labels = engine_rows(n)
    table = []
    for i, (row, good) in enumerate(zip(rows, labels, strict=True)):
        comps = row["log"]["per_component_score"]
        table.append({"prompt": f"q{i}", "response": f"a{i}", "trustworthiness_score": row["trustworthiness_score"],
                      "token_probability": comps["token_probability"], "self_reflection": comps["self_reflection"],
                      "consistency": comps["consistency"], "label": "yes" if good else "no"})  # fmt: skip
    return write_csv(path, table)


def test_calibrates_a_scored_csv_and_writes_profile_report_and_pictures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    source = scored_csv(tmp_path / "labelled.csv")
    assert main(["calibrate", str(source), "-o", str(tmp_path / "profile.json"), "--quality-preset", "medium"]) == 0
    out = capsys.readouterr().out
    profile = Calibration.load(tmp_path / "profile.json")
    assert profile.data["n"] == 200 and profile.data["source"] == "labelled.csv"
    assert profile.valid_for.quality_preset == "medium" and profile.combination.source == "fitted"
    assert "calibrated on 200 labelled rows from labelled.csv" in out
    for line in ("AUROC", "ECE", "Brier"):
        assert any(s.startswith(line) and len(s.split()) == 3 for s in out.splitlines()), line
    for goal in ("0.80", "0.90", "0.95"):
        assert f"precision {goal}:" in out
    assert "flag rate" in out
    for suffix in (".reliability.png", ".histogram.png"):
        picture = tmp_path / f"profile{suffix}"
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 5000


def test_bad_labels_exit_2_naming_the_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = scored_csv(tmp_path / "labelled.csv", 40)
    lines = source.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",perhaps"
    lines[6] = lines[6].rsplit(",", 1)[0] + ","
    source.write_text("\n".join(lines) + "\n")
    assert main(["calibrate", str(source), "-o", str(tmp_path / "p.json"), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "label(s) are missing: line 7" in err
    assert not (tmp_path / "p.json").exists()
    lines[6] = lines[6] + "no"
    source.write_text("\n".join(lines) + "\n")
    assert main(["calibrate", str(source), "-o", str(tmp_path / "p.json"), "--no-plots"]) == 2
    assert "line 4 ('perhaps')" in capsys.readouterr().err


def test_missing_label_column_lists_the_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = scored_csv(tmp_path / "labelled.csv", 30)
    assert main(["calibrate", str(source), "-o", str(tmp_path / "p.json"), "--label-col", "verdict", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "no 'verdict' label column" in err and "'consistency'" in err and "--label-col" in err


def test_unscored_rows_are_scored_with_the_chosen_scorer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).parent)  # --scorer MODULE:NAME imports from the current directory
    rows, labels = engine_rows(60)
    table = [{"prompt": f"c={row['log']['per_component_score']['consistency']}", "response": "x", "correct": int(y)}
             for row, y in zip(rows, labels, strict=True)]  # fmt: skip
    source = write_csv(tmp_path / "unscored.csv", table)
    code = main(["calibrate", str(source), "-o", str(tmp_path / "p.json"), "--scorer", "cal_scorers:stored_consistency",
                 "--no-plots", "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["data"]["scored_here"] == 60
    assert set(data["combination"]["weights"]) == {"consistency", "self_reflection"}
    assert "cal_scorers.stored_consistency" in data["valid_for"]["scorer"]


def test_unscored_rows_without_prompt_columns_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows, labels = engine_rows(30)
    table = [{"question": "q", "consistency": row["log"]["per_component_score"]["consistency"], "label": int(y)}
             for row, y in zip(rows, labels, strict=True)]  # fmt: skip
    table[4]["consistency"] = ""
    source = write_csv(tmp_path / "partly.csv", table)
    assert main(["calibrate", str(source), "-o", str(tmp_path / "p.json"), "--no-plots", "--quiet",
                 "--scorer", "logprob"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "1 row(s) have no scores and cannot be scored: line 6" in err and "'prompt'" in err


def test_help_names_the_label_rules(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["calibrate", "--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert "--label-col" in out and "trustworthiness_score" in out and "reliability.png" in out
