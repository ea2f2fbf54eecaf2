"""The progress display of dataset runs: :class:`tlm_hooks.progress.Progress` (one display for
every long job; ``TLM_HOOKS_PROGRESS=0`` turns it off)."""

from __future__ import annotations

from ..progress import Progress

__all__ = ["Progress"]
