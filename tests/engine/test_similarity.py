"""Model-free agreement: numbers as numbers, words, code, labels; measure mapping."""

from __future__ import annotations

import pytest

from tlm_hooks.scorers.signals.consistency import method_for
from tlm_hooks.scorers.signals.numbers import extract_numbers
from tlm_hooks.scorers.signals.similarity import agreement, code_similarity, extract_label, lexical_overlap


@pytest.mark.parametrize("other", ["4", "4.0", "four", "The answer is 4.", "2 + 2 = 4", "It's four."])
def test_numbers_compare_as_numbers(other: str) -> None:
    assert agreement("2+2 is 4", other, "auto") == 1.0


@pytest.mark.parametrize("other", ["17", "5", "five", "2 + 2 = 5"])
def test_different_numbers_disagree(other: str) -> None:
    assert agreement("2+2 is 4", other, "auto") == 0.0


def test_number_extraction() -> None:
    assert extract_numbers("1,000 and 3/4 and twenty-one and 50% and -2.5") == [1000.0, 0.75, 21.0, 0.5, -2.5]


def test_names_compare_by_the_name_not_the_sentence() -> None:
    assert agreement("Paris", "The capital is Paris.", "auto") == 1.0
    assert lexical_overlap("Paris", "The capital is Paris.") < 1.0
    assert agreement("Paris", "Berlin", "auto") == 0.0
    assert lexical_overlap("the pancreas", "The pancreas.") == 1.0


def test_answers_without_names_or_numbers_use_word_overlap() -> None:
    a, b = "it is made of glass and sand", "glass, mostly sand and soda"
    assert agreement(a, b, "auto") == pytest.approx(lexical_overlap(a, b))


def test_code_similarity_ignores_comments_and_whitespace() -> None:
    a = "def f(x):\n    return x + 1  # add one"
    b = "```python\ndef f(x):\n  return x + 1\n```"
    assert code_similarity(a, b) == 1.0
    assert code_similarity(a, "print('hello world')") < 0.5


def test_labels() -> None:
    labels = ["positive", "negative", "neutral"]
    assert extract_label("Negative", labels) == "negative"
    assert extract_label("I think this is positive overall.", labels) == "positive"
    assert extract_label("no idea", labels) is None
    assert agreement("positive", "The sentiment is positive.", "label", labels) == 1.0
    assert agreement("positive", "negative", "label", labels) == 0.0
    assert agreement("banana", "banana", "label", labels) == 0.0  # not a label: no agreement


@pytest.mark.parametrize(
    ("measure", "task", "labels", "method", "noted"),
    [
        (None, "default", None, "auto", False),
        ("string", "default", None, "lexical", False),
        ("semantic", "default", None, "llm", False),
        ("discrepancy", "default", None, "llm", False),
        ("code", "default", None, "code", False),
        ("embedding", "default", None, "lexical", True),
        ("embedding_large", "default", None, "lexical", True),
        (None, "code_generation", None, "code", False),
        ("semantic", "classification", ["a", "b"], "label", False),
    ],
)
def test_similarity_measure_mapping(measure, task, labels, method, noted) -> None:
    got, note = method_for(measure, task, labels)
    assert got == method and (note is not None) == noted


@pytest.mark.parametrize(
    ("text", "settles_on"),
    [
        ("7 + 5 = 12", 12.0),
        ("The sum of 7 and 5 is 12.", 12.0),  # the question's operands are passed over
        ("It is 12. Because 7 + 5 = 12.", 12.0),
        ("Seven plus five makes twelve.", 12.0),
        ("5", 5.0),  # only an operand is left: it counts
        ("no number at all", None),
    ],
)
def test_committed_number_skips_restated_calculations_and_operands(text: str, settles_on: float | None) -> None:
    from tlm_hooks.scorers.signals.numbers import committed_number

    assert committed_number(text, frozenset({7.0, 5.0})) == settles_on


def test_a_wrong_answer_that_repeats_an_operand_does_not_agree_with_the_worked_result() -> None:
    question = "What is 2 + 3?"
    # the alternative mentions 3 (an operand) but settles on 5: no agreement with the answer "3"
    assert agreement("The answer is 3.", "2 + 3 = 5", "auto", question=question) == 0.0
    assert agreement("The answer is 5.", "Adding 2 and 3 gives 5.", "auto", question=question) == 1.0
    assert agreement("The answer is 5.", "Adding 2 and 3 gives 6.", "auto", question=question) == 0.0
