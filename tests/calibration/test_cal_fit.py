"""Fitting: non-negative weights, monotone maps chosen by cross-validated log-loss, fallbacks."""

from __future__ import annotations

import random

import pytest
from cal_rows import clip, engine_rows, uniform_rows

from tlm_hooks import TrustResult, calibrate
from tlm_hooks.calibration import CalibrationError
from tlm_hooks.calibration.features import Features
from tlm_hooks.calibration.fitting import fit_combination, fit_map
from tlm_hooks.scorers.signals.weights import SIGNAL_WEIGHTS


def test_weights_are_non_negative_and_follow_the_informative_signal() -> None:
    rng = random.Random(1)
    rows, labels = [], []
    for _ in range(400):
        good = rng.random() < 0.5
        consistency = clip(rng.gauss(0.7 if good else 0.3, 0.15))
        misleading = clip(rng.gauss(0.3 if good else 0.7, 0.15))  # higher for worse answers
        rows.append(Features(None, {"consistency": consistency, "self_reflection": misleading,
                                    "token_probability": rng.random()}))  # fmt: skip
        labels.append(float(good))
    combination = fit_combination(rows, labels)
    assert combination.source == "fitted"
    assert all(w >= 0 for w in combination.weights.values())
    assert combination.weights["self_reflection"] == 0.0  # a signal can only help, never count against
    assert combination.weights["consistency"] > 0.8
    assert sum(combination.weights.values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("kind", ["platt", "isotonic"])
def test_maps_are_monotone(kind: str) -> None:
    scores, labels = uniform_rows(300, seed=2)
    score_map = fit_map(kind, scores, [float(y) for y in labels])
    grid = [i / 200 for i in range(201)]
    values = [score_map(x) for x in grid]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert all(0.0 < v < 1.0 for v in values)  # never certain from a finite sample
    assert values[-1] - values[0] > 0.5  # and it does follow the labels


def test_map_is_chosen_by_cross_validated_log_loss_and_recorded() -> None:
    rows, labels = engine_rows()
    profile = calibrate(rows, labels)
    losses = profile.cv["map_log_loss"]
    assert set(losses) == {"platt", "isotonic"}
    assert profile.cv["chosen_map"] == profile.score_map.kind == min(losses, key=losses.get)
    assert profile.cv["folds"] == 5
    # the raw score here is over-confident by design: calibration must fix most of that
    assert profile.cv["before"]["ece"] > 0.15 > 0.08 > profile.cv["after"]["ece"]
    assert profile.cv["after"]["brier"] < profile.cv["before"]["brier"]
    assert profile.cv["after"]["auroc"] >= profile.cv["before"]["auroc"] - 0.01


def test_a_signal_missing_from_a_row_falls_back_to_the_engine_weight() -> None:
    rows, labels = engine_rows()
    for row in rows:  # calibrated without token probability (no logprobs in the data)
        del row["log"]["per_component_score"]["token_probability"]
    profile = calibrate(rows, labels)
    assert "token_probability" not in profile.combination.weights
    full = {"token_probability": 0.9, "self_reflection": 0.5, "consistency": 0.6}
    value, notes = profile.apply_with_notes({"log": {"per_component_score": full}})
    assert notes == ["token_probability was not in the calibration data: the engine's weight was used"]
    weights = dict(profile.combination.weights, token_probability=SIGNAL_WEIGHTS["default"]["token_probability"])
    combined = sum(full[k] * w for k, w in weights.items()) / sum(weights.values())
    assert value == pytest.approx(profile.score_map(combined))
    only_consistency = profile.apply({"log": {"per_component_score": {"consistency": 0.6}}})
    assert only_consistency == pytest.approx(profile.score_map(0.6))


def test_rows_without_signal_scores_calibrate_the_score_itself() -> None:
    scores, labels = uniform_rows(200, seed=3)
    profile = calibrate([{"trustworthiness_score": s} for s in scores], labels)
    assert profile.combination.source == "score" and profile.combination.weights == {}
    assert profile.apply(0.9) > profile.apply(0.5) > profile.apply(0.1)
    assert profile.apply(TrustResult(0.9)) == profile.apply(0.9) == profile.apply({"trustworthiness_score": 0.9})


def test_too_few_complete_rows_keep_the_engine_weights_and_say_why() -> None:
    rows, labels = engine_rows(60)
    for row in rows[10:]:
        del row["log"]["per_component_score"]["self_reflection"]
    profile = calibrate(rows, labels)
    assert profile.combination.source == "engine"
    assert "too few rows to fit weights" in (profile.combination.reason or "")
    assert profile.combination.weights == SIGNAL_WEIGHTS["default"]


def test_rows_and_labels_must_pair_up_and_scores_must_be_in_range() -> None:
    rows, labels = engine_rows(40)
    with pytest.raises(CalibrationError, match="40 rows but 39 labels"):
        calibrate(rows, labels[:-1])
    rows[7] = {"trustworthiness_score": 1.5}
    with pytest.raises(CalibrationError, match=r"out of range in row 7"):
        calibrate(rows, labels)


def test_unscored_rows_need_a_scorer_and_name_the_rows() -> None:
    rows, labels = engine_rows(40)
    rows[3] = {"prompt": "2+2?", "response": "4"}
    rows[9] = {"prompt": "3+3?", "response": "6"}
    with pytest.raises(CalibrationError, match=r"2 row\(s\) have no scores: row 3, row 9.*scorer="):
        calibrate(rows, labels)


def test_unscored_rows_are_scored_with_the_given_scorer() -> None:
    from tlm_hooks import FunctionScorer

    rows, labels = engine_rows(60)
    asked = []

    def judge(request):  # a stand-in for the engine: consistency from the prompt's stored value
        asked.append(request.prompt)
        value = float(request.prompt.split("=")[1])
        return TrustResult(value, components={"consistency": value, "self_reflection": 0.5})

    unscored = [{"prompt": f"c={row['log']['per_component_score']['consistency']}", "response": "x"} for row in rows]
    profile = calibrate(unscored, labels, scorer=FunctionScorer(judge))
    assert len(asked) == 60 and profile.data["scored_here"] == 60
    assert set(profile.combination.weights) == {"consistency", "self_reflection"}
    assert profile.valid_for.scorer is not None and "FunctionScorer" in profile.valid_for.scorer
