"""The whole path on the embedded local model: our server (ServerThread) answers a routed
OpenAI client; MLflow autolog / OpenInference trace those calls into real local MLflow and
Phoenix servers; the engine on the same embedded model scores them; the scores are read back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.embedded_model

openai = pytest.importorskip("openai")

import tlm_hooks  # noqa: E402
from tlm_hooks import BaseScorer, ScoreRequest, TLMScorer, TrustResult  # noqa: E402

KEY = "sk-embedded-integrations"
QUESTIONS = ["What is the capital of France?", "How many legs does a spider have?"]
SYSTEM = "You are a trivia master. Answer in a few words."


class Recording(BaseScorer):
    """The engine, remembering what it returned for each prompt."""

    def __init__(self, inner: TLMScorer) -> None:
        self.inner = inner
        self.max_concurrency = 1
        self.results: dict[str, TrustResult] = {}

    async def ascore(self, request: ScoreRequest) -> TrustResult:
        result = await self.inner.ascore(request)
        self.results[request.prompt_text()] = result
        return result


@pytest.fixture(scope="module")
def embedded() -> Iterator[Any]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    from tlm_hooks.llm.local import LocalBackend
    from tlm_hooks.local.model import get_default_model
    from tlm_hooks.server import DefaultScorers, Limits, ServerThread, create_app

    model = get_default_model()  # the judge below uses the same process-wide model
    app = create_app(
        model, scorer=DefaultScorers(judge=LocalBackend(model)), api_keys=[KEY], limits=Limits(timeout=600)
    )
    with ServerThread(app) as running:
        yield running


def _ask(server: Any) -> None:
    client = tlm_hooks.route(
        openai.OpenAI(base_url=f"{server.base_url}/api", api_key=KEY, max_retries=0, timeout=600), quality_preset="base"
    )
    for question in QUESTIONS:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
        reply = client.chat.completions.create(model="smollm2", messages=messages, max_tokens=12)
        assert 0.0 <= reply.tlm_metadata["trustworthiness_score"] <= 1.0


def _engine() -> Recording:
    return Recording(TLMScorer("base", options={"log": ["explanation"], "max_tokens": 24}))


def _check(recorded: dict[str, TrustResult], prompt: str, score: float, explanation: str | None) -> None:
    assert SYSTEM in prompt, prompt  # the system prompt was part of what got scored
    want = recorded[prompt]
    assert want.trustworthiness_score is not None and 0.0 <= want.trustworthiness_score <= 1.0
    assert score == pytest.approx(want.trustworthiness_score)
    assert explanation and want.explanation and explanation.strip() == want.explanation.strip()


def test_mlflow_traces_of_embedded_model_calls(embedded: Any, mlflow_server: Any) -> None:
    mlflow = pytest.importorskip("mlflow")
    import uuid

    from tlm_hooks.integrations.mlflow import request_from_trace, score_mlflow_traces

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.url)
    experiment_id = mlflow.set_experiment(f"embedded-{uuid.uuid4().hex[:8]}").experiment_id
    mlflow.openai.autolog()
    try:
        _ask(embedded)
    finally:
        tlm_hooks.unpatch_all()
        mlflow.openai.autolog(disable=True)
        mlflow.set_tracking_uri(previous)

    engine = _engine()
    summary = score_mlflow_traces(experiment_id, tracking_uri=mlflow_server.url, scorer=engine, batch_size=2)
    assert (summary.seen, summary.scored, summary.failed) == (2, 2, 0), summary
    traces = mlflow.MlflowClient(mlflow_server.url).search_traces(locations=[experiment_id])
    for trace in traces:
        request = request_from_trace(trace)
        assert request is not None
        [feedback] = [a for a in trace.info.assessments if a.name == "trust_score"]
        _check(
            engine.results, request.prompt_text(), float(trace.info.tags["trust_score"]), trace.info.tags["explanation"]
        )
        assert feedback.value == pytest.approx(float(trace.info.tags["trust_score"]))
        assert feedback.source.source_type == "LLM_JUDGE"


def test_phoenix_spans_of_embedded_model_calls(embedded: Any, phoenix_server: Any) -> None:
    pytest.importorskip("phoenix.client")
    instrumentation = pytest.importorskip("openinference.instrumentation.openai")
    import uuid

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from phoenix.client import Client
    from traceutil import wait_for

    from tlm_hooks.integrations.phoenix import request_from_span, score_phoenix_spans

    project = f"embedded-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({"openinference.project.name": project}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{phoenix_server.url}/v1/traces")))
    instrumentor = instrumentation.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        _ask(embedded)
    finally:
        tlm_hooks.unpatch_all()
        instrumentor.uninstrument()
        provider.shutdown()

    client = Client(base_url=phoenix_server.url)

    def spans() -> list[Any]:
        try:
            return list(client.spans.get_spans(project_identifier=project, limit=100))
        except Exception:
            return []

    found = wait_for(lambda: len(spans()) >= 2 and spans(), what="2 spans in Phoenix")
    engine = _engine()
    summary = score_phoenix_spans(project, endpoint=phoenix_server.url, scorer=engine)
    assert (summary.seen, summary.scored, summary.failed) == (2, 2, 0), summary
    annotations = client.spans.get_span_annotations(spans=found, project_identifier=project)
    by_span = {a["span_id"]: a for a in annotations if a["name"] == "Trustworthiness"}
    for span in found:
        request = request_from_span(span)
        assert request is not None
        annotation = by_span[span["context"]["span_id"]]
        _check(
            engine.results, request.prompt_text(), annotation["result"]["score"], annotation["result"]["explanation"]
        )
        assert annotation["annotator_kind"] == "LLM"
