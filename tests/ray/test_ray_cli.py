"""`tlm-hooks score --engine ray` end to end on Parquet and CSV files, on the test cluster."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray.data", reason="needs the [ray] extra: pip install 'tlm-hooks[ray]'")

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from ray_helpers import expected_score, rows  # noqa: E402

from tlm_hooks.datasets.command import main  # noqa: E402

# Ray starts a worker process per task and actor: slow on a busy machine
pytestmark = pytest.mark.timeout(900)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--engine", "ray", "--scorer", "ray_helpers:score", "--actors", "2"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("ray_cluster")
def test_parquet_in_parquet_out_in_input_order_with_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = rows(500)
    items[7]["response"] = "answer FAIL"
    items[8]["response"] = ""
    source = tmp_path / "traffic.parquet"
    pq.write_table(pa.Table.from_pylist(items), source, row_group_size=100)

    code, out, err = _run(capsys, str(source))

    assert code == 3  # like the local engine: finished, some rows failed
    table = pq.read_table(tmp_path / "traffic.scored.parquet").to_pylist()
    assert [r["id"] for r in table] == list(range(500))  # every row once, in input order
    assert table[7]["scoring_error"].startswith("scoring failed (RuntimeError)")
    assert table[8]["scoring_error"] == "bad row (row 9): 'response' is empty"
    assert all(r["trustworthiness_score"] == expected_score(r["response"]) for r in table if r["id"] not in (7, 8))
    assert "Scored 500 rows of traffic.parquet" in out
    assert "failed" in out and "RuntimeError x1" in out and "bad rows" in out
    lowest = min((r for r in table if r["trustworthiness_score"] is not None), key=lambda r: r["trustworthiness_score"])
    assert f"row {lowest['id'] + 1}" in out and lowest["response"] in out  # the lowest rows, with their text
    assert "output: " + str(tmp_path / "traffic.scored.parquet") in out
    assert "500/500 rows (100%)" in err  # the progress line (Parquet knows its row count)
    assert not (tmp_path / "traffic.scored.parquet.partial").exists()


@pytest.mark.usefixtures("ray_cluster")
def test_csv_cells_are_text_and_csv_or_jsonl_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "qa.csv"
    with open(source, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["question", "answer", "note"])
        for i in range(200):
            writer.writerow([f"what is {i}?", str(i), "x, y"])  # a column of digits stays text

    code, out, _ = _run(capsys, str(source), "--prompt-col", "question", "--response-col", "answer", "--quiet")
    assert code == 0, out
    with open(tmp_path / "qa.scored.csv", newline="", encoding="utf-8") as file:
        got = list(csv.DictReader(file))
    assert [r["answer"] for r in got] == [str(i) for i in range(200)]
    assert [float(r["trustworthiness_score"]) for r in got] == [expected_score(str(i)) for i in range(200)]
    assert got[0]["note"] == "x, y" and got[0]["scoring_error"] == ""
    assert "Scored 200 rows of qa.csv" in out

    # the same file again into JSONL: an existing output is kept unless --restart
    code, _, err = _run(capsys, str(source), "--prompt-col", "question", "--response-col", "answer", "--quiet")
    assert code == 2 and "already exists: pass --restart" in err
    target = tmp_path / "qa.jsonl"
    code, _, _ = _run(
        capsys, str(source), "--prompt-col", "question", "--response-col", "answer", "-o", str(target), "--quiet"
    )
    assert code == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["answer"] for r in lines] == [str(i) for i in range(200)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--on-bad-row", "stop"], "--on-bad-row stop cannot be used with --engine ray"),
        (["--cache", "c.sqlite", "--address", "auto"], "--cache FILE cannot be used with --address"),
        (["--calibration", "missing.json"], "cannot read calibration profile 'missing.json'"),
        (["--format", "xml"], "invalid choice: 'xml'"),
        (["--prompt-col", "q"], "no 'q' column"),
    ],
)
@pytest.mark.usefixtures("ray_cluster")
def test_bad_arguments_exit_2_before_scoring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    source = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows(3)), source)
    try:
        code, _, err = _run(capsys, str(source), *args)
    except SystemExit as exc:  # argparse
        code, err = exc.code, capsys.readouterr().err
    assert code == 2 and message in err
    assert not (tmp_path / "d.scored.parquet").exists()


@pytest.mark.usefixtures("ray_cluster")
def test_the_engine_with_a_calibration_profile_and_a_cache_file_the_actors_share(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sklearn", reason="fitting the profile needs the calibration extra")
    import random

    from engine.judge_server import JudgeServer

    from tlm_hooks import calibrate

    rng = random.Random(5)
    scores = [rng.random() for _ in range(200)]
    labels = [rng.random() < s * s for s in scores]
    profile = calibrate([{"trustworthiness_score": s} for s in scores], labels, quality_preset="base")
    profile.save(tmp_path / "p.json")
    source = tmp_path / "d.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows(8)))
    cache = tmp_path / "scores.sqlite"

    judge = JudgeServer(refuse_n=False, delay=0.01)
    try:
        engine = ["--engine", "ray", "--actors", "2", "--scorer", "tlm", "-p", "base", "-j", judge.url,
                  "-m", "judge-model", "--cache", str(cache), "--quiet"]  # fmt: skip
        assert main([str(source), "-o", str(tmp_path / "raw.jsonl"), *engine]) == 0, capsys.readouterr().err
        asked = len(judge.asked)
        assert asked >= 8  # every row went to the judge once
        code = main([str(source), "-o", str(tmp_path / "calibrated.jsonl"), "--calibration", str(tmp_path / "p.json"),
                     *engine])  # fmt: skip
        assert code == 0, capsys.readouterr().err
        assert len(judge.asked) == asked  # every row came from the file the first run's actors wrote
    finally:
        judge.close()
    raw = [json.loads(line) for line in (tmp_path / "raw.jsonl").read_text().splitlines()]
    calibrated = [json.loads(line) for line in (tmp_path / "calibrated.jsonl").read_text().splitlines()]
    assert [r["id"] for r in calibrated] == list(range(8))
    assert [r["trustworthiness_score"] for r in calibrated] == pytest.approx(
        [profile.apply(r["trustworthiness_score"]) for r in raw]
    )
    assert any(
        abs(a["trustworthiness_score"] - b["trustworthiness_score"]) > 0.01
        for a, b in zip(raw, calibrated, strict=True)
    )


def test_missing_input_and_ray_flags_without_the_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, str(tmp_path / "nope.parquet"))
    assert code == 2 and "no such file or folder" in err
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps(rows(1)[0]) + "\n")
    assert main([str(data), "--actors", "3"]) == 2
    assert "--actors applies to --engine ray" in capsys.readouterr().err


def test_without_engine_ray_nothing_of_ray_is_imported(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows(5)))
    code = (
        "import sys\n"
        "from tlm_hooks.datasets.command import main\n"
        "import tlm_hooks.datasets, tlm_hooks.cli\n"
        f"status = main([{str(data)!r}, '--scorer', 'ray_helpers:score', '--quiet'])\n"
        "loaded = sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.'))\n"
        "print(status, loaded)\n"
    )
    env = {"PYTHONPATH": f"{HERE}:{ROOT}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"
    assert (tmp_path / "d.scored.jsonl").exists()
