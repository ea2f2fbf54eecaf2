"""MLflow: traces logged into a real local tracking server (by mlflow's OpenAI autolog and
``@mlflow.trace``, from calls to the loopback fake OpenAI server), scored, and read back."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (extra [mlflow])")
openai = pytest.importorskip("openai")

from fake_openai import Reply  # noqa: E402
from traceutil import BRIEF_SYSTEM, ONE_WORD_SYSTEM, TRIVIA_SYSTEM, expected_for, predictable  # noqa: E402

import tlm_hooks  # noqa: E402
from tlm_hooks import FunctionScorer, InvalidOptionError, TrustResult  # noqa: E402
from tlm_hooks.integrations.mlflow import (  # noqa: E402
    score_mlflow_traces,
    trustworthiness_metric,
    trustworthiness_scorer,
)

CAPITAL = [{"role": "system", "content": TRIVIA_SYSTEM}, {"role": "user", "content": "What is the capital of France?"}]
PLANET = [{"role": "system", "content": ONE_WORD_SYSTEM}, {"role": "user", "content": "Largest planet?"}]
AGENT_QUESTION = "Who wrote Hamlet?"


@pytest.fixture
def tracking(mlflow_server: Any) -> Iterator[str]:
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.url)
    yield mlflow_server.url
    mlflow.set_tracking_uri(previous)


@pytest.fixture
def experiment_id(tracking: str) -> str:
    return str(mlflow.set_experiment(f"tlm-{uuid.uuid4().hex[:10]}").experiment_id)


@pytest.fixture
def autolog() -> Iterator[None]:
    mlflow.openai.autolog()
    yield
    tlm_hooks.unpatch_all()  # before autolog restores the SDK's methods (hooks may wrap its wrappers)
    mlflow.openai.autolog(disable=True)


def _log_traces(fake: Any) -> dict[str, dict[str, Any]]:
    """Five traces (one unreadable); returns what each readable one should be scored as,
    keyed by a question that appears in its request."""
    client = openai.OpenAI(base_url=fake.url, api_key="test-key", max_retries=0)
    fake.push(Reply("Paris."), Reply("Jupiter"), Reply("Shakespeare wrote it."))
    client.chat.completions.create(model="fake-model", messages=CAPITAL)
    for _chunk in client.chat.completions.create(model="fake-model", messages=PLANET, stream=True):
        pass

    hooked = openai.OpenAI(base_url=fake.url, api_key="test-key", max_retries=0)
    tlm_hooks.patch(hooked, scorer=lambda request: 0.25)
    agent_messages = [{"role": "system", "content": BRIEF_SYSTEM}, {"role": "user", "content": AGENT_QUESTION}]

    @mlflow.trace(name="agent")
    def agent(question: str) -> str:
        reply = hooked.chat.completions.create(model="fake-model", messages=agent_messages)
        return str(reply.choices[0].message.content)

    @mlflow.trace(name="lookup")
    def lookup(question: str) -> str:
        return "Mount Everest"

    @mlflow.trace(name="nothing")
    def nothing(question: str) -> None:
        return None

    agent(AGENT_QUESTION)
    lookup("Highest mountain?")
    nothing("Unreadable?")
    return {
        "capital of France": {"result": expected_for(CAPITAL, "Paris."), "span": "Completions"},
        "Largest planet": {"result": expected_for(PLANET, "Jupiter"), "span": "Completions"},
        AGENT_QUESTION: {"result": expected_for(agent_messages, "Shakespeare wrote it."), "span": "Completions"},
        "Highest mountain": {
            "result": expected_for(None, "Mount Everest", prompt="Highest mountain?"),
            "span": "lookup",
        },
    }


def _traces(experiment_id: str) -> list[Any]:
    client = mlflow.MlflowClient()
    return list(client.search_traces(locations=[experiment_id], max_results=100, flush=True))


def _key_of(trace: Any, keys: Any) -> str | None:
    request = json.dumps([s.inputs for s in trace.data.spans], default=str)
    found = [k for k in keys if k in request]
    return found[0] if found else None


def _feedback(trace: Any, name: str = "trust_score") -> list[Any]:
    return [a for a in trace.info.assessments if a.name == name]


def test_scores_are_written_back_as_tags_and_feedback(fake: Any, experiment_id: str, autolog: None) -> None:
    expected = _log_traces(fake)
    summary = score_mlflow_traces(
        experiment_id, tracking_uri=mlflow.get_tracking_uri(), scorer=predictable, page_size=2, batch_size=3
    )
    assert (summary.seen, summary.scored, summary.unreadable, summary.failed) == (5, 4, 1, 0), summary
    assert summary.mean_score == pytest.approx(sum(e["result"].trustworthiness_score for e in expected.values()) / 4)

    traces = _traces(experiment_id)
    assert len(traces) == 5
    seen = set()
    for trace in traces:
        key = _key_of(trace, expected)
        tags = trace.info.tags
        if key is None:  # the trace whose function returned nothing
            assert "trust_score" not in tags and not _feedback(trace)
            assert summary.unreadable_keys == [trace.info.trace_id]
            continue
        seen.add(key)
        want: TrustResult = expected[key]["result"]
        assert float(tags["trust_score"]) == want.trustworthiness_score
        assert tags["explanation"] == want.explanation
        [feedback] = _feedback(trace)
        assert feedback.value == pytest.approx(want.trustworthiness_score)
        assert feedback.rationale == want.explanation
        assert feedback.source.source_type == "CODE"
        scored_span = next(s for s in trace.data.spans if s.span_id == feedback.span_id)
        assert scored_span.name == expected[key]["span"]
    assert seen == set(expected)
    assert TRIVIA_SYSTEM in next(iter(t.info.tags["explanation"] for t in traces if _key_of(t, ["France"])))
    assert summary.lowest == sorted(summary.lowest, key=lambda pair: pair[1]) and len(summary.lowest) == 4


def test_hooked_call_inside_an_mlflow_span_records_the_score_on_it(fake: Any, experiment_id: str) -> None:
    hooked = tlm_hooks.patch(
        openai.OpenAI(base_url=fake.url, api_key="test-key", max_retries=0),
        scorer=lambda r: TrustResult(0.3, explanation="low"),
        policy=tlm_hooks.TrustPolicy(threshold=0.5),
    )

    @mlflow.trace(name="app")
    def app() -> str:
        return str(hooked.chat.completions.create(model="fake-model", messages=CAPITAL).choices[0].message.content)

    app()
    [trace] = _traces(experiment_id)
    attributes = trace.data.spans[0].attributes
    assert attributes["tlm.trustworthiness_score"] == pytest.approx(0.3)
    assert attributes["tlm.explanation"] == "low"
    assert attributes["tlm.low_trust"] is True and attributes["tlm.mode"] == "score"


def test_mlflow_sharing_the_global_otel_context_gets_the_attributes_once(fake: Any, tmp_path: Path) -> None:
    """With MLFLOW_USE_DEFAULT_TRACER_PROVIDER=false MLflow's span is also the current
    OpenTelemetry span; it is written through MLflow's API, so MLflow reads the values back."""
    code = textwrap.dedent(
        f"""
        import mlflow, openai, tlm_hooks
        from opentelemetry import trace
        mlflow.set_tracking_uri("sqlite:///{tmp_path}/mlflow.db")
        experiment = mlflow.set_experiment("shared").experiment_id
        client = tlm_hooks.patch(openai.OpenAI(base_url={fake.url!r}, api_key="k", max_retries=0), scorer=lambda r: 0.3)
        with mlflow.start_span("app"):
            assert trace.get_current_span().is_recording()
            client.chat.completions.create(model="m", messages=[{{"role": "user", "content": "hi"}}])
        [found] = mlflow.MlflowClient().search_traces(locations=[experiment], flush=True)
        attributes = found.data.spans[0].attributes
        print(repr(attributes["tlm.trustworthiness_score"]), repr(attributes["tlm.low_trust"]))
        """
    )
    env = {**os.environ, "MLFLOW_USE_DEFAULT_TRACER_PROVIDER": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["0.3", "True"]


def test_rerun_skips_scored_traces_and_overwrite_replaces_them(fake: Any, experiment_id: str, autolog: None) -> None:
    _log_traces(fake)
    url = mlflow.get_tracking_uri()
    first = score_mlflow_traces(experiment_id, tracking_uri=url, scorer=predictable)
    again = score_mlflow_traces(experiment_id, tracking_uri=url, scorer=predictable)
    assert (again.seen, again.scored, again.already_scored, again.unreadable) == (5, 0, 4, 1)

    redo = score_mlflow_traces(experiment_id, tracking_uri=url, scorer=lambda r: 0.9, overwrite=True)
    assert (redo.scored, redo.already_scored) == (4, 0)
    for trace in _traces(experiment_id):
        if "trust_score" not in trace.info.tags:
            continue
        assert trace.info.tags["trust_score"] == "0.9"
        assert "explanation" not in trace.info.tags  # the new score came without one: the old one is gone
        feedback = _feedback(trace)
        valid = [f for f in feedback if f.valid]
        [old] = [f for f in feedback if not f.valid]
        assert len(valid) == 1 and valid[0].value == 0.9 and valid[0].overrides == old.assessment_id
    assert first.scored == 4


def test_failed_scores_are_not_written_and_are_retried(fake: Any, experiment_id: str, autolog: None) -> None:
    _log_traces(fake)
    url = mlflow.get_tracking_uri()

    def flaky(request: Any) -> TrustResult:
        if "Largest planet" in request.prompt_text():
            raise RuntimeError("judge unavailable")
        return predictable(request)

    summary = score_mlflow_traces(experiment_id, tracking_uri=url, scorer=FunctionScorer(flaky))
    assert (summary.scored, summary.failed) == (3, 1)
    assert "judge unavailable" in summary.failures[0].error
    planet = next(t for t in _traces(experiment_id) if _key_of(t, ["Largest planet"]))
    assert "trust_score" not in planet.info.tags and not _feedback(planet)

    retry = score_mlflow_traces(experiment_id, tracking_uri=url, scorer=predictable)
    assert (retry.scored, retry.already_scored, retry.failed) == (1, 3, 0)
    assert [key for key, _ in retry.lowest] == [planet.info.trace_id]


def test_by_name_with_max_results_and_tags_only(fake: Any, experiment_id: str, autolog: None) -> None:
    _log_traces(fake)
    name = mlflow.get_experiment(experiment_id).name
    progress: list[tuple[int, int]] = []
    summary = score_mlflow_traces(
        experiment_name=name, tracking_uri=mlflow.get_tracking_uri(), scorer=predictable, max_results=2,
        feedback_name=None, score_tag="tlm.score", batch_size=1, progress=lambda s: progress.append((s.seen, s.scored)),
    )  # fmt: skip
    assert summary.seen == 2 and progress == [(1, 1), (2, 2)]  # oldest first: the two autologged calls
    tagged = [t for t in _traces(experiment_id) if "tlm.score" in t.info.tags]
    assert len(tagged) == 2 and all(not t.info.assessments for t in tagged)
    assert {_key_of(t, ["France", "Largest planet"]) for t in tagged} == {"France", "Largest planet"}


def test_unknown_experiment_name(tracking: str) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        score_mlflow_traces(experiment_name="no-such-experiment-here", tracking_uri=tracking, scorer=predictable)
    assert caught.value.key == "experiment_name"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({}, "experiment_id/experiment_name"),
        ({"experiment_id": "1", "experiment_name": "x"}, "experiment_id/experiment_name"),
        ({"experiment_id": True}, "experiment_id"),
        ({"experiment_id": "1", "batch_size": 0}, "batch_size"),
        ({"experiment_id": "1", "page_size": 2.5}, "page_size"),
        ({"experiment_id": "1", "max_results": -1}, "max_results"),
        ({"experiment_id": "1", "span": "leaf"}, "span"),
        ({"experiment_id": "1", "score_tag": ""}, "score_tag"),
        ({"experiment_id": "1", "feedback_name": ""}, "feedback_name"),
    ],
)
def test_bad_arguments_fail_before_any_request(kwargs: dict[str, Any], key: str) -> None:
    # port 9 (discard) is closed on loopback: a request would fail with a connection error instead
    with pytest.raises(InvalidOptionError) as caught:
        score_mlflow_traces(tracking_uri="http://127.0.0.1:9", scorer=predictable, **kwargs)
    assert caught.value.key == key


def test_bad_scorer_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="scorer must be"):
        score_mlflow_traces("1", tracking_uri="http://127.0.0.1:9", scorer=42)  # type: ignore[arg-type]


def test_genai_evaluate_with_the_scorer_uses_the_traced_llm_call(fake: Any, experiment_id: str, autolog: None) -> None:
    expected = _log_traces(fake)
    traces = mlflow.search_traces(
        locations=[experiment_id], flush=True, filter_string="tag.`mlflow.traceName` = 'agent'"
    )
    assert len(traces) == 1
    rows = [{"inputs": {"question": "What is 2+2?"}, "outputs": "4"}]
    plain = mlflow.genai.evaluate(data=rows, scorers=[trustworthiness_scorer(predictable)])
    want = expected_for(None, "4", prompt="What is 2+2?")
    assert plain.metrics["trustworthiness/mean"] == pytest.approx(want.trustworthiness_score)

    traced = mlflow.genai.evaluate(data=traces, scorers=[trustworthiness_scorer(predictable, name="trust")])
    agent = expected[AGENT_QUESTION]["result"]
    assert traced.metrics["trust/mean"] == pytest.approx(agent.trustworthiness_score)
    table = traced.tables["eval_results"]
    assert table["trust/rationale"].tolist() == [agent.explanation]  # system prompt of the LLM span included


def test_classic_evaluate_with_the_metric(tracking: str, experiment_id: str) -> None:
    pandas = pytest.importorskip("pandas")
    prompts = [
        "What is 2+2?",
        [{"role": "system", "content": TRIVIA_SYSTEM}, {"role": "user", "content": "Capital of Peru?"}],
    ]
    answers = ["4", "Lima"]
    data = pandas.DataFrame({"inputs": prompts, "outputs": answers})
    with mlflow.start_run():
        result = mlflow.models.evaluate(
            data=data, predictions="outputs", model=None, extra_metrics=[trustworthiness_metric(predictable)],
            evaluator_config={"col_mapping": {"inputs": "inputs"}},
        )  # fmt: skip
    want = [expected_for(None, "4", prompt="What is 2+2?"), expected_for(prompts[1], "Lima")]  # type: ignore[arg-type]
    table = result.tables["eval_results_table"]
    assert table["trustworthiness/score"].tolist() == pytest.approx([w.trustworthiness_score for w in want])
    assert table["trustworthiness/justification"].tolist() == [w.explanation for w in want]
    assert result.metrics["trustworthiness/min"] == pytest.approx(min(w.trustworthiness_score for w in want))


def test_server_made_no_outbound_connection(mlflow_server: Any) -> None:
    assert mlflow_server.trap.attempts == []


def test_genai_evaluate_with_a_timeout_fails_only_the_rows_that_run_over(tracking: str, experiment_id: str) -> None:
    import asyncio

    async def slow_on_request(request: Any) -> TrustResult:
        if "slow" in request.prompt_text():
            await asyncio.sleep(5)
        return TrustResult(0.75, warnings=("consistency: 3 of 4 samples",))

    rows = [
        {"inputs": {"question": "a slow one?"}, "outputs": "4"},
        {"inputs": {"question": "a quick one?"}, "outputs": "4"},
    ]
    scorer = trustworthiness_scorer(slow_on_request, name="trust", timeout=1)
    if "timeout" in inspect.signature(mlflow.genai.scorers.scorer).parameters:
        assert scorer.timeout == 11  # MLflow's own per-call limit stays above ours
    table = mlflow.genai.evaluate(data=rows, scorers=[scorer]).tables["eval_results"]
    by_question = {str(row["request"]): row for row in table.to_dict("records")}
    quick = next(row for request, row in by_question.items() if "quick" in request)
    slow = next(row for request, row in by_question.items() if "slow" in request)
    assert quick["trust/value"] == 0.75
    [feedback] = [a for a in quick["assessments"] if a["assessment_name"] == "trust"]
    assert json.loads(feedback["metadata"]["tlm_hooks.warnings"]) == ["consistency: 3 of 4 samples"]
    assert slow["trust/value"] != slow["trust/value"]  # NaN: no value
    assert (
        "timeout=1 s" in slow["trust/error_message"] and "MLFLOW_GENAI_EVAL_MAX_WORKERS" in slow["trust/error_message"]
    )


@pytest.mark.parametrize("timeout", [-1, float("inf"), True, "30"])
def test_a_bad_timeout_is_refused(timeout: Any) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        trustworthiness_scorer(predictable, timeout=timeout)
    assert caught.value.key == "timeout"
