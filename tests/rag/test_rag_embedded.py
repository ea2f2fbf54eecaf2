"""TrustworthyRAG on the real embedded model (SmolLM2-135M) as the judge.

The clear case: the context states a fact, one response restates it, the other contradicts it.
Measured on the 80-item set in benchmarks/rag (see benchmarks/README.md, "RAG evals"), this
135M judge orders such pairs only a little better than chance, so this test does not assert
that groundedness ranks the two correctly; it asserts what holds for any judge: every part is
scored and in range, the real model was asked the eval prompts, the evals without a response
identifier were shown the same material for both answers (and no answer), and generate()
answers and scores. (Equal scores for those evals are not asserted: llama.cpp reuses its cache
between calls, so the same prompt can come back with slightly different logprobs.) The two
groundedness scores are printed for the record.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.embedded_model, pytest.mark.timeout(1800)]  # slow on a shared CPU

CONTEXT = "The Harbor City Marathon starts at 7:30 am at Pier 4. Runners collect their bib numbers the day before."
QUERY = "Where does the Harbor City Marathon start?"
RESTATES = "It starts at Pier 4, at 7:30 am."
CONTRADICTS = "It starts at Central Station, at 6 am."
NAMES = ["context_sufficiency", "response_groundedness", "response_helpfulness", "query_ease"]


class Recording:
    """The real embedded-model judge, recording the prompt of every call."""

    def __init__(self) -> None:
        from tlm_hooks.llm.local import LocalBackend

        self.inner = LocalBackend()
        self.name = self.inner.name
        self.prompts: list[str] = []

    async def acomplete(self, messages, **kwargs):  # type: ignore[no-untyped-def]
        self.prompts.append(str(messages[-1]["content"]))
        return await self.inner.acomplete(messages, **kwargs)


@pytest.fixture(scope="module")
def judge() -> Recording:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    return Recording()


@pytest.fixture(scope="module")
def rag(judge: Recording):  # type: ignore[no-untyped-def]
    from tlm_hooks.rag import TrustworthyRAG

    return TrustworthyRAG("low", options={"max_tokens": 24, "log": ["explanation"]}, judge=judge)  # type: ignore[arg-type]


def test_clear_case_on_the_embedded_model(rag, judge: Recording) -> None:  # type: ignore[no-untyped-def]
    from tlm_hooks.rag import DEFAULT_EVALS

    good, bad = rag.score_batch(
        [
            {"query": QUERY, "context": CONTEXT, "response": RESTATES},
            {"query": QUERY, "context": CONTEXT, "response": CONTRADICTS},
        ]
    )
    for result in (good, bad):
        assert result.ok, result.errors
        assert list(result) == ["trustworthiness", *NAMES]
        assert all(0.0 <= score <= 1.0 for score in [result.trustworthiness_score, *result.eval_scores.values()])
        assert result["trustworthiness"]["log"]["explanation"]
    for ev in DEFAULT_EVALS:
        asked = [p for p in judge.prompts if ev.criteria in p]
        assert len(asked) == 2, ev.name  # preset low: one prompt per eval and item
        if ev.needs_response:
            assert RESTATES in asked[0] + asked[1] and CONTRADICTS in asked[0] + asked[1]
        else:  # the same material for both answers, and neither answer in it
            assert asked[0] == asked[1] and RESTATES not in asked[0] and CONTRADICTS not in asked[0]
    print(
        f"\nresponse_groundedness: restates {good['response_groundedness']['score']:.3f}, "
        f"contradicts {bad['response_groundedness']['score']:.3f}; trustworthiness: restates "
        f"{good.trustworthiness_score:.3f}, contradicts {bad.trustworthiness_score:.3f}"
    )


def test_generate_on_the_embedded_model(rag) -> None:  # type: ignore[no-untyped-def]
    result = rag.generate(QUERY, CONTEXT)
    assert isinstance(result.response, str) and result.response.strip()
    assert list(result) == ["response", "trustworthiness", *NAMES] and result.ok, result.errors
    assert all(0.0 <= score <= 1.0 for score in [result.trustworthiness_score, *result.eval_scores.values()])
