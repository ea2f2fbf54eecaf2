"""How much two answers agree, without calling a model: numbers, words, code, labels."""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .commitments import (
    asks_yes_no,
    chosen_option,
    first_named,
    leading_yes_no,
    named_entities,
    normalize,
    novel_words,
    offered_options,
    question_words,
)  # fmt: skip
from .numbers import committed_number, extract_numbers, same_number

__all__ = [
    "normalize", "lexical_overlap", "numeric_agreement", "option_agreement", "entity_agreement",
    "Question", "answer_agreement", "answer_agreements", "code_similarity", "extract_label", "agreement",
    "agreements",
]  # fmt: skip

_STOPWORDS = frozenset(
    "a an the is are was were be been of to in on at for and or it its this that as by with "
    "answer answers so which what i my we".split()
)
_SHORT = 40  # words: a response at most this long is compared by its final number when it has one


def _words(text: str) -> list[str]:
    words = normalize(text).split()
    content = [w for w in words if w not in _STOPWORDS]
    return content or words


def lexical_overlap(a: str, b: str) -> float:
    """Token F1 between the content words of ``a`` and ``b`` (1.0 for two empty answers)."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return 1.0 if not wa and not wb else 0.0
    return _f1(wa, wb)


def _f1(wa: Sequence[str], wb: Sequence[str]) -> float:
    common = sum((Counter(wa) & Counter(wb)).values())
    if not common:
        return 0.0
    precision, recall = common / len(wa), common / len(wb)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class Question:
    """What the comparisons read from the question, read once per score."""

    options: tuple[str, ...]  # the choices its last turn offers by name
    yes_no: bool  # it asks a yes/no question
    operands: frozenset[float]  # the numbers it states
    words: frozenset[str]  # its folded words

    @classmethod
    def read(cls, question: str) -> Question:
        return cls(offered_options(question), asks_yes_no(question), frozenset(extract_numbers(question)),
                   question_words(question))  # fmt: skip


def _as_question(question: str | Question) -> Question:
    return question if isinstance(question, Question) else Question.read(question)


def numeric_agreement(response: str, alternative: str, question: str | Question = "") -> float | None:
    """For a short response with a number: 1.0 if both answers settle on the same number
    (compared as numbers, so ``4``, ``4.0`` and ``four`` agree; numbers restated from the
    ``question`` are passed over), else 0.0; ``None`` if not applicable."""
    if len(response.split()) > _SHORT:
        return None
    operands = _as_question(question).operands
    target = committed_number(response, operands)
    other = committed_number(alternative, operands)
    if target is None or other is None:
        return None
    return 1.0 if same_number(target, other) else 0.0


def option_agreement(response: str, alternative: str, question: str | Question) -> float | None:
    """When the question offers named choices ("positive or negative", "yes or no"): 1.0 if both
    answers pick the same one, 0.0 if they differ or only one picks; for a yes/no question that
    names no choices, compared only when both answers start with yes or no; else ``None``."""
    asked = _as_question(question)
    if asked.options:
        mine, theirs = chosen_option(response, asked.options), chosen_option(alternative, asked.options)
        if mine is None and theirs is None:
            return None
        return 1.0 if mine == theirs else 0.0
    if asked.yes_no:
        mine, theirs = leading_yes_no(response), leading_yes_no(alternative)
        if mine is not None and theirs is not None:
            return 1.0 if mine == theirs else 0.0
    return None


def entity_agreement(response: str, alternative: str, question: str | Question) -> float | None:
    """For a short response: how far the names one answer gives (capitalised words the question
    lacks, case and accents folded) appear in the other, the better of the two directions;
    ``None`` when neither answer names anything new."""
    if len(response.split()) > _SHORT:
        return None
    asked = _as_question(question).words
    mine, theirs = named_entities(response, asked), named_entities(alternative, asked)
    if not mine and not theirs:
        return None
    my_words = set(novel_words(response, asked, _STOPWORDS)) | mine
    their_words = set(novel_words(alternative, asked, _STOPWORDS)) | theirs
    found = [len(names & words) / len(names) for names, words in ((mine, their_words), (theirs, my_words)) if names]
    return max(found)


def answer_agreement(response: str, alternative: str, question: str | Question = "") -> float:
    """Agreement of what two answers commit to: the choice the question offered, else the
    settled number, else the names given, else the words they add to the question's (word
    overlap of the whole answers when neither adds any)."""
    asked = _as_question(question)
    for measure in (option_agreement, numeric_agreement, entity_agreement):
        found = measure(response, alternative, asked)
        if found is not None:
            return found
    mine, theirs = novel_words(response, asked.words, _STOPWORDS), novel_words(alternative, asked.words, _STOPWORDS)
    if mine and theirs:
        return _f1(mine, theirs)
    return lexical_overlap(response, alternative)


def answer_agreements(response: str, alternatives: Sequence[str], question: str = "") -> list[float]:
    """:func:`answer_agreement` of ``response`` with each alternative, the question read once."""
    asked = Question.read(question)
    return [answer_agreement(response, alternative, asked) for alternative in alternatives]


def code_similarity(a: str, b: str) -> float:
    """Similarity of two code answers after dropping comments, fences and whitespace differences."""

    def clean(code: str) -> str:
        code = re.sub(r"```\w*", "", code)
        code = re.sub(r"(#|//)[^\n]*", "", code)
        return " ".join(code.split())

    x, y = clean(a), clean(b)
    if not x and not y:
        return 1.0
    return difflib.SequenceMatcher(None, x, y, autojunk=False).ratio()


def extract_label(text: str, labels: Sequence[str]) -> str | None:
    """The label ``text`` gives (:func:`~.commitments.first_named`: the whole text, else the
    label it mentions first), or ``None``."""
    index = first_named(text, labels)
    return None if index is None else labels[index]


def agreement(a: str, b: str, method: str, labels: Sequence[str] | None = None, question: str = "") -> float:
    """Agreement in [0, 1] by ``method``: ``auto`` (what the answers commit to, see
    :func:`answer_agreement`), ``lexical``, ``code``, ``label``."""
    if method == "label" and labels:
        la, lb = extract_label(a, labels), extract_label(b, labels)
        return 1.0 if la is not None and la == lb else 0.0
    if method == "code":
        return code_similarity(a, b)
    if method == "auto":
        return answer_agreement(a, b, question)
    return lexical_overlap(a, b)


def agreements(
    response: str, alternatives: Sequence[str], method: str, labels: Sequence[str] | None = None, question: str = ""
) -> list[float]:
    """:func:`agreement` of ``response`` with each alternative (the question read once)."""
    if method == "auto":
        return answer_agreements(response, alternatives, question)
    return [agreement(response, alternative, method, labels, question) for alternative in alternatives]
