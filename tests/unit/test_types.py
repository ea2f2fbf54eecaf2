"""TrustResult and ScoreRequest."""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle

import pytest

from tlm_hooks.types import ScoreRequest, TokenLogprob, TrustResult


class ScorerDown(Exception):
    pass


# --- TrustResult --------------------------------------------------------------------------


@pytest.mark.parametrize("score", [0, 0.0, 0.37, 1, 1.0])
def test_scores_in_range_accepted_as_float(score: float) -> None:
    result = TrustResult(score)
    assert result.trustworthiness_score == float(score)
    assert type(result.trustworthiness_score) is float
    assert result.ok


@pytest.mark.parametrize("score", [math.nan, -0.001, 1.001, -1, 2, math.inf, -math.inf, True, False, "0.5"])
def test_scores_out_of_range_or_wrong_type_rejected(score: object) -> None:
    with pytest.raises(ValueError) as info:
        TrustResult(score)  # type: ignore[arg-type]
    assert repr(score) in str(info.value)


def test_none_score_is_not_ok() -> None:
    assert not TrustResult(None).ok
    assert not TrustResult(0.9, error="partial failure").ok


def test_to_dict_only_what_is_set() -> None:
    assert TrustResult(0.8).to_dict() == {"trustworthiness_score": 0.8}
    assert TrustResult(0.8, explanation="looks right").to_dict() == {
        "trustworthiness_score": 0.8,
        "log": {"explanation": "looks right"},
    }


def test_to_dict_full_shape() -> None:
    result = TrustResult(
        0.25,
        explanation="why",
        components={"token_probability": 0.5},
        evals={"context_sufficiency": {"score": 0.9}},
        fallbacks=("append_warning", "regenerate"),
    )
    assert result.to_dict() == {
        "trustworthiness_score": 0.25,
        "log": {"explanation": "why", "per_component_score": {"token_probability": 0.5}},
        "context_sufficiency": {"score": 0.9},
        "fallbacks": ["append_warning", "regenerate"],
    }


def test_to_dict_of_a_failure() -> None:
    data = TrustResult.failed(ScorerDown("backend 503")).to_dict()
    assert data == {"trustworthiness_score": None, "error": {"message": "backend 503", "type": "ScorerDown"}}
    assert TrustResult(None, error="x").to_dict()["error"]["type"] == "ScoringError"


def test_to_dict_returns_copies() -> None:
    result = TrustResult(0.5, components={"a": 0.1}, evals={"e": {"score": 0.2}})
    data = result.to_dict()
    data["log"]["per_component_score"]["a"] = 0.9
    data["e"]["score"] = 0.9
    assert result.components == {"a": 0.1}
    assert result.evals == {"e": {"score": 0.2}}


ROUND_TRIP = [
    TrustResult(0.8),
    TrustResult(0.0),
    TrustResult(1.0, explanation="sure"),
    TrustResult(0.3, explanation="e", components={"c1": 0.1, "c2": 0.9}, evals={"ev": {"score": 0.4}}),
    TrustResult(0.1, fallbacks=("append_warning",)),
    TrustResult.failed(ScorerDown("boom")),
    TrustResult(None, error="plain message"),
]


@pytest.mark.parametrize("result", ROUND_TRIP, ids=repr)
def test_from_dict_round_trips_to_dict(result: TrustResult) -> None:
    back = TrustResult.from_dict(result.to_dict())
    if result.error is not None and result.error_type is None:
        # to_dict names an unknown type "ScoringError"
        assert back == dataclasses.replace(result, error_type="ScoringError")
    else:
        assert back == result


def test_from_dict_reads_backend_shapes() -> None:
    assert TrustResult.from_dict({"confidence_score": 0.42}).trustworthiness_score == 0.42
    rag = TrustResult.from_dict({"trustworthiness": {"score": 0.61, "log": {}}, "response_helpfulness": {"score": 0.3}})
    assert rag.trustworthiness_score == 0.61
    assert rag.evals == {"response_helpfulness": {"score": 0.3}}
    # Cleanlab's documents show the score as a string in some outputs
    assert TrustResult.from_dict({"trustworthiness_score": "0.75"}).trustworthiness_score == 0.75
    assert TrustResult.from_dict({"trustworthiness_score": 0.5, "error": "slow"}).error == "slow"


@pytest.mark.parametrize("score", [1.5, -0.2, math.nan, True])
def test_from_dict_validates_the_score(score: object) -> None:
    with pytest.raises(ValueError):
        TrustResult.from_dict({"trustworthiness_score": score})


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(TypeError) as info:
        TrustResult.from_dict([0.5])  # type: ignore[arg-type]
    assert "list" in str(info.value)


def test_failed_records_error_type_and_message() -> None:
    result = TrustResult.failed(ScorerDown("backend 503"))
    assert result.trustworthiness_score is None
    assert result.error == "backend 503"
    assert result.error_type == "ScorerDown"
    assert not result.ok
    empty = TrustResult.failed(ScorerDown())
    assert empty.error == "ScorerDown" and empty.error_type == "ScorerDown"
    text = TrustResult.failed("no route")
    assert text.error == "no route" and text.error_type is None


def test_with_fallback_appends_without_changing_original() -> None:
    base = TrustResult(0.2)
    one = base.with_fallback("append_warning")
    two = one.with_fallback("raise")
    assert base.fallbacks == ()
    assert one.fallbacks == ("append_warning",)
    assert two.fallbacks == ("append_warning", "raise")
    assert two.trustworthiness_score == base.trustworthiness_score


@pytest.mark.parametrize("result", ROUND_TRIP, ids=repr)
def test_pickle_and_deepcopy_round_trip(result: TrustResult) -> None:
    assert pickle.loads(pickle.dumps(result)) == result
    assert copy.deepcopy(result) == result
    assert copy.copy(result) == result


def test_trust_result_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrustResult(0.5).trustworthiness_score = 0.9  # type: ignore[misc]


# --- ScoreRequest -------------------------------------------------------------------------


def test_score_request_needs_messages_or_prompt() -> None:
    with pytest.raises(ValueError) as info:
        ScoreRequest("an answer")
    assert "messages" in str(info.value) and "prompt" in str(info.value)


def test_score_request_response_must_be_text() -> None:
    with pytest.raises(TypeError) as info:
        ScoreRequest(None, prompt="q")  # type: ignore[arg-type]
    assert "NoneType" in str(info.value)


def test_prompt_text_of_a_prompt() -> None:
    assert ScoreRequest("a", prompt="What is 2+2?").prompt_text() == "What is 2+2?"


def test_prompt_text_of_messages_and_sequences_become_tuples() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    logprobs = [TokenLogprob("Paris", -0.1)]
    request = ScoreRequest("Paris", messages=messages, tools=[{"type": "function"}], response_logprobs=logprobs)
    assert request.prompt_text() == "system: Be brief.\nuser: Capital of France?"
    assert isinstance(request.messages, tuple) and isinstance(request.tools, tuple)
    assert request.response_logprobs == (TokenLogprob("Paris", -0.1),)
    assert messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]


def test_prompt_text_of_multi_part_content() -> None:
    messages = (
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this image"},
                {"type": "image_url", "image_url": {"url": "https://x/img.png"}},
                {"type": "text", "text": "in one word."},
                "and a bare string part",
            ],
        },
        {"role": "assistant", "content": None},
        {"content": "no role given"},
    )
    text = ScoreRequest("cat", messages=messages).prompt_text()
    assert text == "user: Describe this image\nin one word.\nand a bare string part\nassistant: \nuser: no role given"
    assert "https://x/img.png" not in text


def test_chat_function_tool_reads_both_shapes_and_refuses_built_in_tools() -> None:
    from tlm_hooks.types import chat_function_tool

    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    chat = {"type": "function", "function": {"name": "weather", "parameters": schema, "description": None}}
    flat = {"type": "function", "name": "weather", "parameters": schema, "strict": True, "extra": 1}
    assert chat_function_tool(chat) == {"type": "function", "function": {"name": "weather", "parameters": schema}}
    assert chat_function_tool(flat) == {
        "type": "function",
        "function": {"name": "weather", "parameters": schema, "strict": True},
    }
    assert chat_function_tool({"type": "web_search_preview"}) is None
    assert chat_function_tool({"type": "function", "function": {"parameters": schema}}) is None  # no name
    assert chat_function_tool("weather") is None
    assert flat["extra"] == 1 and chat["function"]["description"] is None  # inputs untouched
