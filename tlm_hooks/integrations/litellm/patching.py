"""Hooking litellm: the module functions ``litellm.completion``/``acompletion`` and the
``completion``/``acompletion`` endpoints of ``litellm.Router`` instances.

``patch(litellm)`` hooks the module functions and every Router; ``patch(router)`` one Router
(its own config wins over the module's); ``patch_all()`` is the default for both. The module
functions are replaced in ``litellm`` and ``litellm.main`` (where they are defined): a
``from litellm import completion`` done before patching keeps the original function and is
not hooked. Router endpoints are wrapped on the class, the way litellm supports class-level
patches of them.

A hooked call runs the original with the recursion guard on, so what litellm calls inside it
(a Router calling ``litellm.completion``, litellm calling a hooked ``openai`` client) is not
scored a second time: one call, one score. Importing this module imports no litellm.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

import wrapt

from ...hooks.config import HookConfig
from ...hooks.guard import is_unhooked, unhooked

__all__ = ["LiteLLMFamily", "FAMILY", "MODULE_FUNCTIONS", "ROUTER_METHODS"]

logger = logging.getLogger("tlm_hooks")

MODULE_FUNCTIONS: tuple[tuple[str, bool], ...] = (("completion", False), ("acompletion", True))
"""The module functions hooked, with whether each is async."""
ROUTER_METHODS = MODULE_FUNCTIONS
"""The ``Router`` endpoints hooked, with whether each is async."""
_FUNCTION_HOMES = ("litellm", "litellm.main")
_ABSENT = object()


def _quiet(wrapped: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
    """``wrapped`` called with the recursion guard on (its streams are made inside the call)."""
    if is_async:

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            with unhooked():
                return await wrapped(*args, **kwargs)

        return call_async

    def call(*args: Any, **kwargs: Any) -> Any:
        with unhooked():
            return wrapped(*args, **kwargs)

    return call


class LiteLLMFamily:
    """The ``litellm`` hook family: the module itself and ``Router`` instances."""

    name = "litellm"
    supported = "the litellm module or a litellm.Router"
    in_patch_all = True

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._module: HookConfig | None = None  # patch(litellm)
        self._global: HookConfig | None = None  # patch_all()
        self._routers: weakref.WeakKeyDictionary[Any, HookConfig] = weakref.WeakKeyDictionary()
        # (owner, name) -> what owner.__dict__ held before wrapping (_ABSENT: nothing of its own)
        self._originals: dict[tuple[Any, str], Any] = {}

    # -- which objects, which config -----------------------------------------------------------

    def claims(self, obj: Any) -> bool:
        """True for the ``litellm`` module and ``Router`` instances (imports nothing)."""
        litellm = sys.modules.get("litellm")
        if litellm is None:
            return False
        if obj is litellm:
            return True
        router = sys.modules.get("litellm.router")
        return router is not None and isinstance(obj, router.Router)

    def _router_of(self, instance: Any) -> Any:
        """The ``Router`` a wrapped endpoint was called on: the instance itself, or the facade
        that owns it (litellm serves a Router's endpoints from a core object that records its owner)."""
        owner = (getattr(instance, "__dict__", None) or {}).get("_core_owner")
        if callable(owner):
            found = owner()
            if found is not None:
                return found
        return instance

    def _router_config(self, instance: Any) -> HookConfig | None:
        if self._routers:
            try:
                own = self._routers.get(self._router_of(instance))
            except TypeError:
                own = None
            if own is not None:
                return own
        return self._module_config()

    def _module_config(self) -> HookConfig | None:
        return self._module if self._module is not None else self._global

    # -- wrappers -----------------------------------------------------------------------------

    def _wrapper(
        self, is_async: bool, lookup: Callable[[Any], HookConfig | None], client_of: Callable[[Any], Any]
    ) -> Callable[..., Any]:
        from ...adapters.litellm import ASYNC, SYNC
        from ...hooks.pipeline import call_async, call_sync

        adapter, run = (ASYNC, call_async) if is_async else (SYNC, call_sync)

        def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if is_unhooked():
                return wrapped(*args, **kwargs)
            config = lookup(instance)
            if config is None:
                return wrapped(*args, **kwargs)
            return run(config, adapter, client_of(instance), _quiet(wrapped, is_async), args, kwargs)

        return wrapper

    def _wrap(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        if (owner, name) in self._originals:
            return
        try:
            current = getattr(owner, name)
            own = vars(owner).get(name, _ABSENT)
            setattr(owner, name, wrapt.FunctionWrapper(current, wrapper))
        except Exception as exc:  # one missing target (litellm version drift) must not stop the rest
            logger.warning("tlm-hooks: cannot patch %s.%s: %s", getattr(owner, "__name__", owner), name, exc)
            return
        self._originals[(owner, name)] = own

    def _install(self) -> None:
        """Wrap the module functions and the Router endpoints (idempotent; imports litellm)."""
        if self._originals:
            return
        from ...llm.litellm_backend import import_litellm

        import_litellm()  # with its bundled cost map: no network fetch at import
        litellm = sys.modules["litellm"]
        for home in _FUNCTION_HOMES:
            module = importlib.import_module(home)
            for name, is_async in MODULE_FUNCTIONS:
                wrapper = self._wrapper(is_async, lambda _instance: self._module_config(), lambda _instance: litellm)
                self._wrap(module, name, wrapper)
        from litellm.router import Router

        for name, is_async in ROUTER_METHODS:
            self._wrap(Router, name, self._wrapper(is_async, self._router_config, self._router_of))

    def _uninstall(self) -> None:
        for (owner, name), own in reversed(list(self._originals.items())):
            try:
                if own is _ABSENT:
                    delattr(owner, name)  # a Router endpoint: litellm puts its own back
                else:
                    setattr(owner, name, own)
            except Exception as exc:
                logger.warning("tlm-hooks: cannot restore %s.%s: %s", getattr(owner, "__name__", owner), name, exc)
        self._originals.clear()

    def _sync(self) -> None:
        if self._module is None and self._global is None and not len(self._routers):
            self._uninstall()

    # -- the family protocol ------------------------------------------------------------------

    def register(self, target: Any, config: HookConfig) -> None:
        """Hook ``target`` (the ``litellm`` module: every call; a ``Router``: its calls)."""
        with self._lock:
            self._install()
            if target is sys.modules.get("litellm"):
                self._module = config
            else:
                self._routers[target] = config

    def unregister(self, target: Any) -> bool:
        """Stop hooking ``target``; returns whether it was hooked itself."""
        with self._lock:
            if target is sys.modules.get("litellm"):
                removed = self._module is not None
                self._module = None
            else:
                removed = self._routers.pop(target, None) is not None
            self._sync()
        return removed

    def is_registered(self, target: Any) -> bool:
        """True when calls of ``target`` are hooked (own config, the module's, or ``patch_all``'s)."""
        if target is sys.modules.get("litellm"):
            return self._module_config() is not None
        return self._router_config(target) is not None

    def available(self) -> bool:
        """True when litellm is installed."""
        try:
            return importlib.util.find_spec("litellm") is not None
        except (ImportError, ValueError):
            return False

    def install_global(self, config: HookConfig) -> None:
        """Hook every litellm call and Router (``patch_all``); imports litellm."""
        with self._lock:
            self._install()
            self._global = config

    def uninstall_all(self) -> None:
        """Unhook everything and put the originals back."""
        with self._lock:
            self._module = None
            self._global = None
            self._routers.clear()
            self._uninstall()

    def wrapped(self) -> list[tuple[Any, str]]:
        """(owner, name) of each function currently wrapped (for tests and debugging)."""
        return list(self._originals)


FAMILY = LiteLLMFamily()
