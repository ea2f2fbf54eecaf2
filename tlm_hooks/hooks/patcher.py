"""The table-driven family: SDK methods to wrap, declared by each adapter module as ``TARGETS``.

Wrappers are installed on the SDK's classes once, while at least one client (or ``patch_all``)
of the family is hooked; each call looks its client up in the registry, so unhooked clients pay
one dict lookup. Originals are stored and put back exactly on removal.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._guard import is_unhooked
from ..adapters.base import Target
from .family import defined_in
from .registry import REGISTRY

if TYPE_CHECKING:
    from ..adapters.base import Adapter
    from .config import HookConfig

__all__ = ["Target", "TableFamily"]

logger = logging.getLogger("tlm_hooks")


def _call_wrapper(family: str, adapter: Adapter, run: Callable[..., Any]) -> Callable[..., Any]:
    """A wrapper that hands hooked calls to ``run`` (``call_sync`` or ``call_async``) and lets
    every other call through untouched. Not ``async def``: an unhooked async call returns the
    SDK's own coroutine, and a hooked one the coroutine of ``call_async``."""
    lookup = REGISTRY.lookup
    client_of = adapter.client_of
    bind_call = adapter.bind_call

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if is_unhooked():
            return wrapped(*args, **kwargs)
        client = client_of(instance)
        config = lookup(client, family)
        if config is None:
            return wrapped(*args, **kwargs)
        args, kwargs = bind_call(args, kwargs)
        return run(config, adapter, client, wrapped, args, kwargs)

    return wrapper


def _copy_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    new = wrapped(*args, **kwargs)
    try:
        config = REGISTRY.own(instance)
        if config is not None and new is not instance:
            REGISTRY.set_client(new, config)
    except Exception as exc:  # never break copy()
        logger.warning("tlm-hooks: could not carry the hook over to a copied client: %s", exc)
    return new


class TableFamily:
    """A :class:`~tlm_hooks.hooks.family.HookFamily` of SDK clients whose methods are wrapped
    from declared tables.

    ``declarations`` are the modules (imported on first use; each imports its SDK) that define
    ``TARGETS: tuple[Target, ...]``; ``modules`` are the SDK modules its clients' classes come
    from (``claims`` answers False while none of them is imported).
    """

    def __init__(
        self,
        name: str,
        declarations: tuple[str, ...],
        *,
        modules: tuple[str, ...],
        supported: str,
        in_patch_all: bool = True,
    ) -> None:
        self.name = name
        self.supported = supported
        self.in_patch_all = in_patch_all
        self._declarations = declarations
        self._modules = modules
        self._targets: tuple[Target, ...] | None = None
        self._originals: dict[Target, tuple[type, Any]] = {}
        self._installed = False

    # -- what the family is made of ----------------------------------------------------------

    def targets(self) -> tuple[Target, ...]:
        """Every declared target (imports the declaring modules, and so the SDK)."""
        if self._targets is None:
            found: list[Target] = []
            for module in self._declarations:
                found.extend(importlib.import_module(module).TARGETS)
            self._targets = tuple(found)
        return self._targets

    def adapters(self) -> tuple[Adapter, ...]:
        """The distinct adapters of the call targets, in declaration order."""
        out: list[Adapter] = []
        for target in self.targets():
            if target.adapter is not None and not any(target.adapter is a for a in out):
                out.append(target.adapter)
        return tuple(out)

    def is_client(self, obj: Any) -> bool:
        return any(adapter.is_client(obj) for adapter in self.adapters())

    # -- HookFamily --------------------------------------------------------------------------

    def claims(self, obj: Any) -> bool:
        if not any(m in sys.modules for m in self._modules) or not defined_in(obj, self._modules):
            return False
        return self.is_client(obj)

    def register(self, target: Any, config: HookConfig) -> None:
        with REGISTRY.lock:
            self.install()
            REGISTRY.set_client(target, config)
            for adapter in self.adapters():
                adapter.forget_cached_wrappers(target)

    def unregister(self, target: Any) -> bool:
        with REGISTRY.lock:
            removed = REGISTRY.remove_client(target)
            if not REGISTRY.in_use(self.name, self.is_client):
                self.uninstall()
        return removed

    def is_registered(self, target: Any) -> bool:
        return REGISTRY.lookup(target, self.name) is not None

    def available(self) -> bool:
        try:
            self.targets()
        except ImportError:
            return False
        return True

    def install_global(self, config: HookConfig) -> None:
        with REGISTRY.lock:
            self.install()
            REGISTRY.set_global(self.name, config)
            self._forget_cached_wrappers_of_live_clients()

    def uninstall_all(self) -> None:
        if self._targets is None:  # never loaded: nothing of it was hooked
            return
        with REGISTRY.lock:
            REGISTRY.remove_global(self.name)
            REGISTRY.remove_clients(self.is_client)
            self.uninstall()

    # -- wrappers ----------------------------------------------------------------------------

    def install(self) -> None:
        """Wrap every target (idempotent; callers hold ``REGISTRY.lock``)."""
        if self._installed:
            return
        import wrapt  # with the hook machinery it wraps with: loaded by the first patch, not the import

        for target in self.targets():
            try:
                owner = getattr(importlib.import_module(target.module), target.owner)
                if target.attr not in vars(owner):  # inherited: the base class's wrapper covers it
                    continue
                self._originals[target] = (owner, vars(owner)[target.attr])
                wrapt.wrap_function_wrapper(owner, target.attr, self._wrapper_for(target))
            except Exception as exc:  # one missing target (SDK version drift) must not stop the rest
                logger.warning("tlm-hooks: cannot patch %s.%s.%s: %s", target.module, target.owner, target.attr, exc)
        self._installed = True

    def _wrapper_for(self, target: Target) -> Callable[..., Any]:
        if target.kind == "copy":
            return _copy_wrapper
        assert target.adapter is not None
        from .pipeline import call_async, call_sync

        return _call_wrapper(self.name, target.adapter, call_async if target.kind == "async" else call_sync)

    def uninstall(self) -> None:
        """Put back the stored originals (callers hold ``REGISTRY.lock``)."""
        for target, (owner, original) in list(self._originals.items()):
            setattr(owner, target.attr, original)
            del self._originals[target]
        self._installed = False

    def installed(self) -> bool:
        return self._installed

    def _forget_cached_wrappers_of_live_clients(self) -> None:
        """Do for every client that already exists what ``register`` does for its one client:
        drop the raw-response wrappers it cached before the patch (they hold the unpatched
        method). The clients are found with one pass over the garbage collector's objects."""
        import gc

        adapters = self.adapters()
        classes = tuple(cls for adapter in adapters for cls in adapter.client_classes)
        if not classes:
            return
        # by exact type, cached per type: isinstance() would read `__class__`, which makes lazy proxies
        # (openai's module-level client) load what they stand for
        is_client: dict[type, bool] = {}
        for obj in gc.get_objects():
            kind = type(obj)
            hit = is_client.get(kind)
            if hit is None:
                hit = is_client[kind] = issubclass(kind, classes)
            if hit:
                for adapter in adapters:
                    if adapter.is_client(obj):
                        adapter.forget_cached_wrappers(obj)
