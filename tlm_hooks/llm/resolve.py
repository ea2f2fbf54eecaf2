"""`resolve_backend`: which judge model a score uses, from options, an explicit judge or the hooked client."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidOptionError
from ..local.model import DEFAULT_MODEL_NAME
from ..options import TLMOptions
from .azure_inference import AzureInferenceBackend, is_azure_inference_client
from .base import ChatBackend
from .litellm_backend import LiteLLMBackend
from .local import LocalBackend
from .openai_compat import OpenAICompatibleBackend, is_openai_client

__all__ = ["resolve_backend"]


def resolve_backend(
    options: TLMOptions,
    default: ChatBackend | None,
    source_client: Any = None,
    model: str | None = None,
) -> ChatBackend:
    """The judge for one score, first match wins:

    1. ``options.model_provider``: with ``provider`` (or ``api_version``, or an ``azure/`` model)
       litellm with ``provider/model``; with only ``api_base`` an OpenAI-compatible endpoint there;
    2. ``options.model``: ``default`` (or the hooked client) switched to that model, else the
       embedded model if it is named, else litellm;
    3. ``default`` (the scorer's explicit judge);
    4. ``source_client`` (the hooked OpenAI client with the request's ``model``, or the hooked
       Azure AI Inference client with the request's model or its endpoint's default);
    5. the embedded local model.
    """
    judge_model = options.options.get("model")
    provider = options.options.get("model_provider") or {}
    if provider:
        return _from_provider(provider, judge_model or model)
    if judge_model:
        if default is not None:
            with_model = getattr(default, "with_model", None)
            return with_model(judge_model) if with_model is not None else default
        if source_client is not None and is_openai_client(source_client):
            return OpenAICompatibleBackend.from_client(source_client, judge_model)
        if source_client is not None and is_azure_inference_client(source_client):
            return AzureInferenceBackend(source_client, model=judge_model)
        if judge_model == DEFAULT_MODEL_NAME:
            return LocalBackend()
        return LiteLLMBackend(judge_model)
    if default is not None:
        return default
    if source_client is not None and model and is_openai_client(source_client):
        return OpenAICompatibleBackend.from_client(source_client, model)
    if source_client is not None and is_azure_inference_client(source_client):
        return AzureInferenceBackend(source_client, model=model)
    return LocalBackend()


def _from_provider(provider: dict[str, str], name: str | None) -> ChatBackend:
    if not name:
        raise InvalidOptionError(
            "options.model", None, "a model name (options.model or the request's model) with options.model_provider"
        )
    kind = provider.get("provider")
    if kind is None and (provider.get("api_version") or name.startswith("azure/")):
        kind = "azure"
    if kind is None and provider.get("api_base"):
        return OpenAICompatibleBackend(model=name, base_url=provider["api_base"], api_key=provider.get("api_key"))
    full = name if kind is None or name.startswith(f"{kind}/") else f"{kind}/{name}"
    return LiteLLMBackend(
        full,
        api_base=provider.get("api_base"),
        api_key=provider.get("api_key"),
        api_version=provider.get("api_version"),
    )
