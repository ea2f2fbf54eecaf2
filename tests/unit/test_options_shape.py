"""One shape for quality_preset/task/options across TLM, TLMScorer, score_completion (and patch)."""

from __future__ import annotations

import pytest

from tlm_hooks import TLM, FunctionScorer, InvalidOptionError, TLMOptions, TLMScorer
from tlm_hooks.options import as_tlm_options


def test_option_keys_dict_and_tlmoptions_and_body_dict_mean_the_same() -> None:
    keys = {"log": ["explanation"], "num_self_reflections": 1}
    want = TLMOptions("low", "classification", keys)
    assert as_tlm_options("low", "classification", keys) == want
    assert as_tlm_options(options=want) == want
    assert as_tlm_options(options={"quality_preset": "low", "task": "classification", "options": keys}) == want
    assert as_tlm_options("low", options=TLMOptions(task="classification", options=keys)) == want  # agreeing parts


def test_defaults_fill_only_what_is_unset() -> None:
    assert as_tlm_options(default_preset="medium", default_task="default") == TLMOptions("medium", "default")
    assert as_tlm_options(options=TLMOptions("high"), default_preset="medium").quality_preset == "high"


def test_a_preset_given_twice_differently_is_refused_naming_both() -> None:
    with pytest.raises(InvalidOptionError, match=r"quality_preset='low'.*options= already sets quality_preset='high'"):
        as_tlm_options("low", options=TLMOptions("high"))
    with pytest.raises(InvalidOptionError, match="task"):
        TLMScorer(task="default", options={"task": "classification"})


def test_a_dict_mixing_body_keys_and_option_keys_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match=r"options\.log.*mixes both"):
        as_tlm_options(options={"quality_preset": "low", "log": ["explanation"]})


def test_nothing_given_is_modified() -> None:
    keys = {"log": ["explanation"]}
    body = {"quality_preset": "low", "options": keys}
    as_tlm_options(options=body)
    assert body == {"quality_preset": "low", "options": {"log": ["explanation"]}}


def test_tlm_and_tlmscorer_take_the_same_shapes() -> None:
    for options in ({"log": ["explanation"]}, TLMOptions(options={"log": ["explanation"]})):
        scorer = TLMScorer("low", options=options)
        assert scorer.tlm_options == TLMOptions("low", "default", {"log": ["explanation"]})
        tlm = TLM("low", options=options, scorer=FunctionScorer(lambda r: 0.5))
        assert tlm.options.quality_preset == "low" and tlm.options.options == {"log": ["explanation"]}
    assert TLMScorer().tlm_options == TLMOptions("medium", "default")


def test_score_completion_takes_quality_preset_and_option_keys() -> None:
    pytest.importorskip("openai")
    from openai.types.chat import ChatCompletion

    from tlm_hooks import score_completion

    completion = ChatCompletion.model_validate({
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "4"}}],
    })  # fmt: skip
    seen = []

    def fn(request: object) -> float:
        seen.append(request)
        return 0.5

    out = score_completion(
        completion, scorer=fn, quality_preset="low", options={"log": ["explanation"]},
        messages=[{"role": "user", "content": "2+2?"}],
    )  # fmt: skip
    assert out["trustworthiness_score"] == 0.5
    assert seen[0].options == TLMOptions("low", None, {"log": ["explanation"]})  # type: ignore[attr-defined]
    with pytest.raises(InvalidOptionError, match="one quality_preset"):
        score_completion(completion, scorer=fn, quality_preset="low", options={"quality_preset": "high"}, messages=[])
