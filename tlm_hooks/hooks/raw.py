"""Proxy for raw-response objects (``with_raw_response``): headers as before, ``parse()``
returns the scored response."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import wrapt

__all__ = ["RawResponseProxy"]

_UNSET = object()


class RawResponseProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """Wraps a raw response; ``parse()`` (with no ``to=``) runs ``finish`` on the parsed object
    once and returns that result every time after. Everything else goes to the raw response."""

    def __init__(self, wrapped: Any, finish: Callable[[Any], Any]) -> None:
        super().__init__(wrapped)
        self._self_finish = finish
        self._self_parsed: Any = _UNSET
        self._self_lock = threading.Lock()

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs.get("to") is not None:
            return self.__wrapped__.parse(*args, **kwargs)
        with self._self_lock:
            if self._self_parsed is _UNSET:
                self._self_parsed = self._self_finish(self.__wrapped__.parse())
            return self._self_parsed
