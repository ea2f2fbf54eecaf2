"""Trust results on the OpenTelemetry spans of a LlamaIndex app (OpenInference's LlamaIndex
instrumentor, Phoenix, Langfuse, or the app's own tracer).

Two cases:

- A score known while the span is still open (a patched LLM's score at ``QueryEndEvent``): the
  ``tlm.*`` attributes of :mod:`tlm_hooks.integrations.otel` go on the span that is current,
  the query engine's span.
- A score computed later, on the background handler's thread, after the query's span has
  ended (an ended span takes no attributes): a short child span ``tlm-hooks.score`` of the
  scored query or LLM span carries the attributes, with ``openinference.span.kind`` =
  ``EVALUATOR`` so OpenInference UIs list it as an evaluation of that span.

Nothing is imported unless the app has imported ``opentelemetry.trace`` (no tracer, no cost).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from ...types import TrustResult
from ..otel import trust_attributes

__all__ = ["record_on_current_span", "current_span_context", "record_child_span", "SCORE_SPAN_NAME"]

logger = logging.getLogger("tlm_hooks")

SCORE_SPAN_NAME = "tlm-hooks.score"
_KIND = "openinference.span.kind"
_SUBJECT = "tlm.subject"  # what the child span scored: "llm" or "query"


def _trace() -> Any:
    return sys.modules.get("opentelemetry.trace")


def record_on_current_span(result: TrustResult, *, threshold: float | None, mode: str | None) -> bool:
    """Add ``result``'s attributes to the recording span that is current; never raises."""
    trace = _trace()
    if trace is None:
        return False
    try:
        span = trace.get_current_span()
        if not span.is_recording():
            return False
        span.set_attributes(trust_attributes(result, threshold=threshold, mode=mode))
        return True
    except Exception as exc:  # tracing trouble never reaches the app
        logger.debug("tlm-hooks: could not record the trust result on the current span: %s", exc)
        return False


def current_span_context() -> Any:
    """The context of the recording span that is current (to parent a later child span), or
    ``None``."""
    trace = _trace()
    if trace is None:
        return None
    try:
        span = trace.get_current_span()
        return span.get_span_context() if span.is_recording() else None
    except Exception:
        return None


def record_child_span(
    parent: Any, result: TrustResult, *, subject: str, threshold: float | None, tracer_provider: Any = None
) -> bool:
    """Emit a ``tlm-hooks.score`` span under the span context ``parent`` carrying ``result``'s
    attributes; returns whether one was emitted. Never raises."""
    trace = _trace()
    if trace is None or parent is None:
        return False
    try:
        tracer = trace.get_tracer("tlm_hooks", tracer_provider=tracer_provider)
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
        attributes = trust_attributes(result, threshold=threshold, mode="score")
        attributes[_KIND] = "EVALUATOR"
        attributes[_SUBJECT] = subject
        with tracer.start_as_current_span(SCORE_SPAN_NAME, context=context, attributes=attributes):
            pass
        return True
    except Exception as exc:
        logger.debug("tlm-hooks: could not emit the score span: %s", exc)
        return False
