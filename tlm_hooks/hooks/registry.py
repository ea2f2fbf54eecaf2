"""Which clients are hooked, and how: per-client configs plus one process-wide default."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from .config import HookConfig

__all__ = ["Registry", "REGISTRY"]


class Registry:
    """Thread-safe map of client -> :class:`HookConfig` (weakly keyed, so clients can be freed)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._clients: weakref.WeakKeyDictionary[Any, HookConfig] = weakref.WeakKeyDictionary()
        self._global: dict[str, HookConfig] = {}  # family name -> config of patch_all()

    def lookup(self, client: Any, sdk: str) -> HookConfig | None:
        """The config for ``client``: its own, else the ``patch_all`` one of its family ``sdk``."""
        try:
            config = self._clients.get(client)
        except TypeError:  # unhashable or not weak-referenceable client
            config = None
        return config if config is not None else self._global.get(sdk)

    def own(self, client: Any) -> HookConfig | None:
        try:
            return self._clients.get(client)
        except TypeError:
            return None

    def set_client(self, client: Any, config: HookConfig) -> None:
        self._clients[client] = config

    def remove_client(self, client: Any) -> bool:
        return self._clients.pop(client, None) is not None

    def remove_clients(self, owns: Callable[[Any], bool]) -> None:
        """Forget every client for which ``owns(client)`` is true."""
        for client in [c for c in list(self._clients.keys()) if owns(c)]:
            self._clients.pop(client, None)

    def set_global(self, sdk: str, config: HookConfig) -> None:
        self._global[sdk] = config

    def remove_global(self, sdk: str) -> bool:
        return self._global.pop(sdk, None) is not None

    def in_use(self, sdk: str, owns: Callable[[Any], bool]) -> bool:
        """True while any client of ``sdk`` (``owns(client)``) or the global default is hooked."""
        return sdk in self._global or any(owns(c) for c in list(self._clients.keys()))

    def clear(self) -> None:
        self._clients.clear()
        self._global.clear()


REGISTRY = Registry()
