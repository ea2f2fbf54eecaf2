"""What an answer commits to: offered choices, yes/no, names (case and accents folded)."""

from __future__ import annotations

import pytest

from tlm_hooks.scorers.signals.commitments import (
    asks_yes_no,
    chosen_option,
    first_named,
    fold,
    last_user_turn,
    named_entities,
    offered_options,
    question_words,
)
from tlm_hooks.scorers.signals.similarity import agreement, answer_agreement, answer_agreements

SYSTEM = "system: You are a helpful assistant. Answer briefly, in a few words.\n"


def asked(text: str) -> str:
    """A prompt as the engine writes it for the judge (``role: content`` lines)."""
    return f"{SYSTEM}user: {text}"


def test_fold_drops_case_and_accents() -> None:
    assert fold("São Paulo") == "sao paulo"
    assert fold("ZÜRICH") == "zurich"


def test_last_user_turn_skips_system_and_earlier_turns() -> None:
    prompt = "system: Pick tea or coffee.\nuser: hi\nassistant: hello\nuser: Is 5 even or odd?\nthanks"
    assert last_user_turn(prompt) == "Is 5 even or odd?\nthanks"
    assert last_user_turn("no roles here") == "no roles here"


@pytest.mark.parametrize(
    ("question", "options"),
    [
        ('Is the sentiment of this sentence positive or negative? "I love it"', ("positive", "negative")),
        ("Is 5 even or odd?", ("even", "odd")),
        ("Is 7 a prime number? Answer yes or no.", ("yes", "no")),
        ("Which is it: red, green or blue?", ("red", "green", "blue")),
        ("What is the capital of France?", ()),
        ("Are 2 or more people needed?", ()),
    ],
)
def test_offered_options(question: str, options: tuple[str, ...]) -> None:
    assert offered_options(asked(question)) == options


def test_options_in_the_system_prompt_are_not_the_questions() -> None:
    assert offered_options("system: Be formal or casual.\nuser: What is the capital of Peru?") == ()


def test_chosen_option_is_the_first_named_and_yes_no_reads_negation() -> None:
    assert chosen_option("The sentiment is positive, not negative.", ("positive", "negative")) == "positive"
    assert chosen_option("It is NEGATIVE.", ("positive", "negative")) == "negative"
    assert chosen_option("The answer is 5.", ("even", "odd")) is None
    assert chosen_option("No, 2 is not prime.", ("yes", "no")) == "no"
    assert chosen_option("7 is not a prime number.", ("yes", "no")) == "no"
    assert chosen_option("7 is a prime number.", ("yes", "no")) == "yes"


def test_asks_yes_no() -> None:
    assert asks_yes_no(asked("Is Paris in France?"))
    assert not asks_yes_no(asked("What is the capital of France?"))


def test_named_entities_leave_out_the_question_and_common_words() -> None:
    question = question_words(asked("What is the capital of Australia?"))
    assert named_entities("The capital of Australia is Sydney.", question) == {"sydney"}
    assert named_entities("Canberra, in the Australian Capital Territory.", question) >= {"canberra"}
    assert named_entities("It is Rio de Janeiro.", question_words(asked("Which city?"))) == {"rio", "janeiro"}
    assert named_entities("the answer is unknown", question) == frozenset()


def test_first_named_reads_whole_text_then_first_mention_folded() -> None:
    labels = ("Négatif", "positif", "très positif")
    assert first_named("negatif", labels) == 0  # accents and case folded
    assert first_named("Très positif!", labels) == 2  # the whole text is a label
    assert first_named("C'est très positif, pas négatif.", labels) == 2  # "très positif" starts first
    assert first_named("plutôt négatif que positif", labels) == 0  # the first mentioned
    assert first_named("positively", labels) is None  # whole words only
    assert first_named("", labels) is None


def test_comparing_with_the_question_read_once_gives_the_pairwise_agreements() -> None:
    question = asked("Is the sentence positive or negative? 'I loved it.'")
    samples = ["Positive.", "It is negative.", "Hard to say.", "positive, not negative"]
    assert answer_agreements("The sentence is positive.", samples, question) == [
        answer_agreement("The sentence is positive.", s, question) for s in samples
    ] == [1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("question", "response", "agrees", "differs"),
    [
        (
            "What is the capital of Australia?",
            "The capital of Australia is Canberra.",
            "Canberra is the capital city of Australia.",
            "The capital of Australia is Sydney.",
        ),
        ("What is the capital of Brazil?", "Brasília.", "The capital is Brasilia.", "São Paulo."),
        (
            'Is the sentiment of this sentence positive or negative? "Awful food."',
            "The sentiment of this sentence is negative.",
            "Negative.",
            "The sentiment of this sentence is positive.",
        ),
        ("Is 9 even or odd?", "9 is odd.", "It is an odd number.", "The answer is 9."),
        ("Is 7 a prime number? Answer yes or no.", "Yes, 7 is prime.", "7 is a prime number.", "No, it is not."),
        ("Is the sky green?", "No, it is blue.", "No.", "Yes, it is."),
    ],
)
def test_answers_agree_on_what_they_commit_to(question: str, response: str, agrees: str, differs: str) -> None:
    q = asked(question)
    assert answer_agreement(response, agrees, q) == 1.0
    assert answer_agreement(response, differs, q) == 0.0


def test_a_yes_no_question_without_yes_or_no_answers_falls_back_to_words() -> None:
    q = asked("Can you tell me the capital of Peru?")
    assert answer_agreement("The capital of Peru is Lima.", "Lima is the capital of Peru.", q) == 1.0
    assert answer_agreement("The capital of Peru is Lima.", "It is Cusco.", q) == 0.0


def test_long_answers_are_not_reduced_to_their_names() -> None:
    long = " ".join(["Berlin has many museums and parks."] * 8)
    other = " ".join(["Munich has many museums and parks."] * 8)
    question = asked("Tell me about a German city.")
    assert answer_agreement("Berlin.", "Munich.", question) == 0.0
    assert agreement(long, other, "auto", None, question) > 0.5
