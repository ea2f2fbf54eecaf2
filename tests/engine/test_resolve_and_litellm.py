"""Which judge a score uses (`resolve_backend`), and the litellm path with a fake litellm module."""

from __future__ import annotations

import os
import sys
import types
from typing import Any

import openai
import pytest

from tlm_hooks import InvalidOptionError, MissingDependencyError, TLMOptions
from tlm_hooks.llm import LiteLLMBackend, LocalBackend, OpenAICompatibleBackend, metered, resolve_backend


@pytest.fixture
def fake_litellm(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    module = types.ModuleType("litellm")

    async def acompletion(**kwargs: Any) -> dict[str, Any]:
        seen.append(kwargs)
        n = kwargs.get("n", 1)
        return {
            "choices": [
                {"index": i, "message": {"content": f"answer {i}"}, "finish_reason": "stop",
                 "logprobs": {"content": [{"token": "yes", "logprob": -0.2, "top_logprobs": [{"token": "no", "logprob": -1.7}]}]}}
                for i in range(n)
            ],
            "usage": {"prompt_tokens": 7, "completion_tokens": n},
        }  # fmt: skip

    module.acompletion = acompletion  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "litellm", module)
    monkeypatch.delenv("LITELLM_LOCAL_MODEL_COST_MAP", raising=False)
    return seen


async def test_litellm_backend_calls_acompletion(fake_litellm: list[dict[str, Any]]) -> None:
    backend = LiteLLMBackend("anthropic/claude-x", api_key="secret", api_base=None)
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    with metered() as usage:
        gens = await backend.acomplete([{"role": "user", "content": "hi"}], n=2, logprobs=True, top_logprobs=2)
    assert [g.text for g in gens] == ["answer 0", "answer 1"]
    assert gens[0].logprobs and gens[0].logprobs[0].top_logprobs == (("no", -1.7),)
    call = fake_litellm[0]
    assert call["model"] == "anthropic/claude-x" and call["api_key"] == "secret" and "api_base" not in call
    assert call["n"] == 2 and call["num_retries"] == 0 and call["top_logprobs"] == 2
    assert usage.calls == 1 and usage.prompt_tokens == 7


def test_missing_litellm_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'tlm-hooks\[litellm\]'"):
        LiteLLMBackend("gpt-4.1-mini")


def test_model_provider_api_base_gives_an_openai_compatible_judge() -> None:
    options = TLMOptions(
        options={"model": "served-model", "model_provider": {"api_base": "http://127.0.0.1:9/v1", "api_key": "k"}}
    )
    judge = resolve_backend(options, None)
    assert isinstance(judge, OpenAICompatibleBackend) and judge.model == "served-model"


def test_model_provider_provider_gives_litellm(fake_litellm: list[dict[str, Any]]) -> None:
    options = TLMOptions(
        options={
            "model": "gpt-4.1-mini",
            "model_provider": {"provider": "azure", "api_base": "https://x", "api-version": "2024-01-01"},
        }
    )
    judge = resolve_backend(options, None)
    assert isinstance(judge, LiteLLMBackend) and judge.model == "azure/gpt-4.1-mini"
    assert judge.provider == {"api_base": "https://x", "api_version": "2024-01-01"}
    prefixed = TLMOptions(
        options={"model": "azure/gpt-4.1-mini", "model_provider": {"api_base": "https://x", "api_key": "k"}}
    )
    assert resolve_backend(prefixed, None).model == "azure/gpt-4.1-mini"  # type: ignore[attr-defined]


def test_model_provider_needs_a_model() -> None:
    with pytest.raises(InvalidOptionError, match="options.model"):
        resolve_backend(TLMOptions(options={"model_provider": {"api_base": "http://x"}}), None)
    # the request's model counts
    assert resolve_backend(TLMOptions(options={"model_provider": {"api_base": "http://x"}}), None, model="m")


def test_precedence_without_provider() -> None:
    explicit = OpenAICompatibleBackend(model="judge", base_url="http://127.0.0.1:9/v1", api_key="k")
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k")
    assert resolve_backend(TLMOptions(), explicit, client, "app") is explicit
    from_client = resolve_backend(TLMOptions(), None, client, "app")
    assert isinstance(from_client, OpenAICompatibleBackend) and from_client.model == "app"
    assert isinstance(resolve_backend(TLMOptions(), None), LocalBackend)
    assert isinstance(resolve_backend(TLMOptions(), None, object(), "app"), LocalBackend)  # not an OpenAI client
    switched = resolve_backend(TLMOptions(options={"model": "bigger"}), explicit)
    assert (
        isinstance(switched, OpenAICompatibleBackend)
        and switched.model == "bigger"
        and switched.limiter is explicit.limiter
    )
    on_client = resolve_backend(TLMOptions(options={"model": "bigger"}), None, client, "app")
    assert on_client.model == "bigger"  # type: ignore[attr-defined]
    assert isinstance(resolve_backend(TLMOptions(options={"model": "smollm2-135m-instruct"}), None), LocalBackend)


def test_options_model_elsewhere_uses_litellm(fake_litellm: list[dict[str, Any]]) -> None:
    judge = resolve_backend(TLMOptions(options={"model": "gpt-4.1-nano"}), None)
    assert isinstance(judge, LiteLLMBackend) and judge.model == "gpt-4.1-nano"
