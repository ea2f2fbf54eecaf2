"""Scores where LlamaIndex users read results: the query engine's Response, and the spans of
OpenInference's LlamaIndex instrumentor (run for real, exported in memory)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from li_util import FakeRAG, ScriptedLLM
from llama_index.core import VectorStoreIndex
from llama_index.core.base.response.schema import StreamingResponse

import tlm_hooks
from tlm_hooks import ScoreRequest, TrustResult
from tlm_hooks.integrations.llamaindex import TrustEventHandler
from tlm_hooks.integrations.llamaindex import queries as li_queries
from tlm_hooks.integrations.llamaindex.spans import SCORE_SPAN_NAME


def engine(index: VectorStoreIndex, llm: ScriptedLLM, **kwargs: Any) -> Any:
    return index.as_query_engine(llm=llm, similarity_top_k=1, **kwargs)


class PerCallScorer:
    """A different, reproducible score for every (prompt, answer); remembers what it gave."""

    def __init__(self) -> None:
        self.given: list[tuple[str, float]] = []
        self._lock = threading.Lock()

    def __call__(self, request: ScoreRequest) -> TrustResult:
        digest = hashlib.sha256(f"{request.prompt_text()}\x00{request.response}".encode()).digest()
        score = round(0.05 + 0.9 * digest[0] / 255, 4)
        with self._lock:
            self.given.append((request.response, score))
        return TrustResult(score, explanation=f"for {request.response!r}")


@pytest.fixture
def patched(llm: ScriptedLLM) -> Iterator[tuple[ScriptedLLM, PerCallScorer]]:
    scorer = PerCallScorer()
    tlm_hooks.patch(llm, scorer=scorer)
    yield llm, scorer
    tlm_hooks.unpatch(llm)


def _on_response(response: Any) -> dict[str, Any]:
    on_attribute = response.tlm_metadata
    in_metadata = response.metadata["tlm_metadata"]
    assert on_attribute == in_metadata
    return in_metadata


def test_a_patched_llm_puts_its_score_on_the_query_response(
    index: VectorStoreIndex, patched: tuple[ScriptedLLM, PerCallScorer]
) -> None:
    llm, scorer = patched
    llm.say("Paris.")
    response = engine(index, llm).query("What is the capital of France?")
    [(answer, score)] = scorer.given
    assert answer == "Paris." and str(response) == "Paris."
    metadata = _on_response(response)
    assert metadata["trustworthiness_score"] == score
    # the source metadata LlamaIndex puts there is kept
    assert any(key != "tlm_metadata" for key in response.metadata)
    assert li_queries._OPEN.get() == ()  # nothing left open


def test_the_last_llm_call_of_a_refining_query_is_the_one_on_the_response(
    index: VectorStoreIndex, patched: tuple[ScriptedLLM, PerCallScorer]
) -> None:
    llm, scorer = patched
    llm.say("Paris, probably.", "Paris, surely.")
    response = index.as_query_engine(llm=llm, similarity_top_k=2, response_mode="refine").query(
        "What is the capital of France?"
    )
    assert len(scorer.given) == 2  # one call per retrieved chunk
    assert str(response) == "Paris, surely."
    assert _on_response(response)["trustworthiness_score"] == scorer.given[-1][1]


async def test_async_query_response_gets_the_score(
    index: VectorStoreIndex, patched: tuple[ScriptedLLM, PerCallScorer]
) -> None:
    llm, scorer = patched
    llm.say("Berlin.")
    response = await engine(index, llm).aquery("What is the capital of Germany?")
    assert _on_response(response)["trustworthiness_score"] == scorer.given[-1][1]


def test_a_streamed_answer_gets_its_score_when_the_stream_ends(
    index: VectorStoreIndex, patched: tuple[ScriptedLLM, PerCallScorer]
) -> None:
    llm, scorer = patched
    llm.say("The capital is Paris.")
    response = engine(index, llm, streaming=True).query("What is the capital of France?")
    assert isinstance(response, StreamingResponse)
    assert getattr(response, "tlm_metadata", None) is None  # not scored before the answer exists
    assert "".join(response.response_gen) == "The capital is Paris."
    assert _on_response(response)["trustworthiness_score"] == scorer.given[-1][1]


def test_queries_outside_a_patched_llm_and_failing_queries_leave_nothing(
    index: VectorStoreIndex, patched: tuple[ScriptedLLM, PerCallScorer]
) -> None:
    llm, _ = patched
    other = ScriptedLLM(default="Unscored.")
    response = engine(index, other).query("What is the capital of France?")
    assert getattr(response, "tlm_metadata", None) is None
    assert "tlm_metadata" not in (response.metadata or {})
    llm.fail_with(RuntimeError("model down"))
    with pytest.raises(RuntimeError, match="model down"):
        engine(index, llm).query("What is the capital of France?")
    assert li_queries._OPEN.get() == ()


def test_a_direct_llm_call_is_unchanged(patched: tuple[ScriptedLLM, PerCallScorer]) -> None:
    llm, scorer = patched
    response = llm.complete("What is 2+2?")
    assert response.additional_kwargs["tlm_metadata"]["trustworthiness_score"] == scorer.given[-1][1]


# -- the background handler -----------------------------------------------------------------------


def test_the_handler_puts_the_query_score_on_the_response_when_ready(index: VectorStoreIndex) -> None:
    rag = FakeRAG(trust=0.61, groundedness=0.9)
    handler = TrustEventHandler(scorer=PerCallScorer(), rag=rag).register()
    try:
        response = engine(index, ScriptedLLM(default="Paris.")).query("What is the capital of France?")
        assert handler.wait(30)
        metadata = _on_response(response)
        assert metadata["trustworthiness_score"] == handler.result_for(response).score == 0.61
        assert metadata["response_groundedness"]["score"] == 0.9
    finally:
        handler.close()


# -- OpenInference's LlamaIndex instrumentor ---------------------------------------------------------


class Traced:
    def __init__(self) -> None:
        from openinference.instrumentation.llama_index import LlamaIndexInstrumentor
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.instrumentor = LlamaIndexInstrumentor()
        self.instrumentor.instrument(tracer_provider=self.provider)

    def spans(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def named(self, suffix: str) -> Any:
        [found] = [s for s in self.spans() if s.name.endswith(suffix)]
        return found

    def close(self) -> None:
        self.instrumentor.uninstrument()
        self.provider.shutdown()


@pytest.fixture
def traced() -> Iterator[Traced]:
    pytest.importorskip("openinference.instrumentation.llama_index", reason="openinference-instrumentation-llama-index")
    pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk is not installed")
    tracing = Traced()
    yield tracing
    tracing.close()


def test_openinference_query_and_llm_spans_carry_a_patched_llms_score(
    index: VectorStoreIndex, patched: tuple[ScriptedLLM, PerCallScorer], traced: Traced
) -> None:
    llm, scorer = patched
    llm.say("Paris.")
    response = engine(index, llm).query("What is the capital of France?")
    score = scorer.given[-1][1]
    query_span = traced.named("QueryEngine.query")
    assert query_span.attributes["tlm.trustworthiness_score"] == score == response.tlm_metadata["trustworthiness_score"]
    assert query_span.attributes["tlm.mode"] == "score"
    assert query_span.attributes["tlm.low_trust"] == (score < 0.5)
    llm_spans = [s for s in traced.spans() if s.attributes.get("openinference.span.kind") == "LLM"]
    assert any(s.attributes.get("tlm.trustworthiness_score") == score for s in llm_spans)


def test_openinference_spans_get_the_handlers_scores_as_evaluator_children(
    index: VectorStoreIndex, traced: Traced
) -> None:
    from opentelemetry import trace

    rag = FakeRAG(trust=0.61)
    handler = TrustEventHandler(scorer=PerCallScorer(), rag=rag, tracer_provider=traced.provider).register()
    try:
        engine(index, ScriptedLLM(default="Paris.")).query("What is the capital of France?")
        assert handler.wait(30)
    finally:
        handler.close()
    spans = traced.spans()
    by_id = {s.context.span_id: s for s in spans}
    scores = [s for s in spans if s.name == SCORE_SPAN_NAME]
    assert {s.attributes["tlm.subject"] for s in scores} == {"llm", "query"}
    for child in scores:
        parent = by_id[child.parent.span_id]
        assert child.context.trace_id == parent.context.trace_id
        assert child.attributes["openinference.span.kind"] == "EVALUATOR"
        if child.attributes["tlm.subject"] == "query":
            assert parent.name.endswith("QueryEngine.query")
            assert child.attributes["tlm.trustworthiness_score"] == 0.61
        else:
            assert parent.attributes["openinference.span.kind"] == "LLM"
            [llm_result] = handler.results("llm")
            assert child.attributes["tlm.trustworthiness_score"] == llm_result.score
    assert trace.get_current_span().is_recording() is False  # nothing left current
