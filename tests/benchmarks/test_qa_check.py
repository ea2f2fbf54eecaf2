"""The benchmark's answer checker and dataset: numbers, aliases, labels, and the file's shape."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> ModuleType:
    """Load a benchmark script by path under a unique name (``build``/``check`` are common names)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_qa_build = _load("tlm_bench_qa_build", ROOT / "benchmarks" / "qa" / "build.py")
_qa_check = _load("tlm_bench_qa_check", ROOT / "benchmarks" / "qa" / "check.py")
build = _qa_build.build
check, extract_numbers, final_number, normalize = (
    _qa_check.check,
    _qa_check.extract_numbers,
    _qa_check.final_number,
    _qa_check.normalize,
)

NUM = {"check": "number", "answer": "12", "question": "What is 7 + 5?"}
CAPITAL = {"check": "alias", "answer": "Brasília", "aliases": ["Brasília", "Brasilia"]}
PRIME = {
    "check": "label",
    "answer": "yes",
    "labels": {
        "yes": ["yes", "true", "correct", "is prime", "is a prime"],
        "no": ["no", "false", "incorrect", "not prime", "not a prime", "composite", "is not"],
    },
}
SENTIMENT = {"check": "label", "answer": "negative", "labels": {"positive": ["positive"], "negative": ["negative"]}}


@pytest.mark.parametrize(
    "text",
    ["12", "12.", "The answer is 12.", "7 + 5 = 12", "7+5=12", "7 plus 5 is 12", "twelve", "It is 12.0",
     "**12**", "The sum of 7 and 5 is 12"],
)  # fmt: skip
def test_number_correct(text: str) -> None:
    assert check(NUM, text).correct, text


@pytest.mark.parametrize("text", ["13", "7 + 5 = 13", "The answer is 1 2", "I don't know", "", "7 + 5", "120"])
def test_number_incorrect(text: str) -> None:
    assert not check(NUM, text).correct, text


def test_number_words_and_separators() -> None:
    assert final_number("two hundred and six bones") == 206
    assert final_number("twenty-four hours") == 24
    assert final_number("There are 1,000 grams in a kilogram.") == 1000
    assert final_number("one thousand") == 1000
    assert final_number("no number here") is None
    assert [v for _, v in extract_numbers("8 legs and 2 eyes")] == [8, 2]
    assert final_number("45 - 12 = 33") == 33
    assert final_number("-3") == -3


def test_number_unparsed_is_reported() -> None:
    verdict = check(NUM, "I am not sure.")
    assert verdict == type(verdict)(False, None)


def test_alias_matching_ignores_case_accents_punctuation() -> None:
    assert check(CAPITAL, "The capital of Brazil is brasilia.").correct
    assert check(CAPITAL, "BRASÍLIA!").correct
    assert not check(CAPITAL, "Rio de Janeiro").correct
    # whole words only: "Rome" must not match inside "Romeo"
    rome = {"check": "alias", "answer": "Rome", "aliases": ["Rome"]}
    assert not check(rome, "Romeo").correct
    assert check(rome, "Rome.").correct


def test_label_earliest_and_longest_phrase_wins() -> None:
    assert check(PRIME, "Yes, 17 is prime.").correct
    assert check(PRIME, "17 is a prime number.").correct
    assert not check(PRIME, "No.").correct
    assert not check(PRIME, "17 is not a prime number.").correct
    assert check(PRIME, "17 is not a prime number.").parsed == "no"
    assert check(PRIME, "Maybe.").parsed is None
    assert check(SENTIMENT, "Negative").correct
    assert not check(SENTIMENT, "The sentiment is positive, not negative.").correct


def test_normalize() -> None:
    assert normalize("Bogotá, D.C.") == " bogota d c "


def test_dataset_file_matches_builder_and_is_well_formed() -> None:
    built = build()
    path = ROOT / "benchmarks" / "qa" / "questions.jsonl"
    stored = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert stored == built
    assert 250 <= len(stored) <= 400
    assert len({q["id"] for q in stored}) == len(stored)
    assert {q["kind"] for q in stored} == {"arithmetic", "fact", "classification"}
    assert {q["difficulty"] for q in stored} == {"easy", "medium", "hard"}
    for q in stored:
        # every gold answer passes its own checker
        assert check(q, q["answer"]).correct, q
    arith = [q for q in stored if q["kind"] == "arithmetic"]
    for q in arith:
        expr = q["question"].removeprefix("What is ").rstrip("?")
        assert str(eval(expr)) == q["answer"], q  # noqa: S307 - our own generated expressions
