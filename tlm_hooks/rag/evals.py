"""`Eval`: one RAG criterion a judge model checks, and the four default ones."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidOptionError

__all__ = ["Eval", "DEFAULT_EVALS", "EVAL_KEYS", "RESERVED_NAMES", "coerce_evals"]

EVAL_KEYS: tuple[str, ...] = ("name", "criteria", "query_identifier", "context_identifier", "response_identifier")
# keys of a result that are not evals
RESERVED_NAMES: frozenset[str] = frozenset({"trustworthiness", "response"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_IDENTIFIER = 80


@dataclass(frozen=True)
class Eval:
    """A criterion the judge checks on a RAG answer, read as a score in [0, 1].

    ``name`` keys the score in results (letters, digits and ``_``, not starting with a digit).
    ``criteria`` says what passes, referring to the inputs by their identifiers. Each
    ``*_identifier`` is the heading the query, context or response is shown under in the judge's
    prompt; ``None`` leaves that input out. At least one identifier is required; an eval without
    ``response_identifier`` never sees the response (and runs before it exists in ``generate``).
    """

    name: str
    criteria: str
    query_identifier: str | None = None
    context_identifier: str | None = None
    response_identifier: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise InvalidOptionError(
                "name", self.name, "a name of letters, digits and '_' that does not start with a digit"
            )
        if self.name in RESERVED_NAMES:
            raise InvalidOptionError("name", self.name, f"any name except {', '.join(sorted(RESERVED_NAMES))}")
        if not isinstance(self.criteria, str) or not self.criteria.strip():
            raise InvalidOptionError("criteria", self.criteria, "a non-empty string")
        for key in EVAL_KEYS[2:]:
            value = getattr(self, key)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip() or "\n" in value or len(value) > _MAX_IDENTIFIER:
                raise InvalidOptionError(key, value, f"None or a one-line heading of 1 to {_MAX_IDENTIFIER} characters")
        if self.query_identifier is None and self.context_identifier is None and self.response_identifier is None:
            raise InvalidOptionError(
                "query_identifier",
                None,
                "at least one of query_identifier, context_identifier, response_identifier set",
            )

    @property
    def needs_response(self) -> bool:
        """Whether the judge is shown the response (else the eval runs without one)."""
        return self.response_identifier is not None

    def to_dict(self) -> dict[str, Any]:
        """The REST API's eval object."""
        return {key: getattr(self, key) for key in EVAL_KEYS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Eval:
        """An eval from a REST-style dict (``name``, ``criteria``, optional identifiers)."""
        if not isinstance(data, Mapping):
            raise InvalidOptionError("eval", data, "an Eval or a dict with 'name' and 'criteria'")
        unknown = sorted((k for k in data if k not in EVAL_KEYS), key=str)
        if unknown:
            raise InvalidOptionError(unknown[0], data[unknown[0]], f"keys {', '.join(EVAL_KEYS)}")
        for key in ("name", "criteria"):
            if key not in data:
                raise InvalidOptionError(key, None, "a non-empty string (required)")
        return cls(**{key: data[key] for key in EVAL_KEYS if key in data})


def coerce_evals(evals: Sequence[Eval | Mapping[str, Any] | str] | None) -> tuple[Eval, ...]:
    """``evals`` as a tuple of :class:`Eval` (``None`` → the defaults), names unique.

    An item is an :class:`Eval`, a REST-style dict, or the name of a default eval (also as
    ``{"name": ...}`` alone). Errors name the item: ``evals[1].criteria``.
    """
    if evals is None:
        return DEFAULT_EVALS
    if isinstance(evals, (str, bytes, Mapping)) or not isinstance(evals, Sequence):
        raise InvalidOptionError("evals", evals, "a list of Eval objects, eval dicts or default eval names")
    out: list[Eval] = []
    seen: set[str] = set()
    for i, item in enumerate(evals):
        try:
            one = item if isinstance(item, Eval) else _default_or_dict(item)
        except InvalidOptionError as exc:
            key = f"evals[{i}]" if exc.key == "eval" else f"evals[{i}].{exc.key}"
            raise InvalidOptionError(key, exc.value, exc.allowed) from None
        if one.name in seen:
            raise InvalidOptionError(f"evals[{i}].name", one.name, "a name not used by another eval")
        seen.add(one.name)
        out.append(one)
    return tuple(out)


def _default_or_dict(item: Any) -> Eval:
    name = item if isinstance(item, str) else item.get("name") if isinstance(item, Mapping) else None
    if isinstance(item, str) or (isinstance(item, Mapping) and set(item) == {"name"}):
        for ev in DEFAULT_EVALS:
            if ev.name == name:
                return ev
        defaults = ", ".join(ev.name for ev in DEFAULT_EVALS)
        allowed = f"a default eval's name ({defaults}), or an eval with criteria and an identifier"
        raise InvalidOptionError("eval" if isinstance(item, str) else "name", name, allowed)
    return Eval.from_dict(item)


# Our own wording of the four standard RAG checks. The identifiers are the headings the judge
# sees, and the criteria refer to the inputs by them.
DEFAULT_EVALS: tuple[Eval, ...] = (
    Eval(
        name="context_sufficiency",
        criteria=(
            "Imagine a reader who knows nothing except what the Document says. Pass only if that reader "
            "could give a full, correct answer to the Question from the Document alone, with every part "
            "of the Question covered by something the Document states outright. Fail if any part would "
            "have to be guessed, looked up elsewhere, or filled in from general knowledge."
        ),
        query_identifier="Question",
        context_identifier="Document",
    ),
    Eval(
        name="response_groundedness",
        criteria=(
            "Go through the statements of fact in the Response one at a time and look each one up in "
            "the Context. Pass only if every one of them is said in the Context or follows directly from "
            "what it says. Fail if the Response contradicts the Context or states anything the Context "
            "does not contain, even something true in the real world. Whether the Response covers the "
            "whole Query does not matter here, only whether what it says comes from the Context."
        ),
        query_identifier="Query",
        context_identifier="Context",
        response_identifier="Response",
    ),
    Eval(
        name="response_helpfulness",
        criteria=(
            "Pass if the AI Assistant Response takes on the User Query and offers an answer to it, "
            "whether or not that answer is right or complete: correctness is not judged here. Fail if "
            "the Response sidesteps the User Query, for example by declining, apologising instead of "
            "answering, saying it has no information, or changing the subject."
        ),
        query_identifier="User Query",
        response_identifier="AI Assistant Response",
    ),
    Eval(
        name="query_ease",
        criteria=(
            "Pass if the User Request is easy to make sense of and a capable assistant could reasonably "
            "handle it: a plain question or instruction, or ordinary small talk. Fail if what is wanted "
            "is hard to work out, if it asks for something convoluted or many-layered, looks built to "
            "trip the assistant up, is odd or nonsensical, or sounds angry or fed up. The assistant is "
            "assumed to know the user, the field's jargon and the facts it needs, so a request that "
            "leans on unexplained names or earlier conversation is not a failure for that reason alone."
        ),
        query_identifier="User Request",
    ),
)
