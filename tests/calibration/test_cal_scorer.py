"""`TLMScorer(calibration=...)`: the calibrated score in ``tlm_metadata``, the raw one under ``log``,
and a warning when the profile was fitted for another preset or judge."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cal_rows import uniform_rows

import tlm_hooks
from tlm_hooks import Calibration, ScoreRequest, TLMScorer, TokenLogprob, TrustResult, calibrate
from tlm_hooks.calibration import CalibrationError


@pytest.fixture(scope="module")
def base_profile() -> Calibration:
    scores, labels = uniform_rows(300, seed=21)
    rows = [{"log": {"per_component_score": {"token_probability": s}}} for s in scores]
    return calibrate(rows, labels, quality_preset="base", task="default")


def request(logprob: float = -0.4) -> ScoreRequest:
    tokens = tuple(TokenLogprob(t, logprob) for t in ("Paris", " is", " the", " capital"))
    return ScoreRequest(response="Paris is the capital", prompt="Capital of France?", response_logprobs=tokens)


def test_the_score_is_calibrated_and_the_raw_one_kept_in_the_log(base_profile: Calibration) -> None:
    raw = TLMScorer("base").score(request())
    result = TLMScorer("base", calibration=base_profile).score(request())
    assert raw.ok and result.ok
    assert result.trustworthiness_score == pytest.approx(base_profile.apply(raw))
    assert result.trustworthiness_score != pytest.approx(raw.trustworthiness_score, abs=1e-3)
    meta = result.to_dict()
    assert meta["log"]["raw_trustworthiness_score"] == raw.trustworthiness_score
    assert meta["log"]["calibration"] == {"map": base_profile.score_map.kind}
    assert meta["log"]["per_component_score"]["token_probability"] == raw.components["token_probability"]
    again = TrustResult.from_dict(meta)
    assert again.calibration == result.calibration and again.trustworthiness_score == result.trustworthiness_score


def test_a_profile_for_another_preset_warns_once_and_says_so_in_each_result(
    base_profile: Calibration, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = base_profile.to_dict()
    data["valid_for"]["quality_preset"] = "medium"
    other = Calibration.from_dict(data)
    scorer = TLMScorer("base", calibration=other.save(tmp_path / "medium.json"))
    with caplog.at_level(logging.WARNING, logger="tlm_hooks"):
        first, second = scorer.score(request()), scorer.score(request(-0.1))
    expected = "the calibration profile is used with quality_preset 'base' (the profile was fitted for 'medium')"
    for result in (first, second):
        assert any(expected in w for w in result.to_dict()["log"]["calibration"]["warnings"])
    assert sum(expected in r.getMessage() for r in caplog.records) == 1


def test_a_failed_score_stays_failed(base_profile: Calibration) -> None:
    calibrator = TLMScorer("base", calibration=base_profile).calibrator
    failed = TrustResult.failed("judge down")
    assert calibrator(failed) is failed and failed.to_dict()["trustworthiness_score"] is None


def test_a_bad_profile_is_refused_when_the_scorer_is_made(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="cannot read calibration profile"):
        TLMScorer(calibration=tmp_path / "missing.json")
    with pytest.raises(CalibrationError, match="must be a Calibration"):
        TLMScorer(calibration=0.7)


def test_a_patched_client_gets_the_calibrated_score(base_profile: Calibration, fake, tmp_path: Path) -> None:
    openai = pytest.importorskip("openai")
    path = base_profile.save(tmp_path / "profile.json")
    client = openai.OpenAI(base_url=fake.url, api_key="test")
    tlm_hooks.patch(client, scorer=TLMScorer("base", calibration=str(path)))
    resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "2+2?"}])
    meta = resp.tlm_metadata
    raw = meta["log"]["raw_trustworthiness_score"]
    assert meta["trustworthiness_score"] == pytest.approx(base_profile.apply({"token_probability": raw}))
    assert "calibration" in meta["log"] and "warnings" not in meta["log"]["calibration"]
