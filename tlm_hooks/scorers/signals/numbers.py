"""Numbers in answers: digits and English number words, compared as numbers."""

from __future__ import annotations

import math
import re

__all__ = ["extract_numbers", "committed_number", "same_number"]

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_WORDS = "|".join(sorted([*_UNITS, *_TENS, *_SCALES], key=len, reverse=True))
_PATTERN = re.compile(
    rf"(?P<num>[-+]?(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?(?:/\d+)?%?)"
    rf"|(?P<words>\b(?:{_WORDS})(?:[\s-]+(?:and[\s-]+)?(?:{_WORDS}))*\b)",
    re.IGNORECASE,
)


def _words_value(text: str) -> float | None:
    total, current = 0, 0
    for word in re.split(r"[\s-]+", text.lower()):
        if word == "and" or not word:
            continue
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(1, current) * 100
        elif word in _SCALES:
            total += max(1, current) * _SCALES[word]
            current = 0
    return float(total + current)


def _num_value(text: str) -> float | None:
    text = text.replace(",", "")
    percent = text.endswith("%")
    text = text.rstrip("%")
    try:
        if "/" in text:
            top, bottom = text.split("/")
            value = float(top) / float(bottom)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value / 100 if percent else value


def _located(text: str) -> list[tuple[int, float]]:
    out = []
    for match in _PATTERN.finditer(text):
        value = _num_value(match["num"]) if match["num"] else _words_value(match["words"])
        if value is not None and math.isfinite(value):
            out.append((match.start(), value))
    return out


def extract_numbers(text: str) -> list[float]:
    """Every number in ``text`` in order: ``"4"``, ``"4.0"``, ``"1,000"``, ``"3/4"``, ``"four"``."""
    return [value for _, value in _located(text)]


# "a + b", "7 times 8", "12 divided by 4": a restated calculation, not a result
_OPERATION = re.compile(
    r"\d[\d,.]*\s*(?:[-+*/×÷x]|plus|minus|times|multiplied by|divided by)\s*\d[\d,.]*",
    re.IGNORECASE,
)


def committed_number(text: str, operands: frozenset[float] = frozenset()) -> float | None:
    """The number an answer settles on, or ``None``: what follows its last ``=`` if anything
    does, else the first number that is neither inside a restated calculation nor one of the
    question's ``operands`` (those count only when nothing else is left)."""
    located = _located(_OPERATION.sub(lambda m: " " * len(m.group(0)), text))
    if not located:
        located = _located(text)
        return located[-1][1] if located else None
    equals = text.rfind("=")
    after = [(pos, value) for pos, value in located if pos > equals] if equals >= 0 else []
    pool = after or located
    fresh = [value for _, value in pool if not any(same_number(value, op) for op in operands)]
    return (fresh or [value for _, value in pool])[0]


def same_number(a: float, b: float) -> bool:
    """Equal up to float rounding."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
