"""litellm is imported only when the app passes it, or calls patch_all() with it installed."""

from __future__ import annotations

import os
import subprocess
import sys


def _run(code: str) -> str:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_hooking_other_sdks_does_not_import_litellm() -> None:
    code = (
        "import sys, openai, tlm_hooks\n"
        "import tlm_hooks.integrations.litellm, tlm_hooks.integrations.litellm.patching\n"
        "client = openai.OpenAI(api_key='k', base_url='http://127.0.0.1:9/v1')\n"
        "tlm_hooks.patch(client); tlm_hooks.is_patched(object()); tlm_hooks.unpatch(client)\n"
        "tlm_hooks.patch_all(sdks=('openai',)); tlm_hooks.unpatch_all()\n"
        "print('litellm' in sys.modules)"
    )
    assert _run(code) == "False"


def test_patch_all_hooks_an_installed_litellm() -> None:
    code = (
        "import sys, tlm_hooks\n"
        "tlm_hooks.patch_all()\n"
        "import litellm\n"
        "print(tlm_hooks.is_patched(litellm), type(litellm.completion).__name__)\n"
        "tlm_hooks.unpatch_all()\n"
        "print(tlm_hooks.is_patched(litellm), type(litellm.completion).__name__)"
    )
    assert _run(code).splitlines() == ["True FunctionWrapper", "False function"]
