"""Evidence on the real thing: a VectorStoreIndex over local documents (HashingEmbedding: no
download), answered by the embedded local model through LocalLLM, scored end to end."""

from __future__ import annotations

from typing import Any

import pytest
from li_util import DOCUMENTS
from llama_index.core import Document, VectorStoreIndex

import tlm_hooks
from tlm_hooks.integrations.llamaindex import HashingEmbedding, LocalLLM, TrustEventHandler

pytestmark = pytest.mark.embedded_model

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def model() -> Any:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    from tlm_hooks.local import get_default_model

    return get_default_model()


@pytest.fixture(scope="module")
def local_index() -> VectorStoreIndex:
    return VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS], embed_model=HashingEmbedding())


def test_query_answer_comes_back_scored_with_rag_evals(model: Any, local_index: VectorStoreIndex) -> None:
    from tlm_hooks.llm.local import LocalBackend
    from tlm_hooks.rag import DEFAULT_EVALS, TrustworthyRAG

    judge = LocalBackend(model)
    groundedness = [e for e in DEFAULT_EVALS if e.name == "response_groundedness"]
    rag = TrustworthyRAG("base", {"max_tokens": 16}, groundedness, judge=judge)
    handler = TrustEventHandler(rag=rag, score_llm_calls=False).register()
    llm = tlm_hooks.patch(LocalLLM(model, max_tokens=24), scorer=tlm_hooks.LogprobScorer())
    alone = llm.complete("Say hello.")  # the patched LLM alone: scored from its own token logprobs
    assert 0.0 < alone.additional_kwargs["tlm_metadata"]["trustworthiness_score"] <= 1.0

    response = local_index.as_query_engine(llm=llm, similarity_top_k=1).query(QUESTION)
    assert handler.wait(600)
    scored = handler.result_for(response)
    assert scored is not None and scored.kind == "query" and scored.prompt == QUESTION
    assert scored.response == response.response and response.response.strip()
    assert scored.context == (DOCUMENTS[0],)  # the Paris passage was retrieved and judged against
    assert scored.result.error is None, scored.result
    assert 0.0 <= scored.score <= 1.0
    assert 0.0 <= scored.result.evals["response_groundedness"]["score"] <= 1.0
    handler.close()


def test_low_trust_query_answer_is_replaced_by_the_fallback(model: Any, local_index: VectorStoreIndex) -> None:
    policy = tlm_hooks.TrustPolicy(
        threshold=1.0,  # nothing a real model says reaches it: the fallback fires
        on_low_trust=[tlm_hooks.fallbacks.ReplaceResponse(lambda event: f"Withheld (trust {event.score:.2f}).")],
    )
    llm = tlm_hooks.patch(LocalLLM(model, max_tokens=24), scorer=tlm_hooks.LogprobScorer(), policy=policy)
    engine = local_index.as_query_engine(llm=llm, similarity_top_k=1)
    response = engine.query(QUESTION)
    assert response.response.startswith("Withheld (trust 0.") and response.response.endswith(").")
    tlm_hooks.unpatch(llm)
    plain = engine.query(QUESTION)
    assert not plain.response.startswith("Withheld")
