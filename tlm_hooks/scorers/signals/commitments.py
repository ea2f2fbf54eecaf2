"""What a free-text answer commits to: an option the question offered, or the names it gives.

Word overlap between two answers mostly measures how much of the question both restate ("The
capital of Australia is Sydney" and "... is Canberra" share most of their words). These helpers
find the part that differs between a right and a wrong answer, with case and accents folded.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = [
    "fold", "normalize", "last_user_turn", "offered_options", "asks_yes_no", "first_named", "chosen_option",
    "leading_yes_no", "question_words", "named_entities", "novel_words",
]  # fmt: skip

# words that start sentences: never a name on their own
_COMMON = frozenset(
    "a an the it its this that these those there here yes no not however therefore so thus in on at "
    "for to of and but or as if when while because although also i we you he she they my our your "
    "his her their me us them what which who whom where why how is are was were be been do does did "
    "can could would should will may might must shall answer note sure well okay ok hello hi let "
    "first second third finally then one some any all each every both either neither".split()
)
_PARTICLES = frozenset("of de da do del la le du von van der den di y and the".split())
_AUXILIARY = re.compile(
    r"^(is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|may|might|must)\b", re.I
)
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_NEGATION = re.compile(
    r"\b(no|not|never|none|isn['’]?t|aren['’]?t|wasn['’]?t|doesn['’]?t|don['’]?t|cannot|can['’]?t)\b"
)
_OPTION_LIST = re.compile(r"((?:[^\W\d_][\w-]*\s*,\s*)*[^\W\d_][\w-]*)\s*,?\s+or\s+([^\W\d_][\w-]*)", re.I)
_ROLE_LINE = re.compile(r"^(system|user|assistant|developer|tool):\s?", re.M)


def fold(text: str) -> str:
    """Lower case without accents: ``"São Paulo"`` → ``"sao paulo"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def last_user_turn(question: str) -> str:
    """The last ``user:`` turn of a prompt written as ``role: content`` lines (else all of it)."""
    starts = list(_ROLE_LINE.finditer(question))
    for i in range(len(starts) - 1, -1, -1):
        if starts[i].group(1) == "user":
            end = starts[i + 1].start() if i + 1 < len(starts) else len(question)
            return question[starts[i].end() : end].strip()
    return question


def offered_options(question: str) -> tuple[str, ...]:
    """The choices the question's last turn offers by name (``"positive or negative"``,
    ``"A, B or C"``, ``"yes or no"``), folded; ``()`` when it offers none."""
    found: list[str] = []
    for match in _OPTION_LIST.finditer(last_user_turn(question)):
        head = [part.strip() for part in match.group(1).split(",")]
        # only the word right before "or" belongs to the choice unless commas make a list
        choices = head if len(head) > 1 else [head[0].split()[-1]]
        for choice in [*choices, match.group(2)]:
            folded = fold(choice)
            if folded and (folded in ("yes", "no") or folded not in _COMMON) and folded not in found:
                found.append(folded)
    return tuple(found) if len(found) >= 2 else ()


def asks_yes_no(question: str) -> bool:
    """Whether the last turn has a question starting like a yes/no one ("Is ...?", "Does ...?")."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", last_user_turn(question)) if s.strip()]
    return any(s.endswith("?") and _AUXILIARY.match(s) for s in sentences)


def normalize(text: str) -> str:
    """Lower case, punctuation to spaces (keeping decimal points), single spaces."""
    text = re.sub(r"(?<!\d)[.,](?!\d)|[^\w\s.,]", " ", text.lower())
    return " ".join(text.split())


def first_named(text: str, choices: Sequence[str]) -> int | None:
    """Index of the choice ``text`` names: the one it consists of, else the one it mentions first
    (whole words; the longer on a tie), compared folded and without punctuation; else ``None``."""
    plain = normalize(fold(text))
    best: tuple[int, int, int] | None = None
    for index, choice in enumerate(choices):
        wanted = normalize(fold(choice))
        if not wanted:
            continue
        if wanted == plain:
            return index
        match = re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", plain)
        if match and (best is None or (match.start(), -len(wanted)) < best[:2]):
            best = (match.start(), -len(wanted), index)
    return best[2] if best else None


def chosen_option(answer: str, options: Sequence[str]) -> str | None:
    """The option ``answer`` commits to (:func:`first_named`). With the options yes/no, an answer
    naming neither counts as "no" when it negates, else "yes"."""
    index = first_named(answer, options)
    if index is not None:
        return options[index]
    if set(options) == {"yes", "no"} and answer.strip():
        return "no" if _NEGATION.search(fold(answer)) else "yes"
    return None


def leading_yes_no(answer: str) -> str | None:
    """``"yes"``/``"no"`` when the answer starts with that word, else ``None``."""
    first = _WORD.search(answer)
    word = fold(first.group(0)) if first else ""
    return word if word in ("yes", "no") else None


def question_words(question: str) -> frozenset[str]:
    """The question's folded words (what :func:`named_entities` and :func:`novel_words` leave out)."""
    return frozenset(fold(w) for w in _WORD.findall(question))


def named_entities(answer: str, asked: frozenset[str]) -> frozenset[str]:
    """The folded words of the names ``answer`` gives that the question (``asked``: its
    :func:`question_words`) does not: its capitalised words, minus common words and name
    particles ("de", "of", "van", ...)."""
    capitalised = (fold(w) for w in _WORD.findall(answer) if w[0].isupper())
    return frozenset(w for w in capitalised if w not in _COMMON and w not in _PARTICLES and w not in asked)


def novel_words(answer: str, asked: frozenset[str], stopwords: frozenset[str]) -> list[str]:
    """The answer's folded content words that the question (``asked``) does not contain."""
    return [w for w in (fold(x) for x in _WORD.findall(answer)) if w not in asked and w not in stopwords]
