"""Count the model requests and tokens spent inside a block of code (for one score)."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["Usage", "metered", "record_request", "current_usage"]


@dataclass
class Usage:
    """Model requests made, their tokens, and retries after failed attempts."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    # per judge model (when the caller names it): [requests, prompt tokens, completion tokens]
    by_model: dict[str, list[int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def add(
        self, prompt_tokens: int = 0, completion_tokens: int = 0, *, calls: int = 1, model: str | None = None
    ) -> None:
        """Record ``calls`` finished requests and their token counts (made to ``model``, if named)."""
        prompt, completion = max(0, int(prompt_tokens or 0)), max(0, int(completion_tokens or 0))
        with self._lock:
            self.calls += calls
            self.prompt_tokens += prompt
            self.completion_tokens += completion
            if model is not None:
                counts = self.by_model.setdefault(model, [0, 0, 0])
                counts[0] += calls
                counts[1] += prompt
                counts[2] += completion

    def add_retry(self) -> None:
        """Record one retried attempt."""
        with self._lock:
            self.retries += 1


_CURRENT: contextvars.ContextVar[Usage | None] = contextvars.ContextVar("tlm_hooks_usage", default=None)


@contextmanager
def metered() -> Iterator[Usage]:
    """Within this block (and tasks/threads it starts), backends record their requests here."""
    usage = Usage()
    token = _CURRENT.set(usage)
    try:
        yield usage
    finally:
        _CURRENT.reset(token)


def current_usage() -> Usage | None:
    """The innermost active meter, if any."""
    return _CURRENT.get()


def record_request(prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
    """Called by a backend after each successful model request."""
    usage = _CURRENT.get()
    if usage is not None:
        usage.add(prompt_tokens, completion_tokens)
