"""Prometheus metrics for one server app (``GET /metrics``), in a registry of its own.

Label values come only from this server's own vocabulary: route templates (never the raw path,
which carries Azure deployment names), a fixed set of methods, status codes, and refusal
reasons. Nothing a client sends (prompts, model names, keys) becomes a label, so the number of
series is bounded whatever the traffic.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import MissingDependencyError

__all__ = ["METRICS_MODES", "ServerMetrics", "MetricsMiddleware", "record_score"]

METRICS_MODES = ("off", "auth", "public")

_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
UNMATCHED_ROUTE = "unmatched"  # any path no route serves (404s), so scanners cannot add series
# seconds: a plain completion takes milliseconds, a scored one several judge calls (seconds)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))

_CURRENT: contextvars.ContextVar[ServerMetrics | None] = contextvars.ContextVar("tlm_hooks_metrics", default=None)


def record_score(score: float | None, components: Mapping[str, Any] | None = None, *, failed: bool = False) -> None:
    """Count one score (``components`` may carry the judge's ``llm_calls`` and ``llm_tokens``) in
    the metrics of the request being served, if its app has metrics on; a no-op anywhere else."""
    metrics = _CURRENT.get()
    if metrics is not None:
        metrics.observe_score(score, components or {}, failed=failed)


class ServerMetrics:
    """The metrics of one app: HTTP traffic, admission (``gate``, ``draining``), judge use, scores."""

    def __init__(self, gate: Any, draining: Any, routes: Sequence[BaseRoute]) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingDependencyError(
                "server metrics need prometheus-client: pip install 'tlm-hooks[server]' (or serve with --metrics off)"
            ) from exc
        self.routes = routes
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tlm_hooks_requests",
            "HTTP requests answered, by route template, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tlm_hooks_request_duration_seconds",
            "Time from a request's arrival to the end of its reply (a stream's last chunk), by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "tlm_hooks_requests_in_flight",
            "HTTP requests being handled now (queued, working or streaming)",
            registry=self.registry,
        )
        self.judge_calls = Counter(
            "tlm_hooks_judge_calls", "Judge model requests made to score responses", registry=self.registry
        )
        self.judge_tokens = Counter(
            "tlm_hooks_judge_tokens", "Judge tokens (prompt plus completion) spent scoring", registry=self.registry
        )
        self.scores = Counter(
            "tlm_hooks_scores",
            "Scores made, by outcome: scored (a number), failed (tlm_metadata carries an error), "
            "unscored (no number and no error, e.g. scoring disabled)",
            ["outcome"],
            registry=self.registry,
        )
        self.score_values = Histogram(
            "tlm_hooks_trustworthiness_score",
            "Trustworthiness scores returned",
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_AdmissionCollector(gate, draining))

    def route_of(self, scope: Scope) -> str:
        """The template of the route that serves ``scope`` (``unmatched`` when none does)."""
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", UNMATCHED_ROUTE))
            if match is Match.PARTIAL and partial is None:  # the path matches, the method does not (405)
                partial = str(getattr(route, "path", UNMATCHED_ROUTE))
        return partial or UNMATCHED_ROUTE

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        method = method if method in _METHODS else "other"
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_score(self, score: float | None, components: Mapping[str, Any], *, failed: bool = False) -> None:
        """Count one score and the judge calls and tokens it spent (``llm_calls``/``llm_tokens``)."""
        if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score):
            self.scores.labels("scored").inc()
            self.score_values.observe(score)
        else:
            self.scores.labels("failed" if failed else "unscored").inc()
        calls = components.get("llm_calls")
        tokens = components.get("llm_tokens")
        if isinstance(calls, (int, float)) and calls > 0:
            self.judge_calls.inc(calls)
        if isinstance(tokens, (int, float)) and tokens > 0:
            self.judge_tokens.inc(tokens)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _AdmissionCollector:
    """Read at scrape time from the gate and the shutdown state, so the numbers cannot drift."""

    def __init__(self, gate: Any, draining: Any) -> None:
        self.gate, self.draining = gate, draining

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        gate = self.gate
        yield GaugeMetricFamily("tlm_hooks_queue_depth", "Requests waiting for a working slot", value=gate.waiting)
        yield GaugeMetricFamily("tlm_hooks_running", "Requests holding a working slot", value=gate.running)
        yield GaugeMetricFamily(
            "tlm_hooks_max_concurrency", "Working slots (--max-concurrency)", value=gate.max_concurrency
        )
        yield GaugeMetricFamily("tlm_hooks_max_queue", "Queue places (--max-queue)", value=gate.max_queue)
        yield GaugeMetricFamily(
            "tlm_hooks_draining", "1 once the server is shutting down", value=1 if self.draining.active else 0
        )
        refused = CounterMetricFamily(
            "tlm_hooks_rejected",
            "Requests refused with 503 and Retry-After, by reason: queue_full, queue_timeout "
            "(waited longer than allowed), shutting_down",
            labels=["reason"],
        )
        for reason in ("queue_full", "queue_timeout"):
            refused.add_metric([reason], gate.refusals.get(reason, 0))
        refused.add_metric(["shutting_down"], self.draining.refusals)
        yield refused


class MetricsMiddleware:
    """ASGI middleware counting every HTTP request of the app into ``metrics``."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = self.metrics
        started = time.monotonic()
        status = 500  # when the app fails before it replies
        route = metrics.route_of(scope)
        token = _CURRENT.set(metrics)

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_counted)
        finally:
            metrics.in_flight.dec()
            _CURRENT.reset(token)
            metrics.observe_request(route, str(scope.get("method", "")), status, time.monotonic() - started)
