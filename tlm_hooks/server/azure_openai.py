"""Azure OpenAI's URL layout on the chat endpoint: the deployment in the path names the model.

``openai.AzureOpenAI(azure_endpoint=E, api_version=V)`` (and ``AsyncAzureOpenAI``) posts a chat
completion to ``E/openai/deployments/<model>/chat/completions?api-version=V``; with
``azure_deployment=D`` to ``E/openai/deployments/D/chat/completions``; with ``api_version`` set to
``"preview"`` or ``"latest"`` to ``E/openai/chat/completions`` (model in the body), and Azure's v1
API is reached with ``OpenAI(base_url=E + "/openai/v1")``. ``E`` is the server's root or its
``/api`` prefix. Auth is the ``api-key`` header (or ``Authorization: Bearer`` for an Azure AD
token), which :class:`~tlm_hooks.server.auth.KeyChecker` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from .errors import bad_field

__all__ = ["AZURE_OPENAI_PATHS", "DEPLOYMENT_PATHS", "azure_chat_body"]

_PREFIXES = ("", "/api")
_MAX_API_VERSION = 64

# ``:path`` lets a deployment carry a slash: the SDK puts a model such as "azure/gpt-4o-mini" in the path as it is
DEPLOYMENT_PATHS: tuple[str, ...] = tuple(
    f"{prefix}/openai/deployments/{{deployment:path}}/chat/completions" for prefix in _PREFIXES
)
AZURE_OPENAI_PATHS: tuple[str, ...] = (
    *DEPLOYMENT_PATHS,
    *(f"{prefix}/openai{version}/chat/completions" for prefix in _PREFIXES for version in ("", "/v1")),
)


def azure_chat_body(body: Any, request: Request) -> tuple[Any, tuple[str, ...]]:
    """``body`` with the path's deployment as its ``model``, and warnings about what that replaced.

    ``api-version`` is accepted whatever its value (this server has one behaviour for all of
    them); it is checked only for being a short string.
    """
    version = request.query_params.get("api-version")
    if version is not None and (not version or len(version) > _MAX_API_VERSION):
        raise bad_field("api-version", f"expected a version string such as '2024-10-21', got {version[:80]!r}")
    deployment = request.path_params.get("deployment")
    if deployment is None or not isinstance(body, Mapping):
        return body, ()
    if not deployment.strip("/"):
        raise bad_field("deployment", "the URL names no deployment: expected /openai/deployments/<name>/...")
    given = body.get("model")
    warnings: tuple[str, ...] = ()
    if given is not None and given != deployment:
        # Azure answers with the deployment's model whatever the body says; so does this server, out loud
        shown = repr(given if isinstance(given, str) else type(given).__name__)[:100]
        warnings = (f"model {shown} in the body was replaced by the deployment {deployment!r} in the URL",)
    return {**body, "model": deployment}, warnings
