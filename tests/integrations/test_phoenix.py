"""Phoenix: LLM spans sent to a real local Phoenix server (OpenInference's OpenAI
instrumentation over OTLP/HTTP, calls to the loopback fake OpenAI server), scored, and the
span annotations read back from the server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("phoenix.client", reason="arize-phoenix-client is not installed (extra [phoenix])")
pytest.importorskip(
    "openinference.instrumentation.openai", reason="openinference-instrumentation-openai is not installed"
)
pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the OTLP/HTTP exporter is not installed")
openai = pytest.importorskip("openai")

from fake_openai import Reply  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from phoenix.client import Client  # noqa: E402
from traceutil import BRIEF_SYSTEM, ONE_WORD_SYSTEM, TRIVIA_SYSTEM, expected_for, predictable, wait_for  # noqa: E402

import tlm_hooks  # noqa: E402
from tlm_hooks import InvalidOptionError  # noqa: E402
from tlm_hooks.integrations.phoenix import score_phoenix_spans  # noqa: E402

CAPITAL = [{"role": "system", "content": TRIVIA_SYSTEM}, {"role": "user", "content": "What is the capital of France?"}]
PLANET = [{"role": "system", "content": ONE_WORD_SYSTEM}, {"role": "user", "content": "Largest planet?"}]
AGENT = [{"role": "system", "content": BRIEF_SYSTEM}, {"role": "user", "content": "Who wrote Hamlet?"}]


class Traced:
    """A project on the Phoenix server and the tracer provider that sends spans to it."""

    def __init__(self, url: str) -> None:
        from openinference.instrumentation.openai import OpenAIInstrumentor

        self.url = url
        self.project = f"tlm-{uuid.uuid4().hex[:10]}"
        resource = Resource.create({"openinference.project.name": self.project})
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces")))
        self.instrumentor = OpenAIInstrumentor()
        self.instrumentor.instrument(tracer_provider=self.provider)
        self.client = Client(base_url=url)

    def spans(self, kind: str | None = None) -> list[dict[str, Any]]:
        found = self.client.spans.get_spans(project_identifier=self.project, limit=1000)
        return [s for s in found if kind is None or s["span_kind"] == kind]

    def wait_for_spans(self, count: int) -> list[dict[str, Any]]:
        return wait_for(lambda: len(self._spans_or_none()) >= count and self.spans(), what=f"{count} spans in Phoenix")

    def _spans_or_none(self) -> list[dict[str, Any]]:
        try:
            return self.spans()
        except Exception:  # the project appears with its first span
            return []

    def annotations(self, name: str = "Trustworthiness") -> dict[str, list[dict[str, Any]]]:
        ids = [s["context"]["span_id"] for s in self.spans()]
        found = self.client.spans.get_span_annotations(span_ids=ids, project_identifier=self.project)
        out: dict[str, list[dict[str, Any]]] = {}
        for annotation in found:
            if annotation["name"] == name:
                out.setdefault(annotation["span_id"], []).append(annotation)
        return out

    def close(self) -> None:
        self.instrumentor.uninstrument()
        self.provider.shutdown()


@pytest.fixture
def traced(phoenix_server: Any) -> Iterator[Traced]:
    tracing = Traced(phoenix_server.url)
    yield tracing
    tlm_hooks.unpatch_all()
    tracing.close()


def _log_spans(fake: Any, traced: Traced) -> dict[str, Any]:
    """Four LLM spans (one failed call without an answer) and one CHAIN span around a hooked
    call; returns the expected result per user question."""
    client = openai.OpenAI(base_url=fake.url, api_key="test-key", max_retries=0)
    fake.push(Reply("Paris."), Reply("Jupiter"), Reply(status=500), Reply("Shakespeare."))
    client.chat.completions.create(model="fake-model", messages=CAPITAL)
    for _chunk in client.chat.completions.create(model="fake-model", messages=PLANET, stream=True):
        pass
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "Fails?"}])
    hooked = tlm_hooks.patch(
        openai.OpenAI(base_url=fake.url, api_key="test-key", max_retries=0),
        scorer=lambda r: tlm_hooks.TrustResult(0.2, explanation="hooked"),
    )
    tracer = traced.provider.get_tracer("app")
    with tracer.start_as_current_span("agent", attributes={"openinference.span.kind": "CHAIN"}):
        hooked.chat.completions.create(model="fake-model", messages=AGENT)
    traced.wait_for_spans(5)
    return {
        "capital of France": expected_for(CAPITAL, "Paris."),
        "Largest planet": expected_for(PLANET, "Jupiter"),
        "Hamlet": expected_for(AGENT, "Shakespeare."),
    }


def _question(span: dict[str, Any]) -> str:
    return str(span["attributes"].get("input.value", ""))


def test_llm_spans_get_trustworthiness_annotations(fake: Any, traced: Traced) -> None:
    expected = _log_spans(fake, traced)
    summary = score_phoenix_spans(
        traced.project, endpoint=traced.url, scorer=predictable, page_size=2, batch_size=3, threshold=0.5
    )
    assert (summary.seen, summary.scored, summary.unreadable, summary.failed) == (4, 3, 1, 0), summary

    annotations = traced.annotations()
    llm_spans = traced.spans("LLM")
    assert len(llm_spans) == 4
    for span in llm_spans:
        keys = [k for k in expected if k in _question(span)]
        found = annotations.get(span["context"]["span_id"], [])
        if not keys:  # the failed call: nothing to score
            assert found == [] and summary.unreadable_keys == [span["context"]["span_id"]]
            continue
        want = expected[keys[0]]
        [annotation] = found
        result = annotation["result"]
        assert result["score"] == pytest.approx(want.trustworthiness_score)
        assert result["explanation"] == want.explanation
        assert result["label"] == ("trustworthy" if want.trustworthiness_score >= 0.5 else "untrustworthy")
        assert annotation["annotator_kind"] == "CODE"
    assert TRIVIA_SYSTEM in expected["capital of France"].explanation


def test_hooked_call_records_the_score_on_the_enclosing_span_in_phoenix(fake: Any, traced: Traced) -> None:
    _log_spans(fake, traced)
    [agent] = traced.spans("CHAIN")
    assert agent["attributes"]["tlm.trustworthiness_score"] == pytest.approx(0.2)
    assert agent["attributes"]["tlm.explanation"] == "hooked"
    assert agent["attributes"]["tlm.low_trust"] is True


def test_rerun_skips_and_overwrite_updates_in_place(fake: Any, traced: Traced) -> None:
    _log_spans(fake, traced)
    score_phoenix_spans(traced.project, endpoint=traced.url, scorer=predictable)
    again = score_phoenix_spans(traced.project, endpoint=traced.url, scorer=predictable)
    assert (again.seen, again.scored, again.already_scored, again.unreadable) == (4, 0, 3, 1)

    redo = score_phoenix_spans(
        traced.project, endpoint=traced.url, scorer=lambda r: 0.9, overwrite=True, annotation_name="Trustworthiness"
    )
    assert redo.scored == 3
    annotations = traced.annotations()
    assert len(annotations) == 3
    for found in annotations.values():
        [annotation] = found  # replaced, not added
        assert annotation["result"]["score"] == pytest.approx(0.9) and annotation["result"]["label"] == "trustworthy"


def test_span_kind_none_reads_every_span_and_max_results_limits(fake: Any, traced: Traced) -> None:
    _log_spans(fake, traced)
    everything = score_phoenix_spans(
        traced.project, endpoint=traced.url, scorer=predictable, span_kind=None, max_results=5
    )
    assert (everything.seen, everything.scored, everything.unreadable) == (5, 3, 2)  # the CHAIN span has no I/O

    other = score_phoenix_spans(
        traced.project, endpoint=traced.url, scorer=predictable, annotation_name="Other", max_results=2
    )
    assert other.seen == 2
    assert len(traced.annotations("Other")) == other.scored


def test_span_filter_narrows_the_spans(fake: Any, traced: Traced) -> None:
    _log_spans(fake, traced)
    summary = score_phoenix_spans(
        traced.project, endpoint=traced.url, scorer=predictable, span_filter=lambda s: "France" in _question(s)
    )
    assert (summary.seen, summary.scored) == (1, 1)


def test_unknown_project(phoenix_server: Any) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        score_phoenix_spans("no-such-project-here", endpoint=phoenix_server.url, scorer=predictable)
    assert caught.value.key == "project_name"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"project_name": ""}, "project_name"),
        ({"span_kind": ""}, "span_kind"),
        ({"span_name": [1]}, "span_name"),
        ({"span_filter": "LLM"}, "span_filter"),
        ({"batch_size": 0}, "batch_size"),
        ({"threshold": 1.5}, "threshold"),
        ({"annotation_name": " "}, "annotation_name"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_bad_arguments_fail_before_any_request(kwargs: dict[str, Any], key: str) -> None:
    kwargs = {"project_name": "p", **kwargs}
    with pytest.raises(InvalidOptionError) as caught:
        score_phoenix_spans(endpoint="http://127.0.0.1:9", scorer=predictable, **kwargs)
    assert caught.value.key == key


def test_server_made_no_outbound_connection(phoenix_server: Any) -> None:
    assert phoenix_server.trap.attempts == []
