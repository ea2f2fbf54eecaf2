"""Thresholds from targets: known answers, held-out truth inside the stated interval, TrustPolicy."""

from __future__ import annotations

import pickle

import pytest
from cal_rows import uniform_rows

from tlm_hooks import Calibration, TrustPolicy, TrustResult, calibrate
from tlm_hooks.calibration import CalibrationError, Threshold
from tlm_hooks.calibration.thresholds import rates_at, select_threshold


def test_select_threshold_on_a_hand_made_ranking() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    labels = [1, 1, 1, 0, 1, 1, 0, 0, 1, 0]
    # precision of "score >= t": 0.9→1, 0.7→1, 0.6→.75, 0.5→.8, 0.4→.833, 0.3→.714, 0.1→.667
    assert select_threshold(scores, labels, "precision", 0.8) == 0.4  # the loosest that still reaches it
    assert select_threshold(scores, labels, "precision", 0.9) == 0.7
    assert select_threshold(scores, labels, "precision", 1.0) == 0.7
    assert select_threshold(scores, labels, "recall", 0.5) == 0.7  # 3 of 6 acceptable kept
    assert select_threshold(scores, labels, "recall", 1.0) == 0.1
    assert select_threshold(scores, labels, "flag_rate", 0.3) == 0.3  # 3 of 10 flagged
    assert select_threshold(scores, labels, "flag_rate", 0.0) == 0.05
    assert select_threshold([0.5, 0.4], [0, 1], "precision", 0.9) is None  # the best answer ranks last
    assert select_threshold([0.5, 0.4], [0, 0], "precision", 0.5) is None
    assert rates_at(scores, labels, 0.4) == {"precision": 5 / 6, "recall": 5 / 6, "flag_rate": 0.4}


@pytest.fixture(scope="module")
def uniform_profile() -> Calibration:
    scores, labels = uniform_rows(1000, seed=11)
    return calibrate(scores, labels)


def test_precision_target_on_data_with_a_known_answer(uniform_profile: Calibration) -> None:
    # P(acceptable | s) = s, so the calibrated score is about s and precision of s >= t is (1 + t) / 2:
    # precision 0.8 needs t = 0.6, flagging 60%
    t = uniform_profile.threshold_for(precision=0.8)
    assert isinstance(t, Threshold) and t.target == {"precision": 0.8}
    assert float(t) == pytest.approx(0.6, abs=0.07)
    assert t.expected["precision"].mean == pytest.approx(0.8, abs=0.04)
    assert t.expected["flag_rate"].mean == pytest.approx(0.6, abs=0.08)
    assert t.expected["precision"].folds == 20
    e = t.expected["precision"]
    assert e.low < e.mean < e.high
    # on fresh data from the same source, the realised precision lies inside the stated interval
    fresh_scores, fresh_labels = uniform_rows(2000, seed=12)
    calibrated = [uniform_profile.apply(s) for s in fresh_scores]
    realised = rates_at(calibrated, [float(y) for y in fresh_labels], t)
    assert e.low <= realised["precision"] <= e.high
    assert realised["precision"] == pytest.approx(0.8, abs=0.04)


def test_recall_and_flag_rate_targets(uniform_profile: Calibration) -> None:
    # recall of s >= t is 1 - t^2: recall 0.75 needs t = 0.5; flag rate 0.3 needs t = 0.3
    r = uniform_profile.threshold_for(recall=0.75)
    assert r.expected["recall"].mean == pytest.approx(0.75, abs=0.05)
    assert r.expected["flag_rate"].mean == pytest.approx(0.5, abs=0.08)
    f = uniform_profile.threshold_for(flag_rate=0.3)
    assert f.in_sample["flag_rate"] <= 0.3
    assert f.expected["flag_rate"].mean == pytest.approx(0.3, abs=0.05)


def test_a_threshold_works_as_a_trust_policy_threshold(uniform_profile: Calibration) -> None:
    t = uniform_profile.threshold_for(precision=0.9)
    policy = TrustPolicy(threshold=t)
    assert policy.threshold == float(t)
    assert policy.is_low(TrustResult(float(t) - 0.01)) and not policy.is_low(TrustResult(float(t)))
    again = pickle.loads(pickle.dumps(t))
    assert again == t and again.expected == t.expected and "precision=0.9" in repr(t)


def test_bad_or_unreachable_targets_are_clear_errors(uniform_profile: Calibration) -> None:
    with pytest.raises(CalibrationError, match="exactly one of"):
        uniform_profile.threshold_for()
    with pytest.raises(CalibrationError, match="exactly one of"):
        uniform_profile.threshold_for(precision=0.9, recall=0.5)
    with pytest.raises(CalibrationError, match=r"invalid precision=1.5"):
        uniform_profile.threshold_for(precision=1.5)
    with pytest.raises(CalibrationError, match=r"invalid recall=0"):
        uniform_profile.threshold_for(recall=0)
    scores, labels = uniform_rows(200, seed=5)
    capped = calibrate([0.5 * s for s in scores], [y and i % 4 != 0 for i, y in enumerate(labels)])
    with pytest.raises(CalibrationError, match="precision 1 is out of reach: the highest precision"):
        capped.threshold_for(precision=1.0)


def test_profile_stores_thresholds_for_the_usual_precisions(uniform_profile: Calibration) -> None:
    stored = {t.target["precision"]: t for t in uniform_profile.thresholds}
    assert set(stored) == {0.8, 0.9, 0.95}
    assert float(stored[0.8]) < float(stored[0.9]) < float(stored[0.95])
    assert stored[0.9] == uniform_profile.threshold_for(precision=0.9)
