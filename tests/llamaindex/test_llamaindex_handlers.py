"""TrustEventHandler and TLMCallbackHandler: observe-only scoring of LLM calls and query answers."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from li_util import BlockingScorer, CountingScorer, FakeRAG, ScriptedLLM
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.callbacks import CallbackManager
from llama_index.core.instrumentation import get_dispatcher

import tlm_hooks
from tlm_hooks.integrations.llamaindex import ScoredCall, TLMCallbackHandler, TrustEventHandler

HANDLERS = [TrustEventHandler, TLMCallbackHandler]


def engine(index: VectorStoreIndex, llm: ScriptedLLM, **kwargs: Any) -> Any:
    return index.as_query_engine(llm=llm, similarity_top_k=1, **kwargs)


def make(kind: type, *args: Any, **kwargs: Any) -> Any:
    handler = kind(*args, **kwargs)
    return handler.register()


@pytest.mark.parametrize("kind", HANDLERS)
def test_a_query_answer_is_scored_with_its_retrieved_context(
    kind: type, index: VectorStoreIndex, llm: ScriptedLLM
) -> None:
    rag, seen = FakeRAG(trust=0.7, groundedness=0.9), []
    handler = make(kind, scorer=CountingScorer(0.4), rag=rag, on_result=seen.append)
    response = engine(index, llm).query("What is the capital of Germany?")
    assert handler.wait(10)
    assert rag.calls == [
        {
            "query": "What is the capital of Germany?",
            "context": [index.docstore.docs[_doc_id(index, "Berlin")].get_content()],
            "response": "The answer is Paris.",
        }
    ]
    query = handler.result_for(response)
    assert isinstance(query, ScoredCall) and query.kind == "query"
    assert query.score == 0.7 and query.result.evals == {"response_groundedness": {"score": 0.9}}
    assert query.metadata["response_groundedness"] == {"score": 0.9}
    assert handler.result_for(query.id) is query
    llm_calls = handler.results(kind="llm")
    assert len(llm_calls) == 1 and llm_calls[0].query_id == query.id and llm_calls[0].score == 0.4
    assert "What is the capital of Germany?" in llm_calls[0].prompt  # the synthesis prompt
    assert sorted(s.kind for s in seen) == ["llm", "query"]
    assert handler.query_results(query.id) == handler.results()
    # observe-only: the app's answer is exactly what the LLM said
    assert response.response == "The answer is Paris." and response.metadata is not None
    handler.close()


def _doc_id(index: VectorStoreIndex, word: str) -> str:
    return next(i for i, node in index.docstore.docs.items() if word in node.get_content())


@pytest.mark.parametrize("kind", HANDLERS)
async def test_async_and_streamed_queries(kind: type, index: VectorStoreIndex) -> None:
    rag = FakeRAG()
    handler = make(kind, scorer=CountingScorer(), rag=rag)
    llm = ScriptedLLM(default="Bananas are yellow.")
    first = await engine(index, llm).aquery("Which fruit is yellow?")
    streamed = engine(index, llm, streaming=True).query("What colour are bananas?")
    assert handler.wait(10)
    assert handler.result_for(streamed) is None  # not scored before the answer is complete
    assert "".join(streamed.response_gen) == "Bananas are yellow."
    assert handler.wait(10)
    assert handler.result_for(first).response == "Bananas are yellow."
    scored = handler.result_for(streamed)
    assert (
        scored is not None and scored.response == "Bananas are yellow." and scored.prompt == "What colour are bananas?"
    )
    assert "Bananas are a yellow fruit" in scored.context[0]
    handler.close()


@pytest.mark.parametrize("kind", HANDLERS)
def test_plain_llm_calls_are_scored_once(kind: type) -> None:
    scorer = CountingScorer(0.55)
    handler = make(kind, scorer=scorer, rag=FakeRAG())
    llm = ScriptedLLM()
    response = llm.chat([ChatMessage(role="user", content="Capital of France?")])  # chat -> complete inside
    assert handler.wait(10)
    assert scorer.calls == 1 and scorer.requests[0].messages == ({"role": "user", "content": "Capital of France?"},)
    (item,) = handler.results()
    assert (
        item.kind == "llm" and item.query_id is None and item.response == "The answer is Paris." and item.score == 0.55
    )
    assert "tlm_metadata" not in response.additional_kwargs  # observe-only
    handler.close()


@pytest.mark.parametrize("kind", HANDLERS)
def test_the_app_never_waits_for_a_score(kind: type) -> None:
    scorer = BlockingScorer()
    handler = make(kind, scorer=scorer, rag=FakeRAG())
    llm = ScriptedLLM()
    done = threading.Event()

    def app() -> None:
        llm.complete("one")
        llm.complete("two")
        done.set()

    threading.Thread(target=app, daemon=True).start()
    assert done.wait(10)  # both calls returned while the first score is still blocked
    assert scorer.started.wait(10) and scorer.calls == 0
    assert handler.pending == 2 and handler.results() == []
    scorer.release()
    assert handler.wait(10) and scorer.calls == 2 and handler.pending == 0
    handler.close()


@pytest.mark.parametrize("kind", HANDLERS)
def test_a_full_queue_drops_with_a_counted_warning(kind: type, caplog: pytest.LogCaptureFixture) -> None:
    scorer = BlockingScorer()
    handler = make(kind, scorer=scorer, rag=FakeRAG(), max_pending=2)
    llm = ScriptedLLM()
    llm.complete("first")
    assert scorer.started.wait(10)  # the worker holds the first job
    with caplog.at_level(logging.WARNING, logger="tlm_hooks"):
        for i in range(4):
            llm.complete(f"more {i}")
    assert handler.dropped == 2
    assert [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()] == [
        "tlm-hooks: LlamaIndex scoring queue full (2 pending): 1 event(s) dropped unscored so far"
    ]  # one warning, not one per drop
    scorer.release()
    assert handler.wait(10)
    assert [r.prompt for r in handler.results()] == ["first", "more 0", "more 1"]  # 1 running + 2 waiting
    handler.close()


@pytest.mark.parametrize("kind", HANDLERS)
def test_results_are_bounded(kind: type) -> None:
    handler = make(kind, scorer=CountingScorer(), rag=FakeRAG(), max_results=3)
    llm = ScriptedLLM()
    for i in range(5):
        llm.complete(f"q{i}")
    assert handler.wait(10)
    assert [r.prompt for r in handler.results()] == ["q2", "q3", "q4"]
    handler.close()


def test_event_handler_registers_and_unregisters_idempotently() -> None:
    root = get_dispatcher()
    handler = TrustEventHandler(scorer=CountingScorer(), rag=FakeRAG())
    handler.register()
    handler.register()
    assert sum(h is handler for h in root.event_handlers) == 1
    assert sum(h is handler._spans for h in root.span_handlers) == 1
    twin = TrustEventHandler(scorer=CountingScorer(), rag=FakeRAG()).register()  # equal fields, still its own
    assert sum(h is twin for h in root.event_handlers) == 1 and sum(h is handler for h in root.event_handlers) == 1
    assert handler.unregister() is True and handler.unregister() is False
    assert not any(h is handler or h is handler._spans for h in (*root.event_handlers, *root.span_handlers))
    assert any(h is twin for h in root.event_handlers)
    twin.close()
    ScriptedLLM().complete("after")
    assert handler.wait(5) and handler.results() == []


def test_event_handler_can_listen_on_one_dispatcher_and_move() -> None:
    inner = get_dispatcher("llama_index.core.llms.callbacks")
    handler = TrustEventHandler(scorer=CountingScorer(), rag=FakeRAG()).register(inner)
    assert any(h is handler for h in inner.event_handlers)
    handler.register()  # moved to the root
    assert not any(h is handler for h in inner.event_handlers) and any(
        h is handler for h in get_dispatcher().event_handlers
    )
    handler.close()


def test_callback_handler_registers_and_unregisters_idempotently() -> None:
    manager = CallbackManager([])
    handler = TLMCallbackHandler(scorer=CountingScorer(), rag=FakeRAG())
    handler.register(manager)
    handler.register(manager)
    assert manager.handlers.count(handler) == 1
    handler.register()  # moves to Settings.callback_manager
    assert handler not in manager.handlers and Settings.callback_manager.handlers.count(handler) == 1
    assert handler.unregister() is True and handler.unregister() is False
    assert handler not in Settings.callback_manager.handlers


@pytest.mark.parametrize("kind", HANDLERS)
def test_a_query_that_raises_leaves_nothing_behind(kind: type, index: VectorStoreIndex) -> None:
    handler = make(kind, scorer=CountingScorer(), rag=FakeRAG())
    llm = ScriptedLLM()
    llm.fail_with(TimeoutError("slow"))
    with pytest.raises(TimeoutError):
        engine(index, llm).query("What is the capital of France?")
    assert handler.wait(10) and handler.results() == []
    assert len(handler._core.tracker) == 0
    handler.close()


@pytest.mark.parametrize("kind", HANDLERS)
def test_a_patched_llm_is_not_scored_again_by_the_handler(kind: type, index: VectorStoreIndex) -> None:
    hook_scorer, handler_scorer = CountingScorer(0.3), CountingScorer(0.9)
    llm = ScriptedLLM()
    tlm_hooks.patch(llm, scorer=hook_scorer)
    handler = make(kind, scorer=handler_scorer, rag=FakeRAG())
    response = engine(index, llm).query("Where is the Eiffel Tower?")
    assert handler.wait(10)
    assert hook_scorer.calls == 1 and handler_scorer.calls == 0
    assert [r.kind for r in handler.results()] == ["query"]  # the answer itself is still scored
    assert handler.result_for(response).response == "The answer is Paris."
    handler.close()


def test_failing_rag_and_callback_do_not_reach_the_app(index: VectorStoreIndex, llm: ScriptedLLM) -> None:
    class BrokenRAG:
        async def ascore(self, **kwargs: Any) -> Any:
            raise RuntimeError("judge down")

    def bad_callback(item: ScoredCall) -> None:
        raise ValueError("callback bug")

    handler = make(TrustEventHandler, scorer=CountingScorer(), rag=BrokenRAG(), on_result=bad_callback)
    response = engine(index, llm).query("Capital of France?")
    assert response.response == "The answer is Paris."
    assert handler.wait(10)
    scored = handler.result_for(response)
    assert scored.score is None and scored.result.error == "judge down"
    handler.close()


def test_bad_arguments_are_refused_up_front() -> None:
    with pytest.raises(TypeError, match="rag must have ascore"):
        TrustEventHandler(rag=object())
    with pytest.raises(ValueError, match="max_pending"):
        TLMCallbackHandler(max_pending=0)
    with pytest.raises(tlm_hooks.InvalidOptionError, match="quality_preset"):
        TrustEventHandler(quality_preset="fastest")


def test_default_rag_is_trustworthy_rag_with_the_given_judge_and_scorer(
    index: VectorStoreIndex, llm: ScriptedLLM
) -> None:
    from tlm_hooks.llm.base import Generation

    class YesJudge:
        name = "yes-judge"

        def __init__(self) -> None:
            self.asked = 0

        async def acomplete(self, messages: Any, *, n: int = 1, **kwargs: Any) -> list[Generation]:
            self.asked += 1
            return [Generation("Yes") for _ in range(n)]

        def with_model(self, model: str) -> Any:
            return self

    judge = YesJudge()
    handler = make(TrustEventHandler, scorer=CountingScorer(0.65), judge=judge, quality_preset="base")
    response = engine(index, llm).query("What is the capital of France?")
    assert handler.wait(30)
    scored = handler.result_for(response)
    assert scored.score == 0.65  # trustworthiness from the scorer given
    assert set(scored.result.evals) == {
        "context_sufficiency",
        "response_groundedness",
        "response_helpfulness",
        "query_ease",
    }
    assert all(v["score"] is not None and v["score"] > 0.5 for v in scored.result.evals.values())
    assert judge.asked >= 4
    handler.close()
