"""Read a judge's verdict (a word, a letter or a 0-10 number) as a probability of "correct".

Text parsing never raises: what cannot be read is ``None`` (the caller counts it as uncertain).
Where the judge returned token logprobs, the verdict is the probability mass on "correct"
tokens relative to all verdict tokens at the verdict's position.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

from ...types import TokenLogprob

__all__ = ["VerdictKind", "parse_verdict", "verdict_from_logprobs", "token_value", "UNCERTAIN"]

VerdictKind = Literal["word", "letter", "scale"]
UNCERTAIN = 0.5
_MIN_MASS = 0.05  # below this much probability on verdict tokens, trust the text instead

_POSITIVE = frozenset({"yes", "correct", "true", "right", "accurate", "valid", "agree", "same", "consistent"})
_NEGATIVE = frozenset(
    {"no", "incorrect", "false", "wrong", "inaccurate", "invalid", "disagree", "different", "inconsistent"}
)
_UNSURE = frozenset({"unsure", "uncertain", "unknown", "maybe", "unclear", "perhaps"})
_NEGATORS = frozenset({"not", "isn't", "isnt", "never", "hardly"})
_LETTERS = {"a": 1.0, "b": 0.0, "c": UNCERTAIN}


def _word_value(word: str) -> float | None:
    if word in _POSITIVE:
        return 1.0
    if word in _NEGATIVE:
        return 0.0
    if word in _UNSURE:
        return UNCERTAIN
    return None


def _parse_words(text: str) -> float | None:
    words = re.findall(r"[a-z']+", text.lower())[:12]
    for i, word in enumerate(words):
        value = _word_value(word)
        if value is None:
            continue
        if value != UNCERTAIN and i > 0 and words[i - 1] in _NEGATORS:
            return 1.0 - value
        return value
    return None


def _parse_letter(text: str) -> float | None:
    match = re.search(r"(?:^|[\s(\[:*])([ABCabc])(?=$|[).\]:*,]|\s+[-–—(])", text.strip())
    if match and (match.group(1).isupper() or text.strip().strip("().:*[] ").lower() in _LETTERS):
        return _LETTERS[match.group(1).lower()]
    return _parse_words(text)


def _parse_scale(text: str) -> float | None:
    match = re.search(r"(?<![\w.])(\d+(?:\.\d+)?)(\s*%|\s*/\s*10\b|\s*/\s*100\b|\s*out of\s*\d+)?", text)
    if not match:
        return _parse_words(text)
    value = float(match.group(1))
    suffix = (match.group(2) or "").replace(" ", "")
    if suffix == "%" or suffix.endswith("100"):
        value /= 100
    elif value <= 10:
        value /= 10
    elif value <= 100:
        value /= 100
    else:
        return None
    return min(1.0, max(0.0, value))


def parse_verdict(text: str, kind: VerdictKind) -> float | None:
    """The verdict in ``text`` as P(correct) in [0, 1]; ``None`` when none can be read."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        if kind == "letter":
            return _parse_letter(text)
        if kind == "scale":
            return _parse_scale(text)
        return _parse_words(text)
    except Exception:  # a parser bug must not break scoring
        return None


def token_value(token: str, kind: VerdictKind) -> float | None:
    """The verdict one whole token stands for (``" Yes"`` → 1.0), else ``None``."""
    cleaned = token.strip().strip("*()[].:,'\"").lower()
    if not cleaned:
        return None
    if kind == "letter":
        return _LETTERS.get(cleaned) if token.strip().strip("*()[].:,").isupper() else _word_value(cleaned)
    if kind == "scale":
        if cleaned.isdigit() and int(cleaned) <= 10:
            return int(cleaned) / 10
        return None
    return _word_value(cleaned)


def verdict_from_logprobs(logprobs: Sequence[TokenLogprob] | None, kind: VerdictKind) -> float | None:
    """Expected verdict at the first token that is a verdict, weighted by its alternatives'
    probabilities (``top_logprobs``); ``None`` when no such token or too little mass."""
    for position, entry in enumerate(logprobs or ()):
        if token_value(entry.token, kind) is None:
            continue
        if kind == "scale" and position + 1 < len(logprobs or ()):
            following = (logprobs or ())[position + 1].token
            if following[:1].isdigit():  # "10", "75": a multi-token number; read the text instead
                return None
        options = dict(entry.top_logprobs)
        options.setdefault(entry.token, entry.logprob)
        mass = weighted = 0.0
        for token, logprob in options.items():
            value = token_value(token, kind)
            if value is None or not math.isfinite(logprob):
                continue
            p = math.exp(min(0.0, logprob))
            mass += p
            weighted += p * value
        if mass < _MIN_MASS:
            return None
        return weighted / mass
    return None
