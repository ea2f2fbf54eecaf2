"""The JSON profile: round trip, versioning, what it is valid for, applying it without sklearn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cal_rows import engine_rows

import tlm_hooks
from tlm_hooks import Calibration, TrustResult, calibrate
from tlm_hooks.calibration import CalibrationError


@pytest.fixture(scope="module")
def profile() -> Calibration:
    rows, labels = engine_rows()
    return calibrate(rows, labels, judge="local:smollm2-135m-instruct", quality_preset="medium", task="default",
                     source="labels.csv")  # fmt: skip


def test_round_trip_keeps_weights_map_thresholds_and_scores(profile: Calibration, tmp_path: Path) -> None:
    path = profile.save(tmp_path / "profile.json")
    loaded = Calibration.load(path)
    assert loaded.combination == profile.combination and loaded.score_map == profile.score_map
    assert loaded.thresholds == profile.thresholds and loaded.cv == profile.cv and loaded.data == profile.data
    rows, _ = engine_rows(50, seed=9)
    assert [loaded.apply(r) for r in rows] == pytest.approx([profile.apply(r) for r in rows], abs=1e-9)
    assert loaded.threshold_for(precision=0.85) == pytest.approx(profile.threshold_for(precision=0.85), abs=1e-3)
    assert Calibration.coerce(str(path)).score_map == profile.score_map
    assert Calibration.coerce(json.loads(path.read_text())).combination == profile.combination


def test_profile_records_what_it_is_valid_for(profile: Calibration, tmp_path: Path) -> None:
    data = json.loads(profile.save(tmp_path / "p.json").read_text())
    assert data["format"] == "tlm-hooks-calibration" and data["version"] == 1
    assert data["valid_for"] == {"judge": "local:smollm2-135m-instruct", "quality_preset": "medium",
                                 "task": "default", "scorer": None, "engine_version": tlm_hooks.__version__}  # fmt: skip
    assert data["data"]["n"] == 300 and data["data"]["source"] == "labels.csv"
    assert data["data"]["fitted_at"].startswith("20") and data["data"]["labels"] == {"kind": "binary"}
    assert data["combination"]["source"] == "fitted" and data["map"]["kind"] in ("platt", "isotonic")
    assert len(data["evidence"]["rows"]) == 300
    assert profile.mismatches(judge="gpt-4.1-mini", quality_preset="medium") == [
        "judge 'gpt-4.1-mini' (the profile was fitted for 'local:smollm2-135m-instruct')"
    ]
    assert profile.mismatches(quality_preset="low", task=None) == [
        "quality_preset 'low' (the profile was fitted for 'medium')"
    ]
    assert profile.mismatches(judge="local:smollm2-135m-instruct", quality_preset="medium", task="default") == []


def test_without_evidence_only_stored_thresholds_are_available(profile: Calibration, tmp_path: Path) -> None:
    loaded = Calibration.load(profile.save(tmp_path / "small.json", evidence=False))
    assert "evidence" not in json.loads((tmp_path / "small.json").read_text())
    assert loaded.threshold_for(precision=0.9) == profile.threshold_for(precision=0.9)
    with pytest.raises(CalibrationError, match=r"saved without its labelled rows.*precision=0.8, precision=0.9"):
        loaded.threshold_for(precision=0.85)


def test_bad_profiles_are_clear_errors(profile: Calibration, tmp_path: Path) -> None:
    data = profile.to_dict()
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**data, "version": 2}))
    with pytest.raises(CalibrationError, match="version 2 is not supported.*upgrade tlm-hooks"):
        Calibration.load(newer)
    with pytest.raises(CalibrationError, match="not a tlm-hooks calibration profile"):
        Calibration.from_dict({"weights": {}})
    with pytest.raises(CalibrationError, match="must be >= 0"):
        Calibration.from_dict({**data, "combination": {"weights": {"consistency": -1}}})
    with pytest.raises(CalibrationError, match="unknown map kind 'spline'"):
        Calibration.from_dict({**data, "map": {"kind": "spline"}})
    with pytest.raises(CalibrationError, match="non-decreasing"):
        Calibration.from_dict({**data, "map": {"kind": "isotonic", "x": [0, 1], "y": [0.9, 0.1]}})
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(CalibrationError, match="is not JSON"):
        Calibration.load(tmp_path / "bad.json")
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.load(tmp_path / "missing.json")


def test_apply_reads_results_metadata_and_components(profile: Calibration) -> None:
    components = {"token_probability": 0.7, "self_reflection": 0.4, "consistency": 0.8}
    as_meta = profile.apply({"trustworthiness_score": 0.5, "log": {"per_component_score": components}})
    assert profile.apply(TrustResult(0.5, components=components)) == as_meta == profile.apply(components)
    assert 0.0 < as_meta < 1.0
    with pytest.raises(CalibrationError, match="nothing to calibrate"):
        profile.apply({"response": "hi"})


def test_applying_a_saved_profile_needs_no_fitting_library(profile: Calibration, tmp_path: Path) -> None:
    path = profile.save(tmp_path / "p.json")
    code = (
        "import sys; sys.modules['sklearn'] = sys.modules['scipy'] = sys.modules['numpy'] = None\n"
        "from tlm_hooks import Calibration\n"
        f"p = Calibration.load({str(path)!r})\n"
        "print(round(p.apply({'consistency': 0.8, 'token_probability': 0.6}), 6), float(p.thresholds[0]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert float(out[0]) == pytest.approx(profile.apply({"consistency": 0.8, "token_probability": 0.6}), abs=1e-6)
    assert float(out[1]) == float(profile.thresholds[0])
