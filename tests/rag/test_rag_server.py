"""The RAG endpoints over HTTP: a real server on loopback whose model is a scripted judge."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from rag_fakes import ScriptedJudge  # noqa: E402

from tlm_hooks.rag import DEFAULT_EVALS  # noqa: E402
from tlm_hooks.server import DefaultScorers, ServerThread, create_app  # noqa: E402

KEY = "sk-rag-server-test-key"
CONTEXT = "The first month of the year is January."
QUERY = "What's the first month of the year?"
PROMPT = f"Given the context provided, answer the question. Context: {CONTEXT} Question: {QUERY} Response:"
NAMES = ["context_sufficiency", "response_groundedness", "response_helpfulness", "query_ease"]
SCORE = "/api/v1/rag_trustworthy_llm/score"
GENERATE = "/api/v1/rag_trustworthy_llm/generate"


class ScriptedModel:
    """A server `ChatModel` answering through a `ScriptedJudge` (OpenAI-shaped replies with logprobs)."""

    name = "scripted-model"

    def __init__(self, judge: ScriptedJudge) -> None:
        self.judge = judge

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        keys = ("temperature", "max_tokens", "logprobs", "top_logprobs", "seed")
        (generation,) = await self.judge.acomplete(messages, **{k: kwargs[k] for k in keys if k in kwargs})
        entries = [
            {
                "token": t.token,
                "logprob": t.logprob,
                "top_logprobs": [{"token": a, "logprob": lp} for a, lp in t.top_logprobs],
            }
            for t in generation.logprobs or ()
        ]
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": generation.text},
            "logprobs": {"content": entries} if entries and kwargs.get("logprobs") else None,
            "finish_reason": "stop",
        }
        return {"id": "x", "object": "chat.completion", "created": 1, "model": self.name, "choices": [choice]}

    def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        return asyncio.run(self.achat(messages, **kwargs))

    def chat_stream(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> Iterator[dict[str, Any]]:
        raise NotImplementedError


def _grounded_only_in_january(name: str, text: str) -> bool:
    return not (name == "response_groundedness" and "February" in text)


@pytest.fixture
def judge() -> ScriptedJudge:
    return ScriptedJudge(verdict=_grounded_only_in_january, answer="The first month is January.")


@pytest.fixture
def http(judge: ScriptedJudge) -> Iterator[Any]:
    app = create_app(ScriptedModel(judge), scorer=DefaultScorers(), api_keys=[KEY])
    with (
        ServerThread(app) as server,
        httpx.Client(base_url=server.base_url, headers={"authorization": f"Bearer {KEY}"}, timeout=60) as client,
    ):
        yield client


def test_score_in_the_rest_shape_with_the_default_evals(http: Any, judge: ScriptedJudge) -> None:
    body = {
        "context": CONTEXT,
        "query": QUERY,
        "prompt": PROMPT,
        "response": {"response": "February"},
        "quality": "low",
        "options": {"log": ["explanation"]},
        "evals": [ev.to_dict() for ev in DEFAULT_EVALS],
    }
    reply = http.post(SCORE, json=body)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert list(data) == ["trustworthiness", *NAMES, "deberta_success"] and "note" not in data
    assert 0.0 <= data["trustworthiness"]["score"] <= 1.0 and data["trustworthiness"]["log"]["explanation"]
    assert data["response_groundedness"]["score"] == 0.0
    assert all(data[n]["score"] == 1.0 and data[n]["log"]["explanation"] for n in NAMES if n != "response_groundedness")
    # the server's own model judged, with the request's inputs under each eval's headings
    (grounded,) = judge.eval_calls("response_groundedness")
    assert f"Context:\n{CONTEXT}" in grounded.text and "Response:\nFebruary" in grounded.text
    assert all("February" not in c.text for c in judge.eval_calls("query_ease"))
    assert any(PROMPT in c.text for c in judge.calls if c.role == "reflection")


def test_generate_adds_the_model_answer(http: Any, judge: ScriptedJudge) -> None:
    reply = http.post(GENERATE, json={"context": CONTEXT, "query": QUERY, "quality": "low"})
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["response"] == "The first month is January." and list(data)[1:] == [
        "trustworthiness",
        *NAMES,
        "deberta_success",
    ]
    assert all(data[n]["score"] == 1.0 for n in NAMES)
    (generation,) = [c for c in judge.calls if c.role == "generate"]
    assert CONTEXT in generation.text and QUERY in generation.text  # prompt built from query and context
    assert any("first month is January" in c.text for c in judge.eval_calls("response_groundedness"))


@pytest.mark.parametrize(
    ("evals", "names"),
    [
        (["response_groundedness"], ["response_groundedness"]),
        (
            [
                {"name": "query_ease"},
                {"name": "polite", "criteria": "The Reply is polite.", "response_identifier": "Reply"},
            ],
            ["query_ease", "polite"],
        ),
        ([], []),
    ],
)
def test_evals_from_the_body_are_honoured(http: Any, judge: ScriptedJudge, evals: Any, names: list[str]) -> None:
    body = {"context": CONTEXT, "query": QUERY, "response": "January", "quality": "low", "evals": evals}
    data = http.post(SCORE, json=body).json()
    assert list(data) == ["trustworthiness", *names, "deberta_success"]
    if "polite" in names:
        polite = [c for c in judge.calls if "The Reply is polite." in c.text]
        assert len(polite) == 1 and "Reply:\nJanuary" in polite[0].text and CONTEXT not in polite[0].text


@pytest.mark.parametrize(
    ("extra", "per_eval"),
    [
        ({"quality": "medium"}, 2),
        ({"quality_preset": "high"}, 3),
        ({"quality": "low", "options": {"num_self_reflections": 4}}, 4),
        ({}, 2),  # no preset: medium
    ],
)
def test_quality_and_options_set_the_work(
    http: Any, judge: ScriptedJudge, extra: dict[str, Any], per_eval: int
) -> None:
    body = {"context": CONTEXT, "query": QUERY, "response": "January", "evals": ["context_sufficiency"], **extra}
    assert http.post(SCORE, json=body).status_code == 200
    assert len(judge.eval_calls("context_sufficiency")) == per_eval


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": QUERY, "response": "r"}, "context"),
        ({"context": CONTEXT, "response": "r"}, "query"),
        ({"context": CONTEXT, "query": QUERY}, "response"),
        ({"context": CONTEXT, "query": QUERY, "response": "r", "evals": [{"name": "x"}]}, "evals[0].name"),
        (
            {"context": CONTEXT, "query": QUERY, "response": "r", "evals": [{"name": "a", "criteria": "c"}]},
            "evals[0].query_identifier",
        ),
        ({"context": CONTEXT, "query": QUERY, "response": "r", "evals": "all"}, "evals"),
        (
            {"context": CONTEXT, "query": QUERY, "response": "r", "quality": "low", "quality_preset": "high"},
            "quality_preset",
        ),
        ({"context": CONTEXT, "query": QUERY, "response": "r", "options": {"log": ["all"]}}, "options.log[0]"),
    ],
)
def test_bad_bodies_are_400_before_any_model_call(
    http: Any, judge: ScriptedJudge, body: dict[str, Any], param: str
) -> None:
    reply = http.post(SCORE, json=body)
    assert reply.status_code == 422  # TLM's REST shape: Cleanlab's client would retry a 400
    data = reply.json()
    assert data["param"] == param and param.split(".")[-1].split("[")[0] in data["error"]
    assert judge.calls == []


def test_a_failing_eval_is_reported_and_secrets_are_scrubbed(http: Any, judge: ScriptedJudge) -> None:
    def fail(call: Any) -> bool:
        if call.eval_name == "response_helpfulness":
            raise RuntimeError(f"upstream refused key {KEY}")
        return False

    judge.fail = fail
    data = http.post(SCORE, json={"context": CONTEXT, "query": QUERY, "response": "January", "quality": "low"}).json()
    error = data["response_helpfulness"]["error"]
    assert data["response_helpfulness"]["score"] is None and error["type"] == "RuntimeError"
    assert KEY not in error["message"] and "***" in error["message"]
    assert data["query_ease"]["score"] == 1.0 and data["trustworthiness"]["score"] is not None


def test_a_failed_generation_is_a_server_error(http: Any, judge: ScriptedJudge) -> None:
    judge.fail = lambda call: call.role == "generate"
    reply = http.post(GENERATE, json={"context": CONTEXT, "query": QUERY})
    assert reply.status_code == 500 and "scripted failure" in reply.json()["error"]


def test_a_server_without_a_scorer_says_so_in_every_part(judge: ScriptedJudge) -> None:
    app = create_app(ScriptedModel(judge), scorer=None)
    with ServerThread(app) as server:
        data = httpx.post(
            f"{server.base_url}{SCORE}", json={"context": CONTEXT, "query": QUERY, "response": "r"}, timeout=30
        ).json()
    assert list(data) == ["trustworthiness", *NAMES, "deberta_success"] and data.pop("deberta_success") is True
    assert all(part["score"] is None and "no scorer" in part["error"]["message"] for part in data.values())
    assert judge.calls == []


def test_openapi_describes_the_rag_reply(http: Any) -> None:
    document = http.get("/openapi.json").json()
    rag = document["paths"][SCORE]["post"]
    assert "evals" in rag["summary"].lower() or "eval" in rag.get("description", "").lower()
    schema = document["components"]["schemas"]["RagResponse"]
    assert "note" not in schema["properties"] and schema["additionalProperties"]
