"""`tlm-hooks serve`: flags, environment, and the real command run as a subprocess (stopped with SIGINT)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

import httpx
import pytest
from fake_openai import FakeOpenAI

from tlm_hooks.cli import main as cli_main
from tlm_hooks.server.serve import api_keys, build_parser


def test_defaults_bind_loopback() -> None:
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.model, args.api_key) == ("127.0.0.1", 8080, "local", [])
    assert (args.max_concurrency, args.max_queue, args.timeout) == (4, 32, 120.0)


@pytest.mark.parametrize("flag", ["--max-concurrency=0", "--max-queue=-1", "--timeout=0", "--max-body-bytes=0"])
def test_bad_limits_are_refused(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([flag])
    assert flag.split("=")[0] in capsys.readouterr().err


def test_keys_from_flags_and_environment() -> None:
    assert api_keys([], {}) is None
    assert api_keys(["a1", "b2"], {"TLM_HOOKS_API_KEYS": " c3, ,a1"}) == ["a1", "b2", "c3"]


def test_cli_lists_serve(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--help"]) == 0
    assert "serve" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    command = [sys.executable, "-m", "tlm_hooks.cli", "serve", "--port", str(port), *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early: {process.communicate()[0]}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("serve did not come up within 90s")


def _stop(process: subprocess.Popen[str], signum: int = signal.SIGINT) -> str:
    process.send_signal(signum)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, output
    return output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_subprocess_with_an_upstream_model(fake: FakeOpenAI, signum: int) -> None:
    upstream_key, server_key = "sk-upstream-SUBPROCESS-1", "sk-server-SUBPROCESS-2"
    process, base = _serve(
        ["--model", fake.url, "--upstream-model", "served", "--api-key", server_key],
        env={"TLM_HOOKS_UPSTREAM_API_KEY": upstream_key, "TLM_HOOKS_API_KEYS": "sk-second-key"},
    )
    try:
        body = {"messages": [{"role": "user", "content": "hi"}], "quality_preset": "base"}
        reply = httpx.post(f"{base}/api/chat/completions", json=body, headers={"api-key": "sk-second-key"}, timeout=30)
        assert reply.status_code == 200 and reply.json()["tlm_metadata"]["trustworthiness_score"] > 0
        assert fake.requests[-1].headers["authorization"] == f"Bearer {upstream_key}"
        assert fake.requests[-1].body["model"] == "served"
        assert httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30).status_code == 401
    finally:
        output = _stop(process, signum)
    assert "Shutting down" in output or "Finished server process" in output
    assert upstream_key not in output and server_key not in output


def test_serve_refuses_a_missing_model_file(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tlm_hooks.cli", "serve", "--model", "/nonexistent/model.gguf"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "cannot load --model" in result.stderr


@pytest.mark.embedded_model
def test_serve_subprocess_with_the_embedded_model() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    process, base = _serve(["--api-key", "sk-embedded-cli"])
    try:
        body = {"messages": [{"role": "user", "content": "What is 2+2?"}], "max_tokens": 16}
        headers = {"authorization": "Bearer sk-embedded-cli"}
        reply = httpx.post(f"{base}/v1/chat/completions", json=body, headers=headers, timeout=120)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"]
        assert 0 <= reply.json()["tlm_metadata"]["trustworthiness_score"] <= 1
    finally:
        _stop(process)
