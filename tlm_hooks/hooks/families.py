"""The families tlm-hooks can hook, in the order ``patch()`` asks them. Adding an SDK: an
adapter module that declares its ``TARGETS`` (or a module with a family object of its own),
plus one line here. Nothing here imports an SDK; each family loads its modules on first use."""

from __future__ import annotations

from .family import HookFamily, LazyFamily
from .patcher import TableFamily

__all__ = ["FAMILIES", "family_named"]

FAMILIES: tuple[HookFamily, ...] = (
    TableFamily(
        "openai",
        ("tlm_hooks.adapters.openai", "tlm_hooks.adapters.openai_responses"),
        modules=("openai",),
        supported="an OpenAI, AsyncOpenAI, AzureOpenAI or AsyncAzureOpenAI client",
    ),
    TableFamily(
        "azure",
        ("tlm_hooks.adapters.azure",),
        modules=("azure.ai.inference",),
        supported="an azure.ai.inference ChatCompletionsClient (sync or aio)",
    ),
    LazyFamily(
        "llamaindex",
        "tlm_hooks.integrations.llamaindex.patching:FAMILY",
        modules=("llama_index.core",),
        supported="a LlamaIndex LLM (instance or class)",
        in_patch_all=False,  # patch(llama_index.core.llms.LLM) hooks them all; opt in with sdks=
    ),
    LazyFamily(
        "litellm",
        "tlm_hooks.integrations.litellm.patching:FAMILY",
        modules=("litellm",),
        supported="the litellm module or a litellm.Router",
    ),
)


def family_named(name: str) -> HookFamily | None:
    """The family called ``name`` (``"openai"``, ``"azure"``, ``"llamaindex"``, ``"litellm"``), else None."""
    for family in FAMILIES:
        if family.name == name:
            return family
    return None
