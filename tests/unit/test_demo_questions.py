"""The demo's own check of right and wrong answers (no model)."""

from __future__ import annotations

import pytest

from tlm_hooks.demo import QUESTIONS, DemoQuestion, Tally, lowest_signal


@pytest.mark.parametrize(
    ("answer", "right"),
    [
        ("The square root of 1764 is 42.", True),
        ("It is forty-two.", True),
        ("The square root of 1764 is 176.", False),
        ("42.5", False),
        ("1420", False),
    ],
)
def test_numbers_must_match_whole(answer: str, right: bool) -> None:
    assert DemoQuestion("What is the square root of 1764?", ("42", "forty-two")).is_right(answer) is right


def test_names_are_folded_and_whole_words() -> None:
    tungsten = DemoQuestion("What is the chemical symbol for tungsten?", ("W",))
    assert tungsten.is_right("The chemical symbol for tungsten is W.")
    assert not tungsten.is_right("The chemical symbol for tungsten is Tungsten.")
    assert DemoQuestion("Capital of Brazil?", ("Brasília",)).is_right("brasilia")


def test_every_demo_question_has_accepted_answers() -> None:
    assert len(QUESTIONS) >= 6 and all(q.accepted for q in QUESTIONS)


def test_tally_counts_caught_and_kept() -> None:
    tally = Tally()
    for right, trusted in [(True, True), (True, False), (False, False), (False, True), (False, False)]:
        tally.add(right, trusted)
    assert (tally.right, tally.kept, tally.wrong, tally.caught) == (2, 1, 3, 2)


def test_lowest_signal_names_the_weakest_component() -> None:
    meta = {"log": {"per_component_score": {"token_probability": 0.7, "consistency": 0.1, "llm_calls": 6}}}
    assert lowest_signal(meta) == "consistency 0.10"
    assert lowest_signal({"log": {}}) == "-"
