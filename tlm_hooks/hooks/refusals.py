"""One memory, for every SDK, of the models that refused the ``logprobs`` parameter the hook adds.

A refused model is not asked again in this process (its calls would fail once more and go
again); :func:`forget_logprob_refusals` (public as ``tlm_hooks.forget_logprob_refusals``) asks
again, e.g. after the deployment changed. A call that names no model (Azure AI Inference
endpoints serve one) is remembered by its client instead.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

__all__ = ["LogprobRefusals", "REFUSALS", "forget_logprob_refusals", "refusal_note"]

logger = logging.getLogger("tlm_hooks")


def refusal_note(model: str | None) -> str:
    """What happened when ``model`` refused logprobs, and how to switch the signal off."""
    who = f"model {model!r}" if model else "this endpoint's model"
    return (
        f"{who} refused the `logprobs` parameter the hook adds for LogprobScorer, so its answers "
        "carry no token probabilities and LogprobScorer cannot score them (the call was sent again "
        "without it, and is not asked again in this process). To switch this signal off, patch "
        "with LogprobScorer(request_logprobs=False), or use a scorer that needs no logprobs "
        "(e.g. TLMScorer('low')); tlm_hooks.forget_logprob_refusals() asks again"
    )


class LogprobRefusals:
    """Thread-safe set of models (by name) and of clients (calls naming no model) that refused."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: set[str] = set()
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()

    def refused(self, model: str | None, client: Any) -> bool:
        """True when ``model`` (or, for a call naming none, ``client``) refused before."""
        if model is not None:
            return model in self._models
        if client is None or not self._clients:
            return False
        try:
            return client in self._clients
        except TypeError:  # not weak-referenceable
            return False

    def remember(self, model: str | None, client: Any) -> bool:
        """Record a refusal; returns True the first time (say it once, not on every call)."""
        with self._lock:
            if model is not None:
                if model in self._models:
                    return False
                self._models.add(model)
                return True
            if client is None:
                return True
            try:
                if client in self._clients:
                    return False
                self._clients.add(client)
            except TypeError:
                pass
            return True

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self._clients.clear()


REFUSALS = LogprobRefusals()


def forget_logprob_refusals() -> None:
    """Forget which models refused ``logprobs``: the next hooked call to each asks for them again."""
    REFUSALS.clear()
