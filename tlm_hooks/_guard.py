"""Recursion guard: calls made while tlm-hooks is scoring or acting are not hooked again.

A leaf module (imports only the standard library): the hooks, the judge backends in
:mod:`tlm_hooks.llm` and the integrations all read it without importing each other."""

from __future__ import annotations

import contextvars
from typing import Any

__all__ = ["unhooked", "is_unhooked"]

_UNHOOKED: contextvars.ContextVar[bool] = contextvars.ContextVar("tlm_hooks_unhooked", default=False)


class unhooked:  # noqa: N801 - used like a function: `with unhooked(): ...`
    """Within this block (and tasks it starts) hooked clients behave as if unpatched."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _UNHOOKED.set(True)

    def __exit__(self, *exc_info: Any) -> None:
        _UNHOOKED.reset(self._token)


def is_unhooked() -> bool:
    """True inside :func:`unhooked`."""
    return _UNHOOKED.get()
