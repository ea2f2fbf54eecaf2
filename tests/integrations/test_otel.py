"""OpenTelemetry: a hooked call's trust result lands on the span active around it (exported
with the SDK's in-memory exporter), in score and route mode, sync and async, plain and streamed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk is not installed")
openai = pytest.importorskip("openai")

from fake_openai import Reply  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF  # noqa: E402

import tlm_hooks  # noqa: E402
from tlm_hooks import TrustPolicy, TrustResult, fallbacks  # noqa: E402
from tlm_hooks.hooks.config import HookConfig  # noqa: E402
from tlm_hooks.integrations import otel  # noqa: E402

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
RESULT = TrustResult(0.3, explanation="shaky arithmetic", components={"self_reflection": 0.25, "consistency": 0.4})


class Tracing:
    def __init__(self, sampler: Any = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("test")

    def span(self, name: str) -> ReadableSpan:
        [found] = [s for s in self.exporter.get_finished_spans() if s.name == name]
        return found


@pytest.fixture
def tracing() -> Iterator[Tracing]:
    tracing = Tracing()
    yield tracing
    tracing.provider.shutdown()


@pytest.fixture
async def client_for(fake: Any) -> AsyncIterator[Callable[[bool], Any]]:
    made: list[Any] = []

    def make(is_async: bool) -> Any:
        cls = openai.AsyncOpenAI if is_async else openai.OpenAI
        client = cls(base_url=fake.url, api_key="test-key", max_retries=0)
        made.append(client)
        return client

    yield make
    for client in made:
        if isinstance(client, openai.AsyncOpenAI):
            await client.close()
        else:
            client.close()


async def _call(client: Any, *, is_async: bool, stream: bool, close_early: bool = False) -> Any:
    """One completion; a stream is read to its end (or closed after the first chunk)."""
    if is_async:
        response = await client.chat.completions.create(model="fake-model", messages=MESSAGES, stream=stream)
        if stream:
            async for _chunk in response:
                if close_early:
                    await response.close()
                    break
        return response
    response = client.chat.completions.create(model="fake-model", messages=MESSAGES, stream=stream)
    if stream:
        for _chunk in response:
            if close_early:
                response.close()
                break
    return response


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_score_mode_puts_the_result_on_the_active_span(
    tracing: Tracing, client_for: Callable[[bool], Any], fake: Any, is_async: bool, stream: bool
) -> None:
    fake.push(Reply("It is 4."))
    client = tlm_hooks.patch(client_for(is_async), scorer=lambda r: RESULT, policy=TrustPolicy(threshold=0.5))
    with tracing.tracer.start_as_current_span("app"):
        response = await _call(client, is_async=is_async, stream=stream)
    attributes = dict(tracing.span("app").attributes or {})
    assert attributes == {
        "tlm.trustworthiness_score": 0.3,
        "tlm.explanation": "shaky arithmetic",
        "tlm.low_trust": True,
        "tlm.threshold": 0.5,
        "tlm.mode": "score",
        "tlm.component.self_reflection": 0.25,
        "tlm.component.consistency": 0.4,
    }
    assert response.tlm_metadata["trustworthiness_score"] == 0.3  # the app still gets its metadata


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_route_mode_records_the_backends_score(
    tracing: Tracing, client_for: Callable[[bool], Any], fake: Any, is_async: bool
) -> None:
    fake.push(Reply("4", tlm_score=0.93), Reply("4", tlm_score=0.93))
    client = tlm_hooks.route(client_for(is_async), options={"log": ["explanation"]}, policy=TrustPolicy(threshold=0.8))
    for stream in (False, True):
        with tracing.tracer.start_as_current_span(f"app-{stream}"):
            await _call(client, is_async=is_async, stream=stream)
        attributes = dict(tracing.span(f"app-{stream}").attributes or {})
        assert attributes["tlm.trustworthiness_score"] == 0.93
        assert attributes["tlm.explanation"] == "scripted explanation"
        assert attributes["tlm.low_trust"] is False and attributes["tlm.mode"] == "route"


async def test_stream_closed_early_is_marked_partial(
    tracing: Tracing, client_for: Callable[[bool], Any], fake: Any
) -> None:
    fake.push(Reply("one two three four"))
    client = tlm_hooks.patch(client_for(True), scorer=lambda r: 0.8)
    with tracing.tracer.start_as_current_span("app"):
        await _call(client, is_async=True, stream=True, close_early=True)
    attributes = dict(tracing.span("app").attributes or {})
    assert attributes["tlm.partial"] is True and attributes["tlm.trustworthiness_score"] == 0.8


def test_fallbacks_and_errors_are_recorded(tracing: Tracing, client_for: Callable[[bool], Any], fake: Any) -> None:
    policy = TrustPolicy(threshold=0.5, on_low_trust=[fallbacks.AppendWarning()])
    client = tlm_hooks.patch(client_for(False), scorer=lambda r: 0.1, policy=policy)
    with tracing.tracer.start_as_current_span("low"):
        client.chat.completions.create(model="fake-model", messages=MESSAGES)
    low = dict(tracing.span("low").attributes or {})
    assert low["tlm.fallbacks"] == ("append_warning",) and low["tlm.low_trust"] is True

    def broken(request: Any) -> float:
        raise RuntimeError("judge down")

    failing = tlm_hooks.patch(client_for(False), scorer=broken)
    with tracing.tracer.start_as_current_span("failed"):
        reply = failing.chat.completions.create(model="fake-model", messages=MESSAGES)
    failed = dict(tracing.span("failed").attributes or {})
    assert failed["tlm.error"] == "judge down" and failed["tlm.error_type"] == "RuntimeError"
    assert "tlm.trustworthiness_score" not in failed and "tlm.low_trust" not in failed
    assert reply.tlm_metadata["error"]["message"] == "judge down"


def test_nothing_is_recorded_without_a_recording_span(client_for: Callable[[bool], Any], fake: Any) -> None:
    config = HookConfig("score", scorer=tlm_hooks.FunctionScorer(lambda r: 1.0))
    assert otel.record_on_current_span(RESULT, config) is False  # no span active

    sampled_out = Tracing(sampler=ALWAYS_OFF)
    client = tlm_hooks.patch(client_for(False), scorer=lambda r: 0.7)
    with sampled_out.tracer.start_as_current_span("dropped") as span:
        assert not span.is_recording()
        assert otel.record_on_current_span(RESULT, config) is False
        reply = client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert reply.tlm_metadata["trustworthiness_score"] == 0.7
    assert sampled_out.exporter.get_finished_spans() == ()

    tracing = Tracing()
    with tracing.tracer.start_as_current_span("before"):
        pass
    client.chat.completions.create(model="fake-model", messages=MESSAGES)  # after the span ended
    assert dict(tracing.span("before").attributes or {}) == {}


def test_a_span_that_fails_to_take_attributes_does_not_break_the_call(
    tracing: Tracing, client_for: Callable[[bool], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = tlm_hooks.patch(client_for(False), scorer=lambda r: 0.6)
    with tracing.tracer.start_as_current_span("app") as span:
        monkeypatch.setattr(type(span), "set_attributes", _explode)
        reply = client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert reply.tlm_metadata["trustworthiness_score"] == 0.6


def _explode(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("exporter bug")


def test_without_opentelemetry_the_hook_works_and_imports_nothing(
    client_for: Callable[[bool], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed: imports fail
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    client = tlm_hooks.patch(client_for(False), scorer=lambda r: 0.55)
    reply = client.chat.completions.create(model="fake-model", messages=MESSAGES)
    assert reply.tlm_metadata["trustworthiness_score"] == 0.55
    config = HookConfig("score", scorer=tlm_hooks.FunctionScorer(lambda r: 1.0))
    assert otel.record_on_current_span(RESULT, config) is False


def test_not_installed_in_a_fresh_interpreter(fake: Any) -> None:
    """With opentelemetry and mlflow unimportable, a hooked call works and nothing tries to import them."""
    code = textwrap.dedent(
        f"""
        import sys
        class Block:
            attempts = []
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("opentelemetry", "mlflow"):
                    Block.attempts.append(name)
                    raise ImportError(name)
                return None
        sys.meta_path.insert(0, Block())
        import openai, tlm_hooks
        client = tlm_hooks.patch(openai.OpenAI(base_url={fake.url!r}, api_key="k", max_retries=0), scorer=lambda r: 0.42)
        reply = client.chat.completions.create(model="m", messages=[{{"role": "user", "content": "hi"}}])
        print(reply.tlm_metadata["trustworthiness_score"], Block.attempts)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2]
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0.42", "[]"]


def test_trust_attributes_table() -> None:
    failed = TrustResult(None, error="timeout", error_type="TimeoutError", fallbacks=("abstain",))
    assert otel.trust_attributes(failed, threshold=0.7, mode="route", partial=True) == {
        "tlm.threshold": 0.7,
        "tlm.mode": "route",
        "tlm.fallbacks": ["abstain"],
        "tlm.partial": True,
        "tlm.error": "timeout",
        "tlm.error_type": "TimeoutError",
    }
    assert otel.trust_attributes(TrustResult(0.9)) == {"tlm.trustworthiness_score": 0.9}


def test_openinference_llm_span_ends_before_scoring_so_the_parent_gets_the_score(
    tracing: Tracing, client_for: Callable[[bool], Any]
) -> None:
    instrumentation = pytest.importorskip("openinference.instrumentation.openai")
    instrumentor = instrumentation.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracing.provider)
    try:
        client = tlm_hooks.patch(client_for(False), scorer=lambda r: 0.66)
        with tracing.tracer.start_as_current_span("app"):
            client.chat.completions.create(model="fake-model", messages=MESSAGES)
    finally:
        instrumentor.uninstrument()
    llm = tracing.span("ChatCompletion")
    assert llm.parent is not None and llm.parent.span_id == tracing.span("app").context.span_id
    assert dict(tracing.span("app").attributes or {})["tlm.trustworthiness_score"] == 0.66
    assert not any(key.startswith("tlm.") for key in (llm.attributes or {}))
