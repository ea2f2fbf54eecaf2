"""Structured outputs scored per field: ``parse()`` with a pydantic model through a hooked `openai`
client, ``log.per_field_score``, ``untrustworthy_fields``, and the same on ``tlm-hooks serve``'s
chat route (real HTTP, the real `openai` client)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from fake_openai import FakeOpenAI, Reply
from openai import OpenAI
from pydantic import BaseModel

import tlm_hooks
from engine.conftest import FakeJudge
from tlm_hooks import TLMScorer, TrustResult, per_field_scores, untrustworthy_fields
from tlm_hooks.scorers.signals.fields import NO_FORMAT, field_agreements, structured_agreement
from tlm_hooks.server import ServerThread, create_app

MESSAGES = [{"role": "user", "content": "Which city is the capital of France, and how many people live there?"}]
ANSWER = {"city": "Paris", "country": "France", "population_millions": 2.1}


class Capital(BaseModel):
    city: str
    country: str
    population_millions: float


def _doubting(field: str) -> Any:
    """A judge verdict that doubts only the field ``field``."""
    return lambda prompt: "bad" if f'field "{field}"' in prompt else "good"


def _hooked(fake: FakeOpenAI, judge: FakeJudge, **options: Any) -> OpenAI:
    scorer = TLMScorer("low", options={"log": ["per_field_score"], **options}, judge=judge)
    return tlm_hooks.patch(OpenAI(base_url=fake.url, api_key="k", max_retries=0), scorer=scorer)


def test_field_agreement_compares_each_field_as_a_structure() -> None:
    samples = [
        json.dumps({"population_millions": "2.1", "city": "paris", "country": "Spain"}),
        "Here you go: " + json.dumps({"city": "Paris", "country": "France"}),
        "no JSON at all",
    ]
    agreements = field_agreements(ANSWER, samples)
    assert agreements == {"city": [1.0, 1.0, 0.0], "country": [0.0, 1.0, 0.0], "population_millions": [1.0, 0.0, 0.0]}
    assert structured_agreement(ANSWER, samples) == pytest.approx([2 / 3, 2 / 3, 0.0])


def test_parse_with_a_pydantic_model_gets_per_field_scores(fake: FakeOpenAI) -> None:
    judge = FakeJudge(
        samples=[json.dumps({**ANSWER, "population_millions": 11.0}), json.dumps(ANSWER)],
        verdict_for=_doubting("country"),
    )
    client = _hooked(fake, judge)
    fake.push(Reply(text=json.dumps(ANSWER)))
    completion = client.chat.completions.parse(model="m", messages=MESSAGES, response_format=Capital)
    assert completion.choices[0].message.parsed == Capital(**ANSWER)  # the SDK's parsing is untouched
    fields = completion.tlm_metadata["log"]["per_field_score"]
    assert set(fields) == {"city", "country", "population_millions"}
    assert all(set(entry) == {"score", "explanation"} for entry in fields.values())
    # city: every sample agrees, judge sure; country: samples agree, judge doubts; population: 2 of 3 samples differ
    assert fields["city"]["score"] > fields["population_millions"]["score"]
    assert fields["city"]["score"] > fields["country"]["score"]
    assert "1 of 3 sampled answers" in fields["population_millions"]["explanation"]
    assert "doubted" in fields["country"]["explanation"]
    assert untrustworthy_fields(completion, threshold=fields["city"]["score"]) == sorted(
        ["country", "population_millions"], key=lambda name: fields[name]["score"]
    )
    assert untrustworthy_fields(completion, threshold=0.0) == []
    # the judge sampled answers to the schema and reflected once per field
    sampling = [c for c in judge.calls if c.kind == "sample"]
    assert (
        "population_millions" in sampling[0].messages[0]["content"]
        and "JSON schema" in sampling[0].messages[0]["content"]
    )
    field_prompts = [c for c in judge.calls if 'Look only at the field "' in c.messages[-1]["content"]]
    assert len(field_prompts) == 3


def test_the_overall_score_compares_fields_not_json_text(fake: FakeOpenAI) -> None:
    # every sample repeats the keys; only the values say whether the answers agree
    wrong_values = json.dumps({"city": "Lyon", "country": "Spain", "population_millions": 9.9})
    scores = {}
    for label, samples in {"same": [json.dumps(ANSWER)], "different": [wrong_values]}.items():
        # two fake judges under one name: the score cache would take the second for the first
        client = _hooked(fake, FakeJudge(samples=samples), cache=False)
        fake.push(Reply(text=json.dumps(ANSWER)))
        completion = client.chat.completions.create(
            model="m", messages=MESSAGES, response_format={"type": "json_object"}
        )
        scores[label] = completion.tlm_metadata["log"]["per_component_score"]["consistency"]
        tlm_hooks.unpatch(client)
    assert scores == {"same": 1.0, "different": 0.0}


def test_per_field_score_without_a_json_format_says_why(fake: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    client = _hooked(fake, FakeJudge(samples=["4"]))
    fake.push(Reply(text="The answer is 4."))
    completion = client.chat.completions.create(model="m", messages=MESSAGES)
    assert completion.tlm_metadata["log"]["per_field_score"] == {"error": NO_FORMAT}  # Cleanlab's error shape
    with caplog.at_level(logging.WARNING, logger="tlm_hooks"):
        assert untrustworthy_fields(completion) == []
    assert NO_FORMAT in caplog.text
    with pytest.raises(ValueError, match="were not computed"):
        per_field_scores(completion)


def test_untrustworthy_fields_takes_metadata_dicts_and_results_and_checks_its_input() -> None:
    metadata = {
        "trustworthiness_score": 0.5,
        "log": {"per_field_score": {"a": {"score": 0.7, "explanation": ""}, "b": {"score": 0.2, "explanation": ""},
                                    "c": {"score": 0.95, "explanation": ""}}},
    }  # fmt: skip
    assert untrustworthy_fields(metadata) == ["b", "a"]  # lowest first, below the default 0.8
    assert untrustworthy_fields(TrustResult.from_dict(metadata), threshold=0.5) == ["b"]
    with pytest.raises(ValueError, match="per_field_score"):
        untrustworthy_fields({"trustworthiness_score": 0.5})
    with pytest.raises(tlm_hooks.InvalidOptionError, match="threshold"):
        untrustworthy_fields(metadata, threshold=1.5)
    with pytest.raises(TypeError, match="tlm_metadata"):
        untrustworthy_fields("not a response")


# -- tlm-hooks serve: the chat route honours per_field_score ------------------------------------------


class _JsonModel:
    """A generator model that answers every request with one JSON object."""

    name = "json-model"

    def __init__(self, answer: Mapping[str, Any]) -> None:
        self.text = json.dumps(answer)

    def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        return {
            "id": "c", "object": "chat.completion", "created": 1, "model": self.name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }  # fmt: skip

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.chat, messages, **kwargs)

    def chat_stream(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> Iterator[dict[str, Any]]:
        raise NotImplementedError


def test_the_server_chat_route_returns_per_field_scores() -> None:
    judge = FakeJudge(samples=[json.dumps(ANSWER)], verdict_for=_doubting("population_millions"))
    app = create_app(_JsonModel(ANSWER), scorer=TLMScorer("low", judge=judge))
    with ServerThread(app) as server:
        client = OpenAI(base_url=f"{server.base_url}/v1", api_key="k", max_retries=0)
        completion = client.chat.completions.parse(
            model="m", messages=MESSAGES, response_format=Capital, extra_body={"options": {"log": ["per_field_score"]}}
        )
    metadata = completion.model_extra["tlm_metadata"]
    fields = metadata["log"]["per_field_score"]
    assert set(fields) == {"city", "country", "population_millions"}
    assert untrustworthy_fields(metadata, threshold=fields["city"]["score"]) == ["population_millions"]
    warnings = metadata["log"].get("warnings", [])
    assert not any("not computed" in line for line in warnings)
    assert any("response_format" in line and "scoring only" in line for line in warnings)
