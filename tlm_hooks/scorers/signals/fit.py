"""Fit long prompts into a judge's context: keep the start and the end, mark the cut, and keep
the last user turn (the question) whole wherever it fits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...types import ScoreRequest, content_text

__all__ = ["QUESTION_CHARS", "ANSWER_CHARS", "SAMPLE_PROMPT_CHARS", "cut", "fit_question", "fit_messages"]

# Characters of the question and of the answer shown in one judge prompt (self-reflection,
# agreement checks): together ~2k tokens, which fits small local judges (2,048-token window).
QUESTION_CHARS = 4000
ANSWER_CHARS = 4000
# The conversation re-asked for consistency samples when the whole one overflows the judge.
SAMPLE_PROMPT_CHARS = 6000
_MARKER_ROOM = 40  # "\n[… 1,234,567 characters cut …]\n" and then some


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start and end around a marker
    saying how many characters were cut (the result is at most ``limit`` long)."""
    if len(text) <= limit:
        return text
    room = max(0, limit - _MARKER_ROOM)
    head = room // 2
    tail = room - head
    end = text[len(text) - tail :] if tail else ""
    return f"{text[:head]}\n[… {len(text) - head - tail:,} characters cut …]\n{end}"


def _last_user(roles: Sequence[str]) -> int:
    for i in range(len(roles) - 1, -1, -1):
        if roles[i] == "user":
            return i
    return len(roles) - 1


def fit_question(request: ScoreRequest, limit: int = QUESTION_CHARS) -> tuple[str, int]:
    """The request's input as one text of at most ``limit`` characters, and its full length.

    The last user turn keeps at least two thirds of the room (its own start and end when
    longer); what comes before it (context, system prompt, earlier turns) and after it (tool
    results) share the rest, each cut in the middle.
    """
    context = f"Context:\n{request.context}\n\n" if request.context else ""
    lines = request.prompt_lines()
    full = context + "\n".join(lines)
    if len(full) <= limit:
        return full, len(full)
    roles = [str(m.get("role", "user")) for m in request.messages or ()] or ["user"]
    last = _last_user(roles)
    before = context + "\n".join(lines[:last])
    after = "\n".join(lines[last + 1 :])
    turn = cut(lines[last], max(limit * 2 // 3, limit - len(before) - len(after) - 2))
    room = max(0, limit - len(turn) - 2)
    after_part = cut(after, room // 3) if after else ""
    before_part = cut(before, room - len(after_part)) if before else ""
    parts = [part for part in (before_part, turn, after_part) if part]
    return "\n".join(parts), len(full)


def _with_text(message: Mapping[str, Any], text: str) -> dict[str, Any]:
    return {**message, "content": text}


def fit_messages(messages: Sequence[Mapping[str, Any]], limit: int = SAMPLE_PROMPT_CHARS) -> list[dict[str, Any]]:
    """``messages`` within about ``limit`` characters of content: system messages (cut), the
    last user turn (cut to half the room if longer) and what follows it, and as many of the
    latest earlier turns as fit whole; a note says how many turns were left out."""
    texts = [content_text(m.get("content")) for m in messages]
    if sum(map(len, texts)) <= limit:
        return [dict(m) for m in messages]
    roles = [str(m.get("role", "user")) for m in messages]
    last = _last_user(roles)
    turn = _with_text(messages[last], cut(texts[last], limit // 2))
    following = [_with_text(messages[i], cut(texts[i], limit // 8)) for i in range(last + 1, len(messages))]
    room = limit - len(turn["content"]) - sum(len(m["content"]) for m in following)
    systems = [i for i in range(last) if roles[i] in ("system", "developer")]
    share = max(0, room // 3) // max(1, len(systems))
    head = [_with_text(messages[i], cut(texts[i], share)) for i in systems]
    room -= sum(len(m["content"]) for m in head)
    history: list[dict[str, Any]] = []
    earlier = [i for i in range(last) if i not in systems]
    for i in reversed(earlier):
        if len(texts[i]) > room:
            break
        history.insert(0, dict(messages[i]))
        room -= len(texts[i])
    dropped = len(earlier) - len(history)
    rest = [*history, turn, *following]
    if dropped:
        note = f"[… {dropped} earlier message{'s' if dropped != 1 else ''} cut …]\n"
        rest[0] = _with_text(rest[0], note + content_text(rest[0].get("content")))
    return [*head, *rest]
