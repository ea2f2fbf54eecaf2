"""The README's main job and the examples, run for real on the embedded model."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded_model

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_demo_catches_low_trust_at_a_strict_threshold() -> None:
    from tlm_hooks.demo import QUESTIONS, run

    out = io.StringIO()
    tables = run(QUESTIONS[:2], threshold=1.0, max_tokens=16, follow_up=2, out=out)
    for name in ("score", "patch", "route"):
        assert len(tables[name]) == 2
        assert all(row[4].startswith("low trust") for row in tables[name]), tables[name]  # nothing reaches 1.0
        # the lowest signal is named for every low-trust answer
        assert all(row[5].split()[0] in ("token", "self-reflection", "consistency") for row in tables[name])
    assert any("append_warning" in row[4] for row in tables["patch"])
    assert all(row[1] == "I'm not sure about this one." for row in tables["route"])
    tally = tables["tally"]
    assert tally.wrong + tally.right == 2 and tally.kept == 0 and tally.caught == tally.wrong
    text = out.getvalue()
    assert "Workflow 1" in text and "Workflow 3" in text and "6 low-trust answers caught" in text
    assert f"Wrong answers caught: {tally.caught} of {tally.wrong}; right answers kept: 0 of {tally.right}." in text


def test_demo_threshold_comes_from_the_shipped_profile(caplog: pytest.LogCaptureFixture) -> None:
    from tlm_hooks.demo import QUESTIONS, load_profile, run

    expected = float(load_profile().threshold_for(precision=0.7))
    out = io.StringIO()
    with caplog.at_level("WARNING", logger="tlm_hooks"):
        tables = run(QUESTIONS[:2], max_tokens=24, follow_up=1, out=out)
    assert f"threshold {expected:.2f}, the profile's choice for precision 0.7" in out.getvalue()
    for row in tables["score"]:
        assert (row[4] == "trusted") == (float(row[3]) >= expected), row
    # the profile is valid for the judge the demo uses: no "fitted for another judge" warning
    assert not [r for r in caplog.records if "calibration" in r.getMessage().lower()], caplog.text


CHECKED_SEPARATELY = {"score_mlflow_traces.py"}
README = EXAMPLES.parent / "README.md"


def promised_lines() -> dict[str, str]:
    """The README's examples table: example file -> the line its output shows ("look for")."""
    rows = re.findall(r"^\| \[(\w+\.py)\]\(examples/\1\) \|.*\| `([^`]+)` \|$", README.read_text(), re.MULTILINE)
    return dict(rows)


def test_the_readme_promises_a_line_for_every_example() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert set(promised_lines()) == scripts


@pytest.mark.parametrize(
    "script",
    sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_") and p.name not in CHECKED_SEPARATELY),
)
def test_example_runs_and_prints_what_the_readme_promises(script: str) -> None:
    done = subprocess.run([sys.executable, script], cwd=EXAMPLES, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "score" in done.stdout
    assert promised_lines()[script] in done.stdout, done.stdout[-2000:]


def test_score_mlflow_traces_example_scores_every_logged_trace(tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason="mlflow is not installed (extra [mlflow])")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", TMPDIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "score_mlflow_traces.py"], cwd=EXAMPLES, capture_output=True, text=True, timeout=400, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert promised_lines()["score_mlflow_traces.py"] in done.stdout, done.stdout
    scores = [float(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("score ")]
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores), done.stdout
    assert not (EXAMPLES / "mlruns").exists()  # the throwaway store kept its artifacts to itself
