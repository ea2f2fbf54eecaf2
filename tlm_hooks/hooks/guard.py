"""The recursion guard, re-exported from :mod:`tlm_hooks._guard` (``tlm_hooks.unhooked`` is public)."""

from .._guard import is_unhooked, unhooked

__all__ = ["unhooked", "is_unhooked"]
