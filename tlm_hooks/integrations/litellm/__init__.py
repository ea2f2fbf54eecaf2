"""litellm integration: the ``litellm`` hook family (``tlm_hooks.patch(litellm)``, routers,
``patch_all``) and :class:`TLMCallback`, a litellm callback for apps and the litellm proxy
that prefer callbacks to patching. Importing this package imports no litellm; using
``TLMCallback`` does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .callback import TLMCallback

__all__ = ["TLMCallback"]


def __getattr__(name: str) -> Any:
    if name == "TLMCallback":
        from .callback import TLMCallback

        return TLMCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
