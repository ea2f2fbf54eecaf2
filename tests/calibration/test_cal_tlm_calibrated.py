"""`TLMCalibrated`: Cleanlab's calibrated-TLM calls (``fit(tlm_scores, ratings)``, ``prompt``,
``get_trustworthiness_score``) on our engine, with ``calibrated_score`` added."""

from __future__ import annotations

import random

import pytest

from tlm_hooks import TLM, FunctionScorer, TLMCalibrated, TrustResult
from tlm_hooks.calibration import NotCalibratedError


def judge(request):
    """Answers that restate the question's number are right; consistency says so, noisily."""
    question = request.prompt_text()
    right = question.split()[-1].rstrip("?") in request.response
    seed = sum(map(ord, question + request.response))
    value = min(1.0, max(0.0, random.Random(seed).gauss(0.75 if right else 0.3, 0.15)))
    return TrustResult(value, components={"consistency": value, "self_reflection": 0.5})


def dataset(n: int = 60) -> tuple[list[str], list[str], list[int]]:
    prompts, responses, ratings = [], [], []
    for i in range(n):
        right = i % 2 == 0
        prompts.append(f"Repeat the number {i}?")
        responses.append(f"It is {i}" if right else f"It is {i + 1000}")
        ratings.append(5 if right else 1 + i % 3)  # a 1-5 rating, like Cleanlab's examples
    return prompts, responses, ratings


def test_fit_on_cleanlab_shaped_scores_and_score_new_pairs() -> None:
    prompts, responses, ratings = dataset()
    tlm = TLM(scorer=FunctionScorer(judge))
    tlm_scores = tlm.get_trustworthiness_score(prompts, responses)  # [{"trustworthiness_score": ...}, ...]
    assert set(tlm_scores[0]) == {"trustworthiness_score"}
    calibrated = TLMCalibrated(scorer=FunctionScorer(judge))
    with pytest.raises(NotCalibratedError, match=r"call \.fit\(tlm_scores, ratings\) first"):
        calibrated.get_trustworthiness_score("Repeat the number 3?", "It is 3")
    calibrated.fit(tlm_scores, ratings)
    assert calibrated.calibration is not None and calibrated.calibration.data["labels"]["kind"] == "rating"
    one = calibrated.get_trustworthiness_score("Repeat the number 7?", "It is 7")
    assert set(one) == {"trustworthiness_score", "calibrated_score"}
    many = calibrated.get_trustworthiness_score(
        ["Repeat the number 8?", "Repeat the number 9?"], ["It is 8", "It is 4"]
    )
    assert isinstance(many, list) and len(many) == 2
    assert many[0]["calibrated_score"] > many[1]["calibrated_score"]
    assert 0.0 < many[1]["calibrated_score"] < many[0]["calibrated_score"] < 1.0


def test_component_scores_fit_weights_and_the_log_keeps_only_what_was_asked() -> None:
    prompts, responses, ratings = dataset()
    tlm = TLM(options={"log": ["per_component_score"]}, scorer=FunctionScorer(judge))
    tlm_scores = tlm.get_trustworthiness_score(prompts, responses)
    calibrated = TLMCalibrated(options={"log": ["explanation"]}, scorer=FunctionScorer(judge))
    calibrated.fit(tlm_scores, ratings)
    assert calibrated.calibration is not None
    assert set(calibrated.calibration.combination.weights) == {"consistency", "self_reflection"}
    item = calibrated.get_trustworthiness_score("Repeat the number 7?", "It is 7")
    assert item["log"] == {} and "calibrated_score" in item  # FunctionScorer gives no explanation


def test_a_saved_profile_is_used_without_fit(tmp_path) -> None:
    prompts, responses, ratings = dataset()
    first = TLMCalibrated(scorer=FunctionScorer(judge))
    first.fit(TLM(scorer=FunctionScorer(judge)).get_trustworthiness_score(prompts, responses), ratings)
    assert first.calibration is not None
    path = first.calibration.save(tmp_path / "p.json")
    second = TLMCalibrated(scorer=FunctionScorer(judge), calibration=path)
    pair = ("Repeat the number 5?", "It is 5")
    assert second.get_trustworthiness_score(*pair) == first.get_trustworthiness_score(*pair)


def test_ratings_must_pair_with_scores() -> None:
    calibrated = TLMCalibrated(scorer=FunctionScorer(judge))
    with pytest.raises(ValueError, match="3 TLM scores but 2 ratings"):
        calibrated.fit([{"trustworthiness_score": 0.5}] * 3, [1, 2])
