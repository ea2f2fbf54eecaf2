"""`HookFamily`: one family of things tlm-hooks can hook (an SDK's clients, LlamaIndex LLMs, ...).

:mod:`tlm_hooks.hooks.api` knows no SDK: ``patch``/``route``/``unpatch``/``is_patched`` ask each
family in :data:`tlm_hooks.hooks.families.FAMILIES` whether it ``claims`` the object, and
``patch_all``/``unpatch_all`` loop over them. Two implementations exist: the table-driven
:class:`~tlm_hooks.hooks.patcher.TableFamily` (methods of SDK classes, declared by each adapter
module as ``TARGETS``) and a family object of its own (``LazyFamily`` loads it on first use).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .config import HookConfig

__all__ = ["HookFamily", "LazyFamily", "defined_in"]


@runtime_checkable
class HookFamily(Protocol):
    """What :mod:`tlm_hooks.hooks.api` needs from a family. Callers hold ``REGISTRY.lock`` for
    ``register``/``unregister``/``install_global``/``uninstall_all`` (the lock is re-entrant)."""

    name: str
    """The name ``patch_all(sdks=...)`` takes (``"openai"``, ``"azure"``, ``"llamaindex"``)."""
    supported: str
    """What this family hooks, for error messages (``"an OpenAI ... client"``)."""
    in_patch_all: bool
    """Whether ``patch_all()`` without ``sdks=`` hooks this family (when it is available)."""

    def claims(self, obj: Any) -> bool:
        """True when ``obj`` belongs to this family. Imports no SDK: an SDK that was never
        imported can have no objects, so a family answers False until its SDK is loaded."""
        ...

    def register(self, target: Any, config: HookConfig) -> None:
        """Hook ``target`` (a claimed object) with ``config``; registering again replaces it."""
        ...

    def unregister(self, target: Any) -> bool:
        """Stop hooking ``target``; returns whether it was hooked."""
        ...

    def is_registered(self, target: Any) -> bool:
        """True when calls of ``target`` are hooked (its own config or a global one)."""
        ...

    def available(self) -> bool:
        """True when the family's SDK is installed (``patch_all()`` hooks only those)."""
        ...

    def install_global(self, config: HookConfig) -> None:
        """Hook every object of this family, existing and future ones (``patch_all``)."""
        ...

    def uninstall_all(self) -> None:
        """Unhook everything of this family and put every original back (no SDK is imported)."""
        ...


def defined_in(obj: Any, prefixes: tuple[str, ...]) -> bool:
    """True when ``obj`` (a class, or an instance of one) has a class in its MRO defined in a
    module named by ``prefixes`` (``"openai"`` matches ``openai`` and ``openai.x.y``), or is
    itself such a module (litellm is hooked by passing the module)."""
    if isinstance(obj, ModuleType):
        return any(obj.__name__ == p or obj.__name__.startswith(p + ".") for p in prefixes)
    cls = obj if isinstance(obj, type) else type(obj)
    try:
        mro = cls.__mro__
    except AttributeError:
        return False
    for base in mro:
        module = getattr(base, "__module__", None) or ""
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                return True
    return False


class LazyFamily:
    """A family whose implementation lives in another module (``"package.module:ATTRIBUTE"``),
    imported only once an object of the family exists (one of ``modules`` is loaded)."""

    def __init__(
        self, name: str, entry_point: str, *, modules: tuple[str, ...], supported: str, in_patch_all: bool = True
    ) -> None:
        self.name = name
        self.supported = supported
        self.in_patch_all = in_patch_all
        self._entry_point = entry_point
        self._modules = modules

    def _loaded_sdk(self) -> bool:
        return any(m in sys.modules for m in self._modules)

    def load(self) -> HookFamily:
        """The family object (imports its module, and with it the SDK)."""
        module, _, attribute = self._entry_point.partition(":")
        family: HookFamily = getattr(importlib.import_module(module), attribute)
        return family

    def claims(self, obj: Any) -> bool:
        if not self._loaded_sdk() or not defined_in(obj, self._modules):
            return False
        return self.load().claims(obj)

    def register(self, target: Any, config: HookConfig) -> None:
        self.load().register(target, config)

    def unregister(self, target: Any) -> bool:
        return self.load().unregister(target)

    def is_registered(self, target: Any) -> bool:
        return self.load().is_registered(target)

    def available(self) -> bool:
        try:
            return importlib.util.find_spec(self._modules[0].split(".")[0]) is not None
        except (ImportError, ValueError):
            return False

    def install_global(self, config: HookConfig) -> None:
        self.load().install_global(config)

    def uninstall_all(self) -> None:
        module = self._entry_point.partition(":")[0]
        if module in sys.modules:  # never loaded: nothing of it can be hooked
            self.load().uninstall_all()
