"""What `import tlm_hooks` loads: the hook machinery, no SDK, no engine, no remote backend.

Asserted on the modules a fresh interpreter has after the import (not on timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# loaded on first use only: each pulls in SDKs, judge backends or heavy dependencies
LAZY = (
    "tlm_hooks.scorers.tlm",
    "tlm_hooks.tlm",
    "tlm_hooks.backends",
    # tlm_hooks.llm.usage (the per-score meter) is on the score path; the judge backends are not
    "tlm_hooks.llm.openai_compat",
    "tlm_hooks.llm.litellm_backend",
    "tlm_hooks.llm.local",
    "tlm_hooks.llm.azure_inference",
    "tlm_hooks.llm.resolve",
    "tlm_hooks.local",
    "tlm_hooks.rag",
    "tlm_hooks.datasets",
    "tlm_hooks.calibration",
    "tlm_hooks.server",
    "tlm_hooks.adapters.openai",
    "tlm_hooks.adapters.azure",
    "tlm_hooks.integrations.llamaindex",
    "tlm_hooks.integrations.mlflow",
    "tlm_hooks.integrations.phoenix",
)
# standard-library and wrapper modules the hook machinery loads on first use (the first patch, a
# decorated function, a score), not at import: each costs milliseconds an app that only imports pays for
HEAVY = ("asyncio", "ssl", "socket", "concurrent.futures", "sqlite3", "wrapt", "importlib.metadata")
# the hook machinery: it loads the modules above
MACHINERY = ("tlm_hooks.hooks.pipeline", "tlm_hooks.hooks.streams", "tlm_hooks.hooks.raw", "tlm_hooks.hooks.deadline")
SDKS = ("openai", "azure", "llama_index", "litellm", "httpx", "httpx2", "mlflow", "opentelemetry", "llama_cpp", "numpy", "pydantic")


def _loaded_after(code: str) -> list[str]:
    script = f"import sys, json; {code}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT, timeout=120
    ).stdout
    loaded: list[str] = json.loads(out.strip().splitlines()[-1])
    return loaded


def test_import_loads_no_sdk_engine_or_backend() -> None:
    loaded = _loaded_after("import tlm_hooks")
    assert "tlm_hooks.hooks.api" in loaded and "tlm_hooks.hooks.families" in loaded
    assert [m for m in loaded if m.split(".")[0] in SDKS] == []
    assert [m for m in loaded if any(m == lazy or m.startswith(lazy + ".") for lazy in LAZY)] == []


def test_the_lazy_names_load_when_used() -> None:
    loaded = _loaded_after("import tlm_hooks; tlm_hooks.TLMScorer; tlm_hooks.CleanlabTLM; tlm_hooks.TLM")
    assert {"tlm_hooks.scorers.tlm", "tlm_hooks.backends.cleanlab", "tlm_hooks.tlm"} <= set(loaded)
    assert "openai" not in loaded  # the engine imports a judge SDK only when a judge is built


def test_patch_imports_only_the_sdk_of_the_client_it_is_given() -> None:
    loaded = _loaded_after("import openai, tlm_hooks; tlm_hooks.patch(openai.OpenAI(api_key='k'))")
    assert "tlm_hooks.adapters.openai" in loaded
    assert [m for m in loaded if m.split(".")[0] in ("azure", "llama_index", "litellm")] == []


def test_import_loads_no_event_loop_thread_pool_cache_or_wrapt() -> None:
    loaded = set(_loaded_after("import tlm_hooks"))
    assert sorted(loaded & set(HEAVY)) == []
    assert sorted(loaded & set(MACHINERY)) == []
    assert {"tlm_hooks.fallbacks", "tlm_hooks.decorators", "tlm_hooks.workflows"} <= loaded  # public, and light


def test_the_machinery_loads_with_the_first_patch() -> None:
    loaded = set(_loaded_after("import openai, tlm_hooks; tlm_hooks.patch(openai.OpenAI(api_key='k'))"))
    assert {"wrapt", "tlm_hooks.hooks.pipeline", "tlm_hooks.hooks.deadline"} <= loaded


def test_a_decorator_loads_the_machinery_but_no_sdk() -> None:
    loaded = set(_loaded_after("import tlm_hooks; tlm_hooks.trust_scored()(lambda prompt: 'answer')"))
    assert "tlm_hooks.hooks.pipeline" in loaded
    assert [m for m in loaded if m.split(".")[0] in SDKS] == []
