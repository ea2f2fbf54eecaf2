"""Hooking LlamaIndex LLMs: one instance, or a class and all its subclasses.

The eight methods (``chat``, ``complete``, ``stream_chat``, ``stream_complete`` and their async
forms) are wrapped where they are defined, each definition once: for an instance, in the
classes its own class takes them from; for a class, there too and in every subclass that
defines its own, including subclasses created later (a hook on the patched class's
``__init_subclass__`` wraps their methods as the class statement finishes). Each call looks
its LLM up (own config, else the nearest patched class in its MRO); other LLMs pass through.

A method that calls another hooked method (``CustomLLM.chat`` -> ``self.complete``, an
override calling ``super().chat``) is scored once: the outermost call runs the original
unhooked (see :mod:`.call`). Originals are stored and put back exactly; wrappers stay only
where a patched instance or class still needs them.
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import wrapt

from ..._guard import is_unhooked
from ...errors import PatchError
from ...hooks.config import HookConfig
from ...hooks.registry import REGISTRY
from .adapter import METHODS, is_openai_family
from .call import call_async, call_sync
from .queries import listen

__all__ = [
    "FAMILY",
    "LlamaIndexFamily",
    "register",
    "unregister",
    "is_registered",
    "unpatch_all",
    "config_for",
    "wrapped_methods",
]

logger = logging.getLogger("tlm_hooks")

_ABSENT = object()
_HOOK = "__init_subclass__"

# id(llm) -> (weak reference to it, its config); pydantic models are not hashable
_instances: dict[int, tuple[Callable[[], Any], HookConfig]] = {}
_classes: dict[type, HookConfig] = {}
# (owner class, method name) -> the object that was in owner.__dict__ before wrapping
_originals: dict[tuple[type, str], Any] = {}
# patched class -> the __init_subclass__ that was in its own __dict__ (or _ABSENT)
_subclass_hooks: dict[type, Any] = {}

ROUTE_REFUSED = (
    "route() sends TLM options inside each OpenAI request, so it needs a LlamaIndex OpenAI-family LLM "
    "(llama_index.llms.openai.OpenAI, OpenAILike, AzureOpenAI) whose api_base is a TLM backend; got {name}. "
    "Use tlm_hooks.patch() to score this LLM's answers instead."
)

ROUTE_OWN_EXTRA_BODY = (
    "route() cannot send TLM options with this LLM: its additional_kwargs has an 'extra_body', which "
    "LlamaIndex sends in place of any per-call extra_body. Remove it from additional_kwargs (pass it per "
    "call instead: it is merged with the TLM options), or put the TLM options into it yourself."
)


# -- which LLMs are hooked ---------------------------------------------------------------------


def config_for(llm: Any) -> HookConfig | None:
    """The config of ``llm``: its own, else that of the nearest patched class in its MRO."""
    entry = _instances.get(id(llm))
    if entry is not None and entry[0]() is llm:
        return entry[1]
    if _classes:
        for cls in type(llm).__mro__:
            config = _classes.get(cls)
            if config is not None:
                return config
    return None


def _weak(llm: Any) -> Callable[[], Any]:
    key = id(llm)

    def forget(_: Any) -> None:
        entry = _instances.get(key)
        if entry is not None and entry[0]() is None:
            _instances.pop(key, None)

    try:
        return weakref.ref(llm, forget)
    except TypeError:  # not weak-referenceable: kept alive while patched
        return lambda: llm


# -- wrappers ----------------------------------------------------------------------------------


def _make_wrapper(method: str) -> Callable[..., Any]:
    run = call_async if METHODS[method][2] else call_sync

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if instance is None or is_unhooked():
            return wrapped(*args, **kwargs)
        config = config_for(instance)
        if config is None:
            return wrapped(*args, **kwargs)
        return run(config, instance, method, wrapped, args, kwargs)

    return wrapper


_WRAPPERS: dict[str, Callable[..., Any]] = {name: _make_wrapper(name) for name in METHODS}


def _is_concrete(obj: Any) -> bool:
    return callable(obj) and not getattr(obj, "__isabstractmethod__", False)


def _defining(cls: type) -> set[tuple[type, str]]:
    """Where ``cls`` takes each hooked method from (abstract ones skipped)."""
    out = set()
    for name in METHODS:
        for owner in cls.__mro__:
            if name in vars(owner):
                if _is_concrete(vars(owner)[name]):
                    out.add((owner, name))
                break
    return out


def _own(cls: type) -> set[tuple[type, str]]:
    """The hooked methods ``cls`` defines itself."""
    return {(cls, name) for name in METHODS if name in vars(cls) and _is_concrete(vars(cls)[name])}


def _subclasses(cls: type) -> Iterator[type]:
    seen: set[type] = set()
    todo: list[type] = list(cls.__subclasses__())
    while todo:
        sub = todo.pop()
        if sub not in seen:
            seen.add(sub)
            yield sub
            todo.extend(sub.__subclasses__())


def _wrap(owner: type, name: str) -> None:
    if (owner, name) in _originals:
        return
    original = vars(owner)[name]
    try:
        wrapt.wrap_function_wrapper(owner, name, _WRAPPERS[name])
    except Exception as exc:  # one odd class must not stop the rest
        logger.warning("tlm-hooks: cannot patch %s.%s.%s: %s", owner.__module__, owner.__qualname__, name, exc)
        return
    _originals[(owner, name)] = original


def _on_new_subclass(cls: type) -> None:
    with REGISTRY.lock:
        for owner, name in _own(cls):
            _wrap(owner, name)


def _hook_subclasses(owner: type) -> None:
    if owner in _subclass_hooks:
        return
    previous = vars(owner).get(_HOOK, _ABSENT)

    def __init_subclass__(cls: type, **kwargs: Any) -> None:  # noqa: N807
        if previous is _ABSENT:
            getattr(super(owner, cls), _HOOK)(**kwargs)
        else:
            previous.__get__(None, cls)(**kwargs)
        try:
            _on_new_subclass(cls)
        except Exception as exc:
            logger.warning("tlm-hooks: cannot patch the new LlamaIndex class %s: %s", cls.__qualname__, exc)

    setattr(owner, _HOOK, classmethod(__init_subclass__))
    _subclass_hooks[owner] = previous


def _needed() -> set[tuple[type, str]]:
    need: set[tuple[type, str]] = set()
    for ref, _ in list(_instances.values()):
        llm = ref()
        if llm is not None:
            need |= _defining(type(llm))
    for cls in _classes:
        need |= _defining(cls)
        for sub in _subclasses(cls):
            need |= _own(sub)
    return need


def _sync() -> None:
    """Put back every original no patched instance or class needs any more."""
    need = _needed()
    for key in [k for k in _originals if k not in need]:
        owner, name = key
        setattr(owner, name, _originals.pop(key))
    for owner in [o for o in _subclass_hooks if o not in _classes]:
        previous = _subclass_hooks.pop(owner)
        if previous is _ABSENT:
            delattr(owner, _HOOK)
        else:
            setattr(owner, _HOOK, previous)


# -- the entry points tlm_hooks.patch/route/unpatch/is_patched/unpatch_all use --------------------


def register(target: Any, config: HookConfig) -> None:
    """Hook ``target`` (a LlamaIndex LLM or LLM class) with ``config``; patching again replaces it."""
    name = target.__qualname__ if isinstance(target, type) else type(target).__qualname__
    if config.mode == "route":
        if not is_openai_family(target):
            raise PatchError(ROUTE_REFUSED.format(name=name))
        if "extra_body" in (getattr(target, "additional_kwargs", None) or {}):
            raise PatchError(ROUTE_OWN_EXTRA_BODY)
    listen()  # query engines then get the score of their answer on their Response
    with REGISTRY.lock:
        if isinstance(target, type):
            for owner, method in _defining(target):
                _wrap(owner, method)
            for sub in _subclasses(target):
                for owner, method in _own(sub):
                    _wrap(owner, method)
            _hook_subclasses(target)
            _classes[target] = config
        else:
            for owner, method in _defining(type(target)):
                _wrap(owner, method)
            _instances[id(target)] = (_weak(target), config)


def unregister(target: Any) -> bool:
    """Stop hooking ``target`` itself; returns whether it was hooked. An instance of a patched
    class stays hooked through its class."""
    with REGISTRY.lock:
        if isinstance(target, type):
            removed = _classes.pop(target, None) is not None
        else:
            entry = _instances.get(id(target))
            removed = entry is not None and entry[0]() is target
            if removed:
                del _instances[id(target)]
        _sync()
    return removed


def is_registered(target: Any) -> bool:
    """True when calls of ``target`` (an LLM, or instances of an LLM class) are hooked."""
    if isinstance(target, type):
        return any(cls in _classes for cls in target.__mro__)
    return config_for(target) is not None


def unpatch_all() -> None:
    """Unhook every LlamaIndex LLM and class; put every original back."""
    with REGISTRY.lock:
        _instances.clear()
        _classes.clear()
        _sync()


def wrapped_methods() -> dict[tuple[type, str], Any]:
    """(class, method) -> original, for each method currently wrapped (for tests and debugging)."""
    return dict(_originals)


_BASE_MODULE = "llama_index.core.base.llms.base"


class LlamaIndexFamily:
    """LlamaIndex LLMs (instances or classes) as a :class:`~tlm_hooks.hooks.family.HookFamily`."""

    name = "llamaindex"
    supported = "a LlamaIndex LLM (instance or class)"
    in_patch_all = False

    def claims(self, obj: Any) -> bool:
        base = sys.modules.get(_BASE_MODULE)
        if base is None:  # llama_index.core never imported: nothing can be a LlamaIndex LLM
            return False
        cls = obj if isinstance(obj, type) else type(obj)
        try:
            return issubclass(cls, base.BaseLLM)
        except TypeError:
            return False

    def register(self, target: Any, config: HookConfig) -> None:
        register(target, config)

    def unregister(self, target: Any) -> bool:
        return unregister(target)

    def is_registered(self, target: Any) -> bool:
        return is_registered(target)

    def available(self) -> bool:
        return True  # this module imports LlamaIndex

    def install_global(self, config: HookConfig) -> None:
        """Hook every LlamaIndex LLM: their common base class, and with it every subclass."""
        from llama_index.core.base.llms.base import BaseLLM

        register(BaseLLM, config)

    def uninstall_all(self) -> None:
        unpatch_all()


FAMILY = LlamaIndexFamily()
