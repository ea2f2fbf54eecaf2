"""Azure OpenAI paths: the real ``AzureOpenAI`` / ``AsyncAzureOpenAI`` clients against the server
over HTTP, on a scripted model (the embedded-model run is in test_azure_openai_embedded.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from server_fakes import FakeModel, RecordingScorer

import tlm_hooks
from tlm_hooks.server import ServerThread, create_app

openai = pytest.importorskip("openai")

KEY = "sk-azure-openai-test-key"
QUESTION = [{"role": "user", "content": "What is 2+2?"}]
VERSION = "2024-10-21"
TLM = {"quality_preset": "low", "options": {"log": ["explanation"]}}


class NamedModel(FakeModel):
    """A model that answers as whichever model a request names (like an upstream server)."""

    accepts_model_name = True
    model = None


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[ServerThread, NamedModel, RecordingScorer]]:
    model, scorer = NamedModel(), RecordingScorer()
    with ServerThread(create_app(model, scorer=scorer, api_keys=[KEY])) as server:
        yield server, model, scorer


@pytest.fixture
def server(served: tuple[ServerThread, NamedModel, RecordingScorer]) -> ServerThread:
    served[1].calls.clear()
    served[2].requests.clear()
    return served[0]


@pytest.fixture
def model(served: tuple[ServerThread, NamedModel, RecordingScorer]) -> NamedModel:
    return served[1]


@pytest.fixture
def scorer(served: tuple[ServerThread, NamedModel, RecordingScorer]) -> RecordingScorer:
    return served[2]


def _recording_http(seen: list[httpx.Request]) -> httpx.Client:
    return httpx.Client(event_hooks={"request": [seen.append]})


def _azure(base: str, *, seen: list[httpx.Request] | None = None, **kwargs: Any) -> Any:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("api_version", VERSION)
    http = _recording_http(seen) if seen is not None else None
    return openai.AzureOpenAI(azure_endpoint=base, max_retries=0, timeout=30, http_client=http, **kwargs)


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_azure_endpoint_at_the_root_or_under_api(server: ServerThread, model: NamedModel, prefix: str) -> None:
    seen: list[httpx.Request] = []
    client = _azure(server.base_url + prefix, seen=seen)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, extra_body=TLM)
    assert reply.choices[0].message.content == "The answer is 4."
    assert 0.0 < reply.tlm_metadata["trustworthiness_score"] <= 1.0
    assert reply.tlm_metadata["log"]["explanation"]
    # the URL the SDK built, the key header it sent, and the deployment that became the model
    assert seen[0].url.path == f"{prefix}/openai/deployments/gpt-4o-mini/chat/completions"
    assert seen[0].url.params["api-version"] == VERSION
    assert seen[0].headers["api-key"] == KEY and "authorization" not in seen[0].headers
    assert model.calls[0]["model"] == "gpt-4o-mini"
    assert "warnings" not in reply.tlm_metadata["log"]


def test_extra_body_options_reach_the_scorer(server: ServerThread, scorer: RecordingScorer) -> None:
    _azure(server.base_url).chat.completions.create(model="gpt-4o-mini", messages=QUESTION, extra_body=TLM)
    options = scorer.requests[0].options
    assert options.quality_preset == "low" and options.options == {"log": ["explanation"]}


def test_azure_deployment_names_the_model_and_a_different_body_model_is_reported(
    server: ServerThread, model: NamedModel
) -> None:
    seen: list[httpx.Request] = []
    client = _azure(server.base_url, azure_deployment="my-deployment", seen=seen)
    reply = client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert seen[0].url.path == "/openai/deployments/my-deployment/chat/completions"
    assert model.calls[0]["model"] == "my-deployment"
    assert reply.tlm_metadata["log"]["warnings"] == [
        "model 'gpt-4o' in the body was replaced by the deployment 'my-deployment' in the URL"
    ]


def test_a_model_name_with_a_slash_is_one_deployment(server: ServerThread, model: NamedModel) -> None:
    seen: list[httpx.Request] = []
    reply = _azure(server.base_url, seen=seen).chat.completions.create(model="azure/gpt-4o-mini", messages=QUESTION)
    assert seen[0].url.path == "/openai/deployments/azure/gpt-4o-mini/chat/completions"
    assert model.calls[0]["model"] == "azure/gpt-4o-mini"
    assert reply.tlm_metadata["trustworthiness_score"] > 0


@pytest.mark.parametrize("version", ["preview", "latest"])
def test_preview_api_versions_post_without_a_deployment(server: ServerThread, model: NamedModel, version: str) -> None:
    seen: list[httpx.Request] = []
    client = _azure(server.base_url + "/api", api_version=version, seen=seen)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    # newer SDKs leave the deployment out of the path for these versions; older ones put it in
    assert seen[0].url.path in ("/api/openai/chat/completions", "/api/openai/deployments/gpt-4o-mini/chat/completions")
    assert model.calls[0]["model"] == "gpt-4o-mini" and reply.tlm_metadata["trustworthiness_score"] > 0
    direct = httpx.post(
        f"{server.base_url}/api/openai/chat/completions?api-version={version}",
        json={"model": "gpt-4o", "messages": QUESTION},
        headers={"api-key": KEY},
    )
    assert direct.status_code == 200 and model.calls[1]["model"] == "gpt-4o"


def test_azure_v1_api_through_the_openai_client(server: ServerThread, model: NamedModel) -> None:
    client = openai.OpenAI(base_url=f"{server.base_url}/openai/v1", api_key=KEY, max_retries=0, timeout=30)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, extra_body=TLM)
    assert model.calls[0]["model"] == "gpt-4o-mini" and reply.tlm_metadata["log"]["explanation"]


def test_streamed(server: ServerThread) -> None:
    stream = _azure(server.base_url).chat.completions.create(
        model="gpt-4o-mini", messages=QUESTION, stream=True, extra_body=TLM
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The answer is 4."
    metadata = chunks[-1].tlm_metadata
    assert 0.0 < metadata["trustworthiness_score"] <= 1.0 and metadata["log"]["explanation"]


def test_async_client_plain_and_streamed(server: ServerThread, model: NamedModel) -> None:
    async def run() -> tuple[Any, list[Any]]:
        client = openai.AsyncAzureOpenAI(
            azure_endpoint=server.base_url + "/api", api_key=KEY, api_version=VERSION, max_retries=0, timeout=30
        )
        async with client:
            reply = await client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, extra_body=TLM)
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=QUESTION, extra_body=TLM, stream=True
            )
            return reply, [chunk async for chunk in stream]

    reply, chunks = asyncio.run(run())
    assert reply.tlm_metadata["log"]["explanation"]
    assert chunks[-1].tlm_metadata["trustworthiness_score"] == pytest.approx(
        reply.tlm_metadata["trustworthiness_score"]
    )
    assert [call["model"] for call in model.calls] == ["gpt-4o-mini", "gpt-4o-mini"]


def test_keys_as_azure_clients_send_them(server: ServerThread) -> None:
    wrong = _azure(server.base_url, api_key="sk-not-this-one")
    with pytest.raises(openai.AuthenticationError) as info:
        wrong.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert info.value.status_code == 401 and "sk-not-this-one" not in str(info.value)
    # an Azure AD token travels as "Authorization: Bearer": the server's key works there too
    seen: list[httpx.Request] = []
    token = _azure(server.base_url, api_key=None, azure_ad_token=KEY, seen=seen)
    assert token.chat.completions.create(model="gpt-4o-mini", messages=QUESTION).tlm_metadata
    assert seen[0].headers["authorization"] == f"Bearer {KEY}" and "api-key" not in seen[0].headers
    provider = _azure(server.base_url, api_key=None, azure_ad_token_provider=lambda: "sk-wrong-token")
    with pytest.raises(openai.AuthenticationError):
        provider.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)


def test_route_mode_end_to_end(server: ServerThread, scorer: RecordingScorer) -> None:
    client = tlm_hooks.route(
        _azure(server.base_url),
        quality_preset="medium",
        options={"log": ["explanation"]},
        policy=tlm_hooks.TrustPolicy(
            threshold=0.99, on_low_trust=[tlm_hooks.fallbacks.AppendWarning("[low {score:.2f}]")]
        ),
    )
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert scorer.requests[0].options.quality_preset == "medium"  # route merged it into the body
    assert reply.tlm_metadata["log"]["explanation"]
    # the score the server sent back is what the policy acted on
    assert reply.choices[0].message.content.endswith(f"[low {reply.tlm_metadata['trustworthiness_score']:.2f}]")
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("The answer is 4.") and stream.tlm_metadata["log"]["explanation"]


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/openai/deployments/gpt/chat/completions?api-version=" + "9" * 65, "api-version"),
        ("/openai/deployments/gpt/chat/completions?api-version=", "api-version"),
        ("/openai/deployments///chat/completions", "deployment"),
    ],
)
def test_bad_azure_urls_are_refused_naming_the_part(
    server: ServerThread, model: NamedModel, path: str, param: str
) -> None:
    reply = httpx.post(server.base_url + path, json={"messages": QUESTION}, headers={"api-key": KEY})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == param
    assert model.calls == []


def test_openapi_lists_the_azure_paths(server: ServerThread) -> None:
    paths = httpx.get(f"{server.base_url}/openapi.json").json()["paths"]
    for prefix in ("", "/api"):
        operation = paths[f"{prefix}/openai/deployments/{{deployment}}/chat/completions"]["post"]
        assert {p["name"] for p in operation["parameters"]} == {"deployment", "api-version"}
        assert f"{prefix}/openai/chat/completions" in paths and f"{prefix}/openai/v1/chat/completions" in paths
