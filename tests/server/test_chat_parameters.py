"""Top-level keys of a chat body: TLM keys used, misspelt ones refused, OpenAI's own accepted,
anything else reported in ``tlm_metadata.log.warnings`` (never dropped without a word)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from server_fakes import FakeModel, RecordingScorer
from starlette.testclient import TestClient

from tlm_hooks.server import create_app
from tlm_hooks.server.chat import OPENAI_PARAMETERS, UNSUPPORTED_PARAMETERS, USED_PARAMETERS

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
CHAT = "/v1/chat/completions"


def _client(model: FakeModel | None = None, scorer: Any = None) -> TestClient:
    return TestClient(
        create_app(model or FakeModel(), scorer=scorer or RecordingScorer()), raise_server_exceptions=False
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    return response.json()["error"]


@pytest.mark.parametrize(
    ("key", "suggested"),
    [
        ("qualty_preset", "quality_preset"),
        ("Quality_Preset", "quality_preset"),
        ("quality_presets", "quality_preset"),
        ("quality", "quality_preset"),  # the REST API's name for it
        ("optoins", "options"),
        ("option", "options"),
        ("tasks", "task"),
    ],
)
def test_a_misspelt_tlm_key_is_refused_with_the_key_it_resembles(key: str, suggested: str) -> None:
    model = FakeModel()
    error = _error(_client(model).post(CHAT, json={"messages": QUESTION, key: "low"}))
    assert error["param"] == key
    assert f"did you mean {suggested!r}" in error["message"]
    assert model.calls == []  # refused before any model work


@pytest.mark.parametrize("key", ["log", "num_self_reflections", "similarity_measure", "model_provider"])
def test_a_tlm_option_outside_options_is_refused_saying_where_it_goes(key: str) -> None:
    error = _error(_client().post(CHAT, json={"messages": QUESTION, key: ["explanation"]}))
    assert error["param"] == key and "TLM option: send it inside options" in error["message"]


def test_unknown_keys_are_reported_in_the_metadata() -> None:
    body = {"messages": QUESTION, "top_k": 5, "mask": True, "temprature": 0.2, "quality_preset": "base"}
    reply = _client().post(CHAT, json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["tlm_metadata"]["log"]["warnings"] == [
        "ignored unknown parameter 'top_k'",
        "ignored unknown parameter 'mask'",
        "ignored unknown parameter 'temprature' (did you mean 'temperature'?)",
    ]


def test_openai_parameters_this_server_cannot_honour_are_reported() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = {"messages": QUESTION, "tools": tools, "response_format": {"type": "json_object"}, "user": "u1"}
    reply = _client().post(CHAT, json=body)
    assert reply.status_code == 200
    assert reply.json()["tlm_metadata"]["log"]["warnings"] == [
        "parameter 'tools' is not supported by this server and was ignored",
        "parameter 'response_format' does not constrain this server's answer; it is used for scoring only "
        "(a JSON-object answer is compared field by field, and log 'per_field_score' scores each field)",
    ]  # "user" changes nothing in the answer: accepted without a word


def test_warnings_ride_on_the_last_stream_chunk() -> None:
    client = _client()
    with client.stream("POST", CHAT, json={"messages": QUESTION, "stream": True, "top_k": 3}) as reply:
        lines = [line for line in reply.iter_lines() if line.startswith("data: {")]
    assert '"warnings": ["ignored unknown parameter \'top_k\'"]' in lines[-1]


def test_a_clean_body_has_no_warnings() -> None:
    reply = _client().post(CHAT, json={"messages": QUESTION, "temperature": 0, "user": "u", "metadata": {"a": "b"}})
    assert "warnings" not in reply.json()["tlm_metadata"].get("log", {})


def test_extra_parameters_header_also_governs_unknown_keys() -> None:
    scorer = RecordingScorer()
    client = _client(scorer=scorer)
    body = {"messages": QUESTION, "top_k": 3, "qualty_preset": "low", "tools": []}
    dropped = client.post(CHAT, json=body, headers={"extra-parameters": "drop"})
    assert dropped.status_code == 200  # drop: extra keys go, typos included, as the client asked
    assert dropped.json()["tlm_metadata"]["log"]["warnings"] == [
        "parameter 'tools' is not supported by this server and was ignored"
    ]
    error = _error(client.post(CHAT, json={"messages": QUESTION, "top_k": 3}, headers={"extra-parameters": "error"}))
    assert error["param"] == "top_k" and "extra-parameters: error" in error["message"]


@pytest.mark.parametrize(
    "path", ["/api/chat/completions", "/chat/completions", "/openai/deployments/d/chat/completions"]
)
def test_every_chat_path_checks_keys(path: str) -> None:
    assert _error(_client().post(path, json={"messages": QUESTION, "optoins": {}}))["param"] == "optoins"


def test_every_openai_chat_parameter_is_known() -> None:
    """No parameter of the installed openai SDK's chat ``create()`` is refused or called unknown."""
    params = pytest.importorskip("openai.types.chat.completion_create_params")
    sdk = set(params.CompletionCreateParamsStreaming.__annotations__)  # TypedDict: the base's keys + stream
    assert sdk - OPENAI_PARAMETERS == set()
    assert USED_PARAMETERS <= sdk  # what the server honours is real OpenAI
    assert len(UNSUPPORTED_PARAMETERS - sdk) <= 1  # only Azure's data_sources is not in openai's list
    client = _client()
    for key in sorted(sdk - {"messages", "n", "stream", "stream_options"}):
        reply = client.post(CHAT, json={"messages": QUESTION, key: None})
        assert reply.status_code == 200, (key, reply.text)
        assert not any(
            key in w and "unknown" in w for w in reply.json()["tlm_metadata"].get("log", {}).get("warnings", [])
        )


def test_a_flood_of_unknown_keys_is_counted_not_listed() -> None:
    body: dict[str, Any] = {"messages": QUESTION, **{f"junk_{i}": i for i in range(500)}}
    warnings = _client().post(CHAT, json=body).json()["tlm_metadata"]["log"]["warnings"]
    assert len(warnings) == 11
    assert warnings[0] == "ignored unknown parameter 'junk_0'" and warnings[-1] == "ignored 490 more unknown parameters"
