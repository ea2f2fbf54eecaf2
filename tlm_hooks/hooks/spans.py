"""Where the hook reports each call's trust result to tracing: a list of span annotators.

The hook knows no tracer. An integration adds a function ``annotate(result, config, *,
partial)`` with :func:`add_span_annotator` (:mod:`tlm_hooks.integrations.otel` adds the one that
writes OpenTelemetry/MLflow span attributes, on ``import tlm_hooks``); the pipeline calls each
after scoring and again after the fallbacks acted. Annotators must be cheap when no span is
active: they run on every hooked call.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..types import TrustResult
    from .config import HookConfig

__all__ = ["SpanAnnotator", "SPAN_ANNOTATORS", "add_span_annotator", "remove_span_annotator", "annotate_spans"]

logger = logging.getLogger("tlm_hooks")


class SpanAnnotator(Protocol):
    def __call__(self, result: TrustResult, config: HookConfig, *, partial: bool = False) -> object: ...


SPAN_ANNOTATORS: list[SpanAnnotator] = []


def add_span_annotator(annotator: SpanAnnotator) -> None:
    """Call ``annotator`` with every hooked call's result (once, however often it is added)."""
    if annotator not in SPAN_ANNOTATORS:
        SPAN_ANNOTATORS.append(annotator)


def remove_span_annotator(annotator: SpanAnnotator) -> bool:
    """Stop calling ``annotator``; returns whether it was there."""
    if annotator in SPAN_ANNOTATORS:
        SPAN_ANNOTATORS.remove(annotator)
        return True
    return False


def annotate_spans(result: TrustResult, config: HookConfig, *, partial: bool = False) -> None:
    """Hand ``result`` to every annotator; one that raises is logged and skipped (never breaks the call)."""
    for annotator in SPAN_ANNOTATORS:
        try:
            annotator(result, config, partial=partial)
        except Exception as exc:
            logger.debug("tlm-hooks: span annotator %r failed: %s", annotator, exc)
