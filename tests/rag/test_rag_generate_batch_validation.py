"""TrustworthyRAG: generate (evals without a response run during generation), batches, and bad input."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from rag_fakes import ScriptedJudge

from tlm_hooks.errors import InvalidOptionError
from tlm_hooks.rag import DEFAULT_EVALS, Eval, TrustworthyRAG, build_prompt
from tlm_hooks.scorers import FunctionScorer
from tlm_hooks.types import ScoreRequest, TrustResult

QUERY = "Which month comes first in the year?"
CONTEXT = "The calendar year opens with January, followed by February."
NAMES = ["context_sufficiency", "response_groundedness", "response_helpfulness", "query_ease"]


# -- generate ---------------------------------------------------------------------------------------


def test_generate_adds_the_response_and_scores_it() -> None:
    judge = ScriptedJudge(answer="January opens the year.", verdict=lambda name, text: "January opens" in text)
    result = TrustworthyRAG("low", judge=judge, options={"log": ["per_component_score"]}).generate(
        query=QUERY, context=CONTEXT
    )
    assert list(result) == ["response", "trustworthiness", *NAMES]
    assert result.response == "January opens the year."
    (generation,) = [c for c in judge.calls if c.role == "generate"]
    assert generation.text == build_prompt(QUERY, CONTEXT) and generation.kwargs["temperature"] == 0.0
    # the evals that look at the response judged the generated one; the others never saw it
    assert result["response_groundedness"]["score"] == result["response_helpfulness"]["score"] == 1.0
    assert result["context_sufficiency"]["score"] == result["query_ease"]["score"] == 0.0
    # the generated answer's own logprobs feed trustworthiness
    assert "token_probability" in result["trustworthiness"]["log"]["per_component_score"]


async def test_evals_without_a_response_run_while_the_answer_is_generated() -> None:
    gate = asyncio.Event()
    judge = ScriptedJudge(gate=gate)
    rag = TrustworthyRAG("low", judge=judge)

    async def open_gate_when_free_evals_started() -> None:
        while {c.eval_name for c in judge.eval_calls()} != {"context_sufficiency", "query_ease"}:
            await asyncio.sleep(0.001)
        gate.set()

    opener = asyncio.ensure_future(open_gate_when_free_evals_started())
    # the generation call waits on the gate: this only finishes if those evals did not wait for it
    result = await asyncio.wait_for(rag.agenerate(QUERY, CONTEXT), 5)
    await opener
    assert result.response and all(result[n]["score"] == 1.0 for n in NAMES)
    order = [c.role if c.role != "eval" else c.eval_name for c in judge.calls]
    assert order.index("generate") < order.index("response_groundedness")


async def test_a_failed_generation_raises_and_stops_the_evals() -> None:
    judge = ScriptedJudge(fail=lambda call: call.role == "generate", delay=0.01)
    with pytest.raises(RuntimeError, match="scripted failure on generate"):
        await TrustworthyRAG("low", judge=judge).agenerate(QUERY, CONTEXT)
    assert not judge.eval_calls("response_groundedness")


def test_generate_with_candidates_uses_the_engine() -> None:
    judge = ScriptedJudge(sample="January")
    result = TrustworthyRAG("high", judge=judge, evals=[DEFAULT_EVALS[1]]).generate(QUERY, CONTEXT)
    assert result.response and 0.0 <= result.trustworthiness_score <= 1.0  # type: ignore[operator]
    assert judge.eval_calls("response_groundedness")


def test_generate_with_a_custom_scorer_scores_the_generated_answer() -> None:
    seen: list[ScoreRequest] = []

    def record(request: ScoreRequest) -> TrustResult:
        seen.append(request)
        return TrustResult(0.42)

    judge = ScriptedJudge(answer="It is January.")
    result = TrustworthyRAG("low", judge=judge, evals=[], scorer=FunctionScorer(record)).generate(
        QUERY, CONTEXT, prompt="P"
    )
    assert result == {"response": "It is January.", "trustworthiness": {"score": 0.42}}
    assert seen[0].response == "It is January." and seen[0].prompt == "P" and seen[0].response_logprobs


# -- batches -------------------------------------------------------------------------------------------


def test_score_batch_keeps_order_and_scores_each_item() -> None:
    judge = ScriptedJudge(verdict=lambda name, text: "January" in text.split("Response:")[-1])
    items = [
        {"query": QUERY, "context": CONTEXT, "response": f"Answer {i}: {'January' if i % 2 else 'March'}"}
        for i in range(6)
    ]
    before = copy.deepcopy(items)
    rag = TrustworthyRAG("low", judge=judge, evals=[DEFAULT_EVALS[1]])
    results = rag.score_batch(items)
    assert [r["response_groundedness"]["score"] for r in results] == [float(i % 2) for i in range(6)]
    assert items == before  # the caller's items are not touched


async def test_a_failing_item_does_not_fail_the_batch() -> None:
    judge = ScriptedJudge(fail=lambda call: "BROKEN" in call.text)
    items = [
        {"query": QUERY, "context": CONTEXT, "response": "fine"},
        {"query": QUERY, "context": CONTEXT, "response": "BROKEN"},
        {"query": "BROKEN?", "context": CONTEXT, "response": "fine"},
    ]
    fine, bad_response, bad_query = await TrustworthyRAG("low", judge=judge).ascore_batch(items)
    assert fine.ok
    # the evals shown the response failed; the one that never sees it did not
    assert bad_response.errors.keys() == {"response_groundedness", "response_helpfulness"}
    assert bad_response["query_ease"]["score"] == 1.0 and bad_response.trustworthiness_score is not None
    # every judge call of this item fails: each part says so, nothing raises
    assert bad_query.errors.keys() == {"trustworthiness", *NAMES}
    assert bad_query.trustworthiness_score is None and all(bad_query[n]["score"] is None for n in NAMES)


def test_batch_runs_items_at_once_up_to_max_concurrency() -> None:
    judge = ScriptedJudge(delay=0.03)
    flat = FunctionScorer(lambda r: TrustResult(0.5))
    rag = TrustworthyRAG("low", judge=judge, evals=[DEFAULT_EVALS[3]], max_concurrency=2, scorer=flat)
    rag.score_batch([{"query": f"q{i}?", "context": "c", "response": "r"} for i in range(6)])
    assert judge.peak == 2 and len(judge.eval_calls()) == 6


# -- bad input: a clear error before any model call ---------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"query": None, "context": CONTEXT, "response": "r"}, "query"),
        ({"query": "  ", "context": CONTEXT, "response": "r"}, "query"),
        ({"query": QUERY, "context": None, "response": "r"}, "context"),
        ({"query": QUERY, "context": 5, "response": "r"}, "context"),
        ({"query": QUERY, "context": ["ok", 3], "response": "r"}, "context[1]"),
        ({"query": QUERY, "context": CONTEXT, "response": None}, "response"),
        ({"query": QUERY, "context": CONTEXT, "response": {"response": "r"}}, "response"),
        ({"query": QUERY, "context": CONTEXT, "response": "r", "prompt": ""}, "prompt"),
    ],
)
def test_bad_score_input_names_the_field(kwargs: dict[str, Any], key: str) -> None:
    judge = ScriptedJudge()
    with pytest.raises(InvalidOptionError) as caught:
        TrustworthyRAG("low", judge=judge).score(**kwargs)
    assert caught.value.key == key and key.split("[")[0] in str(caught.value)
    assert judge.calls == []


@pytest.mark.parametrize(
    ("items", "key"),
    [
        ("not a list", "items"),
        ([{"query": QUERY, "context": CONTEXT, "response": "r"}, "x"], "items[1]"),
        ([{"query": QUERY, "context": CONTEXT, "response": "r", "answer": "a"}], "items[0].answer"),
        (
            [{"query": QUERY, "context": CONTEXT, "response": "r"}, {"query": QUERY, "context": CONTEXT}],
            "items[1].response",
        ),
    ],
)
def test_bad_batch_names_the_item_and_calls_nothing(items: Any, key: str) -> None:
    judge = ScriptedJudge()
    with pytest.raises(InvalidOptionError) as caught:
        TrustworthyRAG("low", judge=judge).score_batch(items)
    assert caught.value.key == key
    assert judge.calls == []


def test_generate_refuses_a_response_and_checks_its_input_first() -> None:
    judge = ScriptedJudge()
    rag = TrustworthyRAG("low", judge=judge)
    with pytest.raises(InvalidOptionError, match="context"):
        rag.generate(QUERY, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rag.generate(QUERY, CONTEXT, response="x")  # type: ignore[call-arg]
    assert judge.calls == []


@pytest.mark.parametrize(
    ("args", "key", "fragment"),
    [
        (("2fast", "c", "Q"), "name", "letters, digits"),
        (("has space", "c", "Q"), "name", "letters, digits"),
        (("trustworthiness", "c", "Q"), "name", "except"),
        (("ok", "   ", "Q"), "criteria", "non-empty"),
        (("ok", "c", None), "query_identifier", "at least one"),
        (("ok", "c", "two\nlines"), "query_identifier", "one-line"),
        (("ok", "c", 7), "query_identifier", "one-line"),
    ],
)
def test_eval_is_validated(args: tuple[Any, ...], key: str, fragment: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        Eval(*args)
    assert caught.value.key == key and fragment in caught.value.allowed


@pytest.mark.parametrize(
    ("evals", "key"),
    [
        ([{"name": "a", "criteria": "c", "query_identifier": "Q", "weight": 2}], "evals[0].weight"),
        ([{"criteria": "c", "query_identifier": "Q"}], "evals[0].name"),
        ([DEFAULT_EVALS[0], {"name": "x", "criteria": "c"}], "evals[1].query_identifier"),
        ([DEFAULT_EVALS[0], DEFAULT_EVALS[0]], "evals[1].name"),
        ([42], "evals[0]"),
        ("context_sufficiency", "evals"),
    ],
)
def test_bad_evals_are_refused_at_construction(evals: Any, key: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        TrustworthyRAG("low", evals=evals, judge=ScriptedJudge())
    assert caught.value.key == key


def test_bad_options_and_settings_are_refused_at_construction() -> None:
    with pytest.raises(InvalidOptionError, match="quality_preset"):
        TrustworthyRAG("ultra")
    with pytest.raises(InvalidOptionError, match="options.log"):
        TrustworthyRAG("low", options={"log": ["everything"]})
    with pytest.raises(ValueError, match="max_concurrency"):
        TrustworthyRAG("low", max_concurrency=0)


def test_eval_dicts_are_accepted_and_not_mutated() -> None:
    evals = [{"name": "polite", "criteria": "The Reply is polite.", "response_identifier": "Reply"}]
    before = copy.deepcopy(evals)
    rag = TrustworthyRAG("low", evals=evals, judge=ScriptedJudge())
    assert rag.evals == (Eval("polite", "The Reply is polite.", response_identifier="Reply"),)
    assert evals == before


async def test_cancelling_generate_stops_the_evals_already_running() -> None:
    judge = ScriptedJudge(delay=5.0)  # every call hangs
    task = asyncio.ensure_future(TrustworthyRAG("low", judge=judge).agenerate(QUERY, CONTEXT))
    while len(judge.calls) < 3:  # the generation and the two evals that need no response
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert asyncio.all_tasks() == {asyncio.current_task()} and judge.in_flight == 0


def test_default_evals_can_be_picked_by_name() -> None:
    rag = TrustworthyRAG("low", evals=["response_groundedness", {"name": "query_ease"}], judge=ScriptedJudge())
    assert rag.evals == (DEFAULT_EVALS[1], DEFAULT_EVALS[3])
    with pytest.raises(InvalidOptionError) as caught:
        TrustworthyRAG("low", evals=["groundedness"])
    assert caught.value.key == "evals[0]" and "response_groundedness" in caught.value.allowed
