"""Verdict parsing: words, letters, numbers, garbage; logprob-weighted verdicts."""

from __future__ import annotations

import math

import pytest

from tlm_hooks.llm.base import Generation
from tlm_hooks.scorers.signals.reflection import read_check
from tlm_hooks.scorers.signals.verdict import parse_verdict, verdict_from_logprobs
from tlm_hooks.types import TokenLogprob


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("Yes", "word", 1.0),
        ("yes.", "word", 1.0),
        ("No, it is wrong", "word", 0.0),
        ("It is not correct.", "word", 0.0),
        ("The answer is incorrect", "word", 0.0),
        ("TRUE", "word", 1.0),
        ("false", "word", 0.0),
        ("I'm unsure", "word", 0.5),
        ("A", "letter", 1.0),
        ("(B) the answer is wrong", "letter", 0.0),
        ("Answer: C", "letter", 0.5),
        ("b.", "letter", 0.0),
        ("correct", "letter", 1.0),
        ("8", "scale", 0.8),
        ("7/10", "scale", 0.7),
        ("85%", "scale", 0.85),
        ("I'd say 3", "scale", 0.3),
        ("yes", "scale", 1.0),
    ],
)
def test_parses_words_letters_and_numbers(text: str, kind: str, expected: float) -> None:
    assert parse_verdict(text, kind) == pytest.approx(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize("garbage", ["", "   ", "banana", "A proposed answer", "\x00\xff", "12345", "¯\\_(ツ)_/¯"])
@pytest.mark.parametrize("kind", ["word", "letter", "scale"])
def test_garbage_is_unreadable_and_counts_as_uncertain(garbage: str, kind: str) -> None:
    value = parse_verdict(garbage, kind)  # type: ignore[arg-type]
    if kind == "scale" and garbage == "12345":
        assert value is None
    elif value is not None:  # a word or letter hidden in the garbage is fine, a crash is not
        assert 0.0 <= value <= 1.0
    check = read_check(Generation(garbage), kind)  # type: ignore[arg-type]
    assert 0.0 <= check.score <= 1.0
    if value is None:
        assert check.score == 0.5 and check.source == "unparsed"


def test_non_string_verdict_is_none() -> None:
    assert parse_verdict(None, "word") is None  # type: ignore[arg-type]


def _lp(token: str, p: float, alts: dict[str, float]) -> TokenLogprob:
    return TokenLogprob(token, math.log(p), tuple((t, math.log(q)) for t, q in alts.items()))


def test_logprob_mass_on_correct_tokens_is_the_verdict() -> None:
    # text says "yes", but the model was only 60:40 between yes and no
    tokens = (_lp("Yes", 0.6, {"Yes": 0.6, "No": 0.3, " no": 0.1}),)
    assert verdict_from_logprobs(tokens, "word") == pytest.approx(0.6)
    check = read_check(Generation("Yes", logprobs=tokens), "word")
    assert check.source == "logprobs" and check.score == pytest.approx(0.6)


def test_logprobs_skip_leading_non_verdict_tokens() -> None:
    tokens = (
        TokenLogprob("Answer", -0.1),
        TokenLogprob(":", -0.1),
        _lp(" B", 0.5, {" B": 0.5, " A": 0.25, " C": 0.25}),
    )
    # A=1, B=0, C=0.5 → 0.25*1 + 0.25*0.5 = 0.375
    assert verdict_from_logprobs(tokens, "letter") == pytest.approx(0.375)


def test_scale_logprobs_are_an_expected_value() -> None:
    tokens = (_lp("8", 0.5, {"8": 0.5, "6": 0.5}),)
    assert verdict_from_logprobs(tokens, "scale") == pytest.approx(0.7)


def test_multi_token_numbers_fall_back_to_text() -> None:
    tokens = (TokenLogprob("1", -0.1, (("1", -0.1),)), TokenLogprob("0", -0.1))
    assert verdict_from_logprobs(tokens, "scale") is None
    assert read_check(Generation("10", logprobs=tokens), "scale").score == pytest.approx(1.0)


def test_too_little_verdict_mass_falls_back_to_text() -> None:
    tokens = (TokenLogprob("yes", math.log(0.01), (("maybe", math.log(0.9)),)),)
    # "maybe" counts as uncertain; mass on verdict tokens = 0.91 → expected value, not text
    assert verdict_from_logprobs(tokens, "word") == pytest.approx((0.01 * 1 + 0.9 * 0.5) / 0.91)
    weak = (TokenLogprob("yes", math.log(0.01), (("banana", math.log(0.9)),)),)
    assert verdict_from_logprobs(weak, "word") is None
    assert read_check(Generation("yes", logprobs=weak), "word").source == "text"
