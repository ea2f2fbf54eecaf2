"""Put each hooked call's trust result on the span that is active around the call.

When an OpenTelemetry span is recording around a hooked call (your own span, or one an
instrumentation such as OpenInference or LlamaIndex opened around the call), the hook adds:

==============================  ========  ==========================================================
attribute                       type      meaning
==============================  ========  ==========================================================
``tlm.trustworthiness_score``   float     the score in [0, 1] (absent when scoring failed)
``tlm.explanation``             str       why the score is what it is (when the scorer gave one)
``tlm.low_trust``               bool      the score is below the policy threshold
``tlm.threshold``               float     the policy threshold
``tlm.mode``                    str       ``score`` (the hook scored) or ``route`` (a TLM backend did)
``tlm.fallbacks``               str[]     fallbacks that acted on the response, in order
``tlm.partial``                 bool      true only for a stream closed before its end
``tlm.error``                   str       why scoring failed (with ``tlm.error_type``)
``tlm.component.<signal>``      float     per-signal scores (``self_reflection``, ``consistency``, ...)
==============================  ========  ==========================================================

The same attributes go on an MLflow span that is active around the call (``@mlflow.trace``,
``mlflow.start_span``): MLflow 3 keeps its spans out of the global OpenTelemetry context.

The hook calls :func:`record_on_current_span` through its span-annotator list
(:mod:`tlm_hooks.hooks.spans`); importing this module (``import tlm_hooks`` does) adds it.

Cost when unused: nothing is imported. A span can only be active if the app imported
``opentelemetry.trace`` (or ``mlflow``), so each call does one ``sys.modules`` lookup per
tracer and stops there; when the module is loaded it asks for the current span and stops
unless ``is_recording()``. Needs only ``opentelemetry-api`` (extra ``[otel]``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..hooks.spans import add_span_annotator

if TYPE_CHECKING:
    from ..hooks.config import HookConfig
    from ..types import TrustResult

__all__ = [
    "SCORE",
    "EXPLANATION",
    "LOW_TRUST",
    "THRESHOLD",
    "MODE",
    "FALLBACKS",
    "PARTIAL",
    "ERROR",
    "ERROR_TYPE",
    "COMPONENT_PREFIX",
    "trust_attributes",
    "record_on_current_span",
]

logger = logging.getLogger("tlm_hooks")

SCORE = "tlm.trustworthiness_score"
EXPLANATION = "tlm.explanation"
LOW_TRUST = "tlm.low_trust"
THRESHOLD = "tlm.threshold"
MODE = "tlm.mode"
FALLBACKS = "tlm.fallbacks"
PARTIAL = "tlm.partial"
ERROR = "tlm.error"
ERROR_TYPE = "tlm.error_type"
COMPONENT_PREFIX = "tlm.component."

_MLFLOW_TRACE_KEY = "mlflow.traceRequestId"  # set on every span MLflow creates
_modules = sys.modules  # bound once: the fast path is one dict lookup per tracer


def trust_attributes(
    result: TrustResult, *, threshold: float | None = None, mode: str | None = None, partial: bool = False
) -> dict[str, Any]:
    """The span attributes for ``result`` (see the table above); ``low_trust`` needs ``threshold``."""
    attributes: dict[str, Any] = {}
    score = result.trustworthiness_score
    if score is not None:
        attributes[SCORE] = score
        if threshold is not None:
            attributes[LOW_TRUST] = result.error is None and score < threshold
    if threshold is not None:
        attributes[THRESHOLD] = float(threshold)
    if result.explanation:
        attributes[EXPLANATION] = result.explanation
    if mode is not None:
        attributes[MODE] = mode
    if result.fallbacks:
        attributes[FALLBACKS] = list(result.fallbacks)
    if partial:
        attributes[PARTIAL] = True
    if result.error is not None:
        attributes[ERROR] = result.error
        attributes[ERROR_TYPE] = result.error_type or "ScoringError"
    components: Mapping[str, float] = result.components or {}
    for name, value in components.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attributes[COMPONENT_PREFIX + name] = float(value)
    return attributes


def record_on_current_span(result: TrustResult, config: HookConfig, *, partial: bool = False) -> bool:
    """Add ``result``'s attributes to the recording OpenTelemetry and/or MLflow span active
    now; returns whether any span got them. Never raises."""
    trace = _modules.get("opentelemetry.trace")
    fluent = _modules.get("mlflow.tracing.fluent")
    if trace is None and fluent is None:
        return False
    try:
        return _record(trace, fluent, result, config, partial)
    except Exception as exc:  # a tracing problem never breaks the app's call
        logger.debug("tlm-hooks: could not record the trust result on the current span: %s", exc)
        return False


def _record(trace: Any, fluent: Any, result: TrustResult, config: HookConfig, partial: bool) -> bool:
    otel_span = trace.get_current_span() if trace is not None else None
    if otel_span is not None and not otel_span.is_recording():
        otel_span = None
    mlflow_span = fluent.get_current_active_span() if fluent is not None else None
    if mlflow_span is not None and otel_span is not None and getattr(mlflow_span, "_span", None) is otel_span:
        # one span seen through both APIs (MLflow sharing the global OpenTelemetry context):
        # MLflow's API for MLflow's own spans (it JSON-encodes values), OpenTelemetry's for others
        if _MLFLOW_TRACE_KEY in (getattr(otel_span, "attributes", None) or {}):
            otel_span = None
        else:
            mlflow_span = None
    if otel_span is None and mlflow_span is None:
        return False
    attributes = trust_attributes(result, threshold=config.policy.threshold, mode=config.mode, partial=partial)
    for span in (otel_span, mlflow_span):
        if span is not None:
            span.set_attributes(attributes)
    return True


add_span_annotator(record_on_current_span)
