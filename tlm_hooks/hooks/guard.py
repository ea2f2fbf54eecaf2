"""Recursion guard: calls made while tlm-hooks is scoring or acting are not hooked again."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["unhooked", "is_unhooked"]

_UNHOOKED: contextvars.ContextVar[bool] = contextvars.ContextVar("tlm_hooks_unhooked", default=False)


@contextmanager
def unhooked() -> Iterator[None]:
    """Within this block (and tasks it starts) hooked clients behave as if unpatched."""
    token = _UNHOOKED.set(True)
    try:
        yield
    finally:
        _UNHOOKED.reset(token)


def is_unhooked() -> bool:
    """True inside :func:`unhooked`."""
    return _UNHOOKED.get()
