"""The product documents' Workflow 3 ("point your client at the TLM backend"), call for call,
against a real ``tlm-hooks serve`` process on the embedded model: the OpenAI client with
``extra_body``, a decorator that sets ``extra_body`` on every call, and Azure AI Inference's
``ChatCompletionsClient`` with ``model_extras``. Only the URL and key are ours; ``max_tokens``
is added to keep the tiny model quick."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from serve_process import ServeProcess

pytestmark = pytest.mark.embedded_model

KEY = "sk-workflow-three-key"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
TLM_KWARGS = {"quality_preset": "low", "options": {"log": ["explanation"]}}


@pytest.fixture(scope="module")
def server() -> Iterator[ServeProcess]:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    args = ["--timeout", "300", "--log-level", "warning", "--max-concurrency", "1"]
    with ServeProcess(args, env={"TLM_HOOKS_API_KEYS": KEY}) as running:
        yield running


def _read_back(metadata: Any) -> None:
    """What the documents print: the score to four places and the explanation."""
    assert f"{metadata['trustworthiness_score']:.4f}"
    assert 0.0 <= metadata["trustworthiness_score"] <= 1.0
    assert isinstance(metadata["log"]["explanation"], str) and metadata["log"]["explanation"]
    assert "warnings" not in metadata["log"]  # nothing in these calls was ignored


def test_openai_client_with_extra_body(server: ServeProcess) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(api_key=KEY, base_url=f"{server.base_url}/api", max_retries=0, timeout=300)
    response = client.chat.completions.create(
        model="azure/gpt-4o-mini", messages=MESSAGES, max_tokens=16, extra_body=TLM_KWARGS
    )
    assert response.choices[0].message.content.strip()
    _read_back(response.tlm_metadata)


def _add_extra_body(tlm_kwargs: dict[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The documents' decorator pattern: every call goes out with ``extra_body=tlm_kwargs``."""

    def decorate(create: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(create)
        def with_extra_body(*args: Any, **kwargs: Any) -> Any:
            kwargs["extra_body"] = tlm_kwargs
            return create(*args, **kwargs)

        return with_extra_body

    return decorate


def test_openai_client_decorated_to_add_extra_body(server: ServeProcess) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(api_key=KEY, base_url=f"{server.base_url}/api", max_retries=0, timeout=300)
    client.chat.completions.create = _add_extra_body(TLM_KWARGS)(client.chat.completions.create)  # type: ignore[method-assign]
    response = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=16)
    assert response.choices[0].message.content.strip()
    _read_back(response.tlm_metadata)


def test_azure_ai_inference_client_with_model_extras(server: ServeProcess) -> None:
    inference = pytest.importorskip("azure.ai.inference", reason="azure-ai-inference is not installed")
    from azure.core.credentials import AzureKeyCredential

    azure_client = inference.ChatCompletionsClient(
        endpoint=f"{server.base_url}/api", credential=AzureKeyCredential(KEY)
    )
    response = azure_client.complete(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=16,
        model_extras=TLM_KWARGS,
    )
    assert response.choices[0].message.content.strip()
    _read_back(response["tlm_metadata"])  # the SDK's model exposes keys it does not know by subscript
    azure_client.close()
