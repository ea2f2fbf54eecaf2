"""A newcomer's first steps, scripted: a fresh venv with only ``pip install 'tlm-hooks[openai]'``
(from this checkout), then the README's quickstart exactly as written, against ``tlm-hooks serve``
on the embedded model (reached through ``OPENAI_BASE_URL``/``OPENAI_API_KEY``, which the quickstart's
``OpenAI()`` reads). The examples, with the line the README promises for each, are run by
tests/test_demo_and_examples.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.embedded_model, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]


def quickstart() -> str:
    """The first python block under the README's "## Quickstart" heading."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Quickstart\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "README.md has no python block under '## Quickstart'"
    return match.group(1)


def test_the_quickstart_is_the_readme_s_first_python_and_imports_what_it_uses() -> None:
    code = quickstart()
    text = (ROOT / "README.md").read_text()
    assert text.index(code) < text.index("```python\n", text.index(code) + 1)
    assert "from tlm_hooks import TrustPolicy, fallbacks" in code and "quality_preset=" in code
    compile(code, "quickstart", "exec")


@pytest.fixture(scope="module")
def fresh_venv() -> Iterator[Path]:
    """A venv holding ``tlm-hooks[openai]`` built from a copy of this checkout's sources."""
    with tempfile.TemporaryDirectory(prefix="tlm-newcomer-") as folder:
        where = Path(folder)
        source = where / "src"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, source / name)
        shutil.copytree(ROOT / "tlm_hooks", source / "tlm_hooks", ignore=shutil.ignore_patterns("__pycache__"))
        venv.EnvBuilder(with_pip=True).create(where / "venv")
        python = where / "venv" / "bin" / "python"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")}
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{source}[openai]"],
            capture_output=True, text=True, env=env, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        yield python


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Path]]:
    """``tlm-hooks serve`` on the embedded model, as plain an OpenAI-compatible server as OpenAI's
    (``--no-score``: the quickstart's own hook does the scoring); yields its URL and log file."""
    port = _free_port()
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    out = open(log_path, "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "tlm_hooks.cli", "serve", "-p", str(port), "--no-score", "--no-auth"],
        stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise AssertionError(f"tlm-hooks serve did not come up:\n{log_path.read_text()}")
        yield base, log_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        out.close()
        log_path.unlink(missing_ok=True)


def test_readme_quickstart_runs_unchanged_in_a_fresh_venv(
    fresh_venv: Path, server: tuple[str, Path], tmp_path: Path
) -> None:
    base, log = server
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "OPENAI_", "TLM_HOOKS_"))}
    env.update(OPENAI_BASE_URL=f"{base}/v1", OPENAI_API_KEY="sk-newcomer")
    calls_before = log.read_text().count("POST /v1/chat/completions")
    started = time.monotonic()
    done = subprocess.run(
        [str(fresh_venv), str(script)], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    answer = re.search(r"^answer: (.+)$", done.stdout, re.MULTILINE)
    score = re.search(r"^trustworthiness_score: ([0-9.]+)$", done.stdout, re.MULTILINE)
    assert answer is not None and score is not None, done.stdout
    assert 0.0 <= float(score.group(1)) <= 1.0
    # the open engine ran: besides the app's own call, the hook asked the judge (the same server)
    calls = log.read_text().count("POST /v1/chat/completions") - calls_before
    assert calls >= 2, (calls, log.read_text()[-2000:])
    print(f"quickstart: {seconds:.0f}s, {calls} chat calls (1 app + {calls - 1} judge)")
