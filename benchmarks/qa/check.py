"""Label a free-text answer to a benchmark question correct or incorrect.

``check(question, answer_text) -> Verdict(correct, parsed)``, where ``question`` is one line of
``questions.jsonl`` and ``parsed`` is what was read from the answer (``None`` = nothing usable,
which counts as incorrect). Checkers, chosen by ``question["check"]``:

- ``number``: the number the answer commits to is compared as a number with the gold answer.
  Digits (``1,234``, ``-3``, ``12.0``) and English number words (``twelve``, ``twenty-four``,
  ``two hundred and six``) are read. A restated expression (``7 + 5 = 12``, ``7 plus 5 is 12``)
  is skipped; then the first number after the last ``=`` wins, else the first number that is
  not one of the question's own numbers (else the first number).
- ``alias``: any accepted alias appears as a whole-word phrase in the answer (case, accents and
  punctuation ignored).
- ``label``: the label whose word or phrase appears *earliest* in the answer (the longest
  phrase wins a tie, so "not a prime" beats "a prime"); no label named = unparsed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Verdict", "check", "extract_numbers", "final_number", "normalize"]


@dataclass(frozen=True)
class Verdict:
    correct: bool
    parsed: str | None


def normalize(text: str) -> str:
    """Lowercase, accents stripped, every run of non-alphanumerics one space, padded with spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return " " + re.sub(r"[^0-9a-z]+", " ", text).strip() + " "


# -- numbers ---------------------------------------------------------------------------------------

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORDS = set(_UNITS) | set(_TENS) | set(_SCALES)

_BINARY = re.compile(
    r"-?\d[\d,]*(?:\.\d+)?\s*(?:[+*/×÷x-]|\bplus\b|\bminus\b|\btimes\b|\bmultiplied by\b|\bdivided by\b)\s*-?\d[\d,]*(?:\.\d+)?",
    re.IGNORECASE,
)


def _words_value(words: list[str]) -> int:
    total, current = 0, 0
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "and":
            continue
        elif word == "hundred":
            current = max(current, 1) * 100
        else:  # thousand / million
            total += max(current, 1) * _SCALES[word]
            current = 0
    return total + current


def extract_numbers(text: str) -> list[tuple[int, float]]:
    """Every number in ``text`` as ``(position, value)``, digits and English number words alike."""
    found: list[tuple[int, float]] = []
    run: list[str] = []
    run_start = -1

    def flush() -> None:
        nonlocal run, run_start
        while run and run[-1] == "and":
            run.pop()
        if run:
            found.append((run_start, float(_words_value(run))))
        run, run_start = [], -1

    for match in re.finditer(r"-?\d[\d,]*(?:\.\d+)?|[A-Za-z]+", text.replace("-", " - ")):
        token = match.group(0)
        low = token.lower()
        if low in _NUMBER_WORDS or (low == "and" and run):
            if not run:
                run_start = match.start()
            run.append(low)
            continue
        flush()
        if token[0].isdigit() or (token.startswith("-") and len(token) > 1):
            cleaned = token.rstrip(",")
            if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", cleaned):
                cleaned = cleaned.replace(",", "")
            elif "," in cleaned:
                cleaned = cleaned.split(",")[0]
            try:
                found.append((match.start(), float(cleaned)))
            except ValueError:
                pass
    flush()
    # "a - b" was spaced out above, so a leading "-" token never glues to a digit: handle "-3" here
    return _signed(text, found)


def _signed(text: str, found: list[tuple[int, float]]) -> list[tuple[int, float]]:
    spaced = text.replace("-", " - ")
    out = []
    for pos, value in found:
        before = spaced[:pos].rstrip()
        # a minus sign directly before a number that doesn't follow another number/word is a sign
        if before.endswith("-") and not re.search(r"[\w)]\s*-$", before):
            value = -value
        out.append((pos, value))
    return out


def final_number(text: str, exclude: frozenset[float] = frozenset()) -> float | None:
    """The number an answer commits to (see the module doc), or ``None``.

    Numbers in ``exclude`` (the question's own operands) are passed over while another remains,
    so "the sum of 7 and 5 is 12" reads as 12.
    """
    stripped = _BINARY.sub(" ", text)
    numbers = extract_numbers(stripped)
    if not numbers:
        numbers = extract_numbers(text)  # the answer was only an expression: take its last number
        return numbers[-1][1] if numbers else None
    cue = stripped.rfind("=")
    if cue >= 0 and any(pos >= cue for pos, _ in numbers):
        numbers = [(pos, value) for pos, value in numbers if pos >= cue]
    kept = [(pos, value) for pos, value in numbers if value not in exclude]
    return (kept or numbers)[0][1]


# -- labels ----------------------------------------------------------------------------------------


def _find_label(text: str, labels: Mapping[str, list[str]]) -> str | None:
    norm = normalize(text)
    best: tuple[int, int, str] | None = None  # (position, -length, label)
    for label, phrases in labels.items():
        for phrase in phrases:
            key = normalize(phrase)
            pos = norm.find(key)
            if pos >= 0:
                cand = (pos, -len(key), label)
                if best is None or cand < best:
                    best = cand
    return None if best is None else best[2]


def check(question: Mapping[str, Any], answer: str) -> Verdict:
    kind = question["check"]
    if kind == "number":
        operands = frozenset(v for _, v in extract_numbers(question.get("question", "")))
        value = final_number(answer, operands)
        if value is None:
            return Verdict(False, None)
        gold = float(question["answer"])
        shown = str(int(value)) if value == int(value) else str(value)
        return Verdict(abs(value - gold) < 1e-9 * max(1.0, abs(gold)), shown)
    if kind == "alias":
        norm = normalize(answer)
        for alias in question.get("aliases") or [question["answer"]]:
            if normalize(alias) in norm:
                return Verdict(True, alias)
        return Verdict(False, answer.strip()[:40] or None)
    if kind == "label":
        label = _find_label(answer, question["labels"])
        return Verdict(label == question["answer"], label)
    raise ValueError(f"unknown checker {kind!r}")
