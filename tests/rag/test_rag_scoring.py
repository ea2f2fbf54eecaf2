"""TrustworthyRAG with a scripted judge: result shape, judge prompts, verdict reading, presets, failures."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from rag_fakes import ScriptedJudge

from tlm_hooks.rag import DEFAULT_EVALS, Eval, RAGResult, TrustworthyRAG
from tlm_hooks.rag.prompts import EVAL_PROMPTS
from tlm_hooks.scorers import FunctionScorer
from tlm_hooks.types import TokenLogprob, TrustResult

QUERY = "Which month comes first in the year?"
CONTEXT = "The calendar year opens with January, followed by February."
RESPONSE = "XYLO-RESPONSE: February comes first."
NAMES = ["context_sufficiency", "response_groundedness", "response_helpfulness", "query_ease"]


def _rag(judge: ScriptedJudge, preset: str = "low", **kwargs: object) -> TrustworthyRAG:
    return TrustworthyRAG(preset, judge=judge, **kwargs)  # type: ignore[arg-type]


def test_default_evals_are_the_four_rest_evals_with_their_identifiers() -> None:
    shapes = {ev.name: (ev.query_identifier, ev.context_identifier, ev.response_identifier) for ev in DEFAULT_EVALS}
    assert shapes == {
        "context_sufficiency": ("Question", "Document", None),
        "response_groundedness": ("Query", "Context", "Response"),
        "response_helpfulness": ("User Query", None, "AI Assistant Response"),
        "query_ease": ("User Request", None, None),
    }
    for ev in DEFAULT_EVALS:  # the criteria talk about the inputs by the headings the judge sees
        for heading in (ev.query_identifier, ev.context_identifier, ev.response_identifier):
            assert heading is None or heading in ev.criteria


def test_score_returns_the_rest_shape() -> None:
    judge = ScriptedJudge(verdict=lambda name, text: name != "response_groundedness")
    result = _rag(judge, options={"log": ["explanation"]}).score(query=QUERY, context=CONTEXT, response=RESPONSE)
    assert isinstance(result, RAGResult) and list(result) == ["trustworthiness", *NAMES]
    assert json.loads(json.dumps(result)) == result
    trust = result["trustworthiness"]
    assert 0.0 <= trust["score"] <= 1.0 and trust["log"]["explanation"]
    assert result["response_groundedness"]["score"] == 0.0
    assert all(result[name]["score"] == 1.0 for name in NAMES if name != "response_groundedness")
    assert "0 of 1 checks" in result["response_groundedness"]["log"]["explanation"]
    assert result.eval_scores == {name: result[name]["score"] for name in NAMES} and result.ok
    plain = _rag(ScriptedJudge()).score(query=QUERY, context=CONTEXT, response=RESPONSE)
    assert all(set(part) == {"score"} for part in plain.values())  # no log unless options.log asks


def test_each_eval_prompt_shows_its_inputs_under_its_identifiers() -> None:
    judge = ScriptedJudge()
    _rag(judge).score(query=QUERY, context=CONTEXT, response=RESPONSE)
    expected = {
        "context_sufficiency": {"Document": CONTEXT, "Question": QUERY},
        "response_groundedness": {"Context": CONTEXT, "Query": QUERY, "Response": RESPONSE},
        "response_helpfulness": {"User Query": QUERY, "AI Assistant Response": RESPONSE},
        "query_ease": {"User Request": QUERY},
    }
    for name, sections in expected.items():
        (call,) = judge.eval_calls(name)
        for heading, text in sections.items():
            assert f"{heading}:\n{text}" in call.text
        for text in {CONTEXT, QUERY, RESPONSE} - set(sections.values()):
            assert text not in call.text, (name, text)
        # greedy, short, and asking for logprobs so the verdict is read as a probability
        assert call.kwargs["temperature"] == 0.0 and call.kwargs["logprobs"] and call.kwargs["top_logprobs"] > 0


def test_evals_without_a_response_identifier_never_see_the_response() -> None:
    judge = ScriptedJudge()
    _rag(judge, "high").score(query=QUERY, context=CONTEXT, response=RESPONSE)
    for name in ("context_sufficiency", "query_ease"):
        calls = judge.eval_calls(name)
        assert len(calls) == 3 and all("XYLO" not in c.text for c in calls)
    assert all("XYLO" in c.text for c in judge.eval_calls("response_groundedness"))


def test_custom_eval_with_only_a_context_identifier() -> None:
    tone = Eval("neutral_tone", "The Passage is written in a neutral tone.", context_identifier="Passage")
    judge = ScriptedJudge(evals=[tone])
    result = _rag(judge, evals=[tone]).score(query=QUERY, context=CONTEXT, response=RESPONSE)
    assert list(result) == ["trustworthiness", "neutral_tone"]
    (call,) = judge.eval_calls("neutral_tone")
    assert f"Passage:\n{CONTEXT}" in call.text and QUERY not in call.text and RESPONSE not in call.text
    assert tone.to_dict() == Eval.from_dict(tone.to_dict()).to_dict()
    assert list(_rag(ScriptedJudge(), evals=[]).score(QUERY, CONTEXT, RESPONSE)) == ["trustworthiness"]


@pytest.mark.parametrize(("preset", "asks"), [("base", 1), ("low", 1), ("medium", 2), ("high", 3), ("best", 5)])
def test_preset_sets_the_number_of_distinct_phrasings(preset: str, asks: int) -> None:
    judge = ScriptedJudge()
    _rag(judge, preset, evals=[DEFAULT_EVALS[1]]).score(QUERY, CONTEXT, RESPONSE)
    calls = judge.eval_calls()
    assert len(calls) == asks
    templates = {p.template.split("{")[0] for p in EVAL_PROMPTS[:asks]}
    assert len({c.text.split("\n")[0] for c in calls}) == len(templates) == asks


def test_more_checks_than_phrasings_repeat_with_randomness() -> None:
    judge = ScriptedJudge()
    _rag(judge, "low", evals=[DEFAULT_EVALS[3]], options={"num_self_reflections": 7}).score(QUERY, CONTEXT, RESPONSE)
    calls = judge.eval_calls()
    assert len(calls) == 7
    extra = [c for c in calls if c.kwargs["temperature"] > 0]
    assert len(extra) == 7 - len(EVAL_PROMPTS) and len({c.kwargs["seed"] for c in extra}) == len(extra)


def _lp(yes: float) -> tuple[TokenLogprob, ...]:
    return (TokenLogprob("Yes", math.log(yes), (("Yes", math.log(yes)), ("No", math.log(1 - yes)))),)


@pytest.mark.parametrize(
    ("reply", "logprobs", "score"),
    [
        ("no", None, 0.0),
        ("Yes, it does.", None, 1.0),
        ("I would rather not say anything here", None, 0.5),  # unreadable: uncertain
        ("", None, 0.5),
        ("Yes", _lp(0.7), 0.7),  # the verdict token's alternatives weigh in
        # a preamble first: the verdict is read from the first token's Yes/No alternatives
        (
            "The material covers it",
            (
                TokenLogprob(
                    "The", math.log(0.5), (("The", math.log(0.5)), ("Yes", math.log(0.1)), ("No", math.log(0.3)))
                ),
            ),
            0.25,
        ),
    ],
)
def test_verdicts_are_read_as_probabilities(
    reply: str, logprobs: tuple[TokenLogprob, ...] | None, score: float
) -> None:
    judge = ScriptedJudge(verdict=lambda name, text: reply, logprobs_for=lambda text: logprobs)
    result = _rag(judge, evals=[DEFAULT_EVALS[1]]).score(QUERY, CONTEXT, RESPONSE)
    assert result["response_groundedness"]["score"] == pytest.approx(score)


def test_a_failing_eval_is_reported_in_its_place() -> None:
    judge = ScriptedJudge(fail=lambda call: call.eval_name == "response_helpfulness")
    result = _rag(judge, "medium").score(QUERY, CONTEXT, RESPONSE)
    failed = result["response_helpfulness"]
    assert failed["score"] is None and failed["error"]["type"] == "RuntimeError"
    assert "scripted failure" in failed["error"]["message"]
    assert result.errors == {"response_helpfulness": failed["error"]["message"]} and not result.ok
    assert all(result[name]["score"] == 1.0 for name in NAMES if name != "response_helpfulness")
    assert result.trustworthiness_score is not None


def test_one_failed_phrasing_leaves_the_others() -> None:
    first = EVAL_PROMPTS[0].template.split("{")[0]
    judge = ScriptedJudge(fail=lambda call: call.role == "eval" and call.text.startswith(first))
    result = _rag(judge, "medium", evals=[DEFAULT_EVALS[0]], options={"log": ["explanation"]}).score(
        QUERY, CONTEXT, RESPONSE
    )
    part = result["context_sufficiency"]
    assert part["score"] == 1.0 and "1 judge call(s) failed" in part["log"]["explanation"]


def test_failing_trustworthiness_keeps_the_evals() -> None:
    def broken(request: object) -> TrustResult:
        raise ValueError("scorer down")

    result = _rag(ScriptedJudge(), scorer=FunctionScorer(broken)).score(QUERY, CONTEXT, RESPONSE)
    assert result["trustworthiness"]["score"] is None and "scorer down" in result["trustworthiness"]["error"]["message"]
    assert all(result[name]["score"] == 1.0 for name in NAMES)
    as_metadata = result.to_trust_result()
    assert not as_metadata.ok and as_metadata.error and "scorer down" in as_metadata.error


def test_trustworthiness_comes_from_the_engine_on_the_same_judge() -> None:
    good = _rag(ScriptedJudge(reflection=True, sample="January"), options={"log": ["per_component_score"]})
    bad = _rag(ScriptedJudge(reflection=False, sample="March"), options={"log": ["per_component_score"]})
    right = good.score(QUERY, CONTEXT, "January")
    wrong = bad.score(QUERY, CONTEXT, "January")
    assert right.trustworthiness_score > wrong.trustworthiness_score  # type: ignore[operator]
    components = right["trustworthiness"]["log"]["per_component_score"]
    assert {"self_reflection", "consistency"} <= set(components)


def test_the_engine_prompt_holds_query_and_context() -> None:
    judge = ScriptedJudge()
    _rag(judge, evals=[]).score(QUERY, ["First passage.", "Second passage."], RESPONSE)
    reflections = [c for c in judge.calls if c.role == "reflection"]
    assert reflections and all("First passage.\n\nSecond passage." in c.text and QUERY in c.text for c in reflections)
    custom = ScriptedJudge()
    _rag(custom, evals=[]).score(QUERY, CONTEXT, RESPONSE, prompt="MY OWN PROMPT")
    assert all("MY OWN PROMPT" in c.text for c in custom.calls if c.role in ("reflection", "sample"))


def test_to_trust_result_carries_the_evals() -> None:
    result = _rag(ScriptedJudge(), options={"log": ["explanation"]}).score(QUERY, CONTEXT, RESPONSE)
    metadata = result.to_trust_result().to_dict()
    assert metadata["trustworthiness_score"] == result.trustworthiness_score
    assert metadata["log"]["explanation"] == result["trustworthiness"]["log"]["explanation"]
    assert {name: metadata[name]["score"] for name in NAMES} == result.eval_scores


async def test_async_and_sync_inside_a_running_loop_agree() -> None:
    rag = _rag(ScriptedJudge(verdict=lambda name, text: name == "query_ease"))
    from_async = await rag.ascore(QUERY, CONTEXT, RESPONSE)
    from_sync = rag.score(QUERY, CONTEXT, RESPONSE)  # run_sync works inside a running loop
    assert from_async.eval_scores == from_sync.eval_scores == {n: float(n == "query_ease") for n in NAMES}


def test_judge_calls_of_an_item_run_concurrently() -> None:
    judge = ScriptedJudge(delay=0.05)
    _rag(judge, "medium", scorer=FunctionScorer(lambda r: TrustResult(0.5))).score(QUERY, CONTEXT, RESPONSE)
    assert judge.peak == 8  # 4 evals x 2 phrasings at once, within max_concurrency=8
    limited = ScriptedJudge(delay=0.02)
    TrustworthyRAG("medium", judge=limited, max_concurrency=3, scorer=FunctionScorer(lambda r: TrustResult(0.5))).score(
        QUERY, CONTEXT, RESPONSE
    )
    assert limited.peak == 3


def test_the_evals_use_options_model_through_the_judge() -> None:
    switched: list[str] = []

    class Switchable(ScriptedJudge):
        def with_model(self, model: str) -> ScriptedJudge:
            switched.append(model)
            return self

    judge = Switchable()
    TrustworthyRAG("low", options={"model": "judge-2"}, judge=judge, evals=[DEFAULT_EVALS[0]]).score(
        QUERY, CONTEXT, RESPONSE
    )
    assert switched and set(switched) == {"judge-2"} and judge.eval_calls("context_sufficiency")


def test_repr_names_preset_and_evals() -> None:
    text = repr(_rag(ScriptedJudge(), "medium"))
    assert "medium" in text and "response_groundedness" in text


def test_score_does_not_block_other_tasks() -> None:
    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.ensure_future(ticker())
        await _rag(ScriptedJudge(delay=0.05)).ascore(QUERY, CONTEXT, RESPONSE)
        task.cancel()
        return ticks

    assert asyncio.run(main()) > 3
