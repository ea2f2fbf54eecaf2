"""`tlm-hooks serve`: flags, environment, and the real command run as a subprocess (stopped with SIGINT).

The subprocesses start with SIGINT ignored, as a background job (``cmd &``, ``nohup``) would
inherit it: the server must still stop on SIGINT, and these tests pass however pytest is launched.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from fake_openai import FakeOpenAI, Reply

from tlm_hooks.cli import main as cli_main
from tlm_hooks.server.serve import KeyConfigError, api_keys, build_parser


def test_defaults_bind_loopback() -> None:
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.model, args.api_key) == ("127.0.0.1", 8080, "local", [])
    assert (args.max_concurrency, args.max_queue, args.timeout) == (4, 32, 120.0)


@pytest.mark.parametrize("flag", ["--max-concurrency=0", "--max-queue=-1", "--timeout=0", "--max-body-bytes=0"])
def test_bad_limits_are_refused(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([flag])
    assert flag.split("=")[0] in capsys.readouterr().err


def test_keys_from_flags_file_and_environment(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# ops keys\nf1\n\n  f2  \n")
    assert api_keys(["a1", "b2"], environ={"TLM_HOOKS_API_KEYS": " c3, ,a1"}) == ["a1", "b2", "c3"]
    assert api_keys([], [str(keys)], environ={}) == ["f1", "f2"]
    assert api_keys([], no_auth=True, environ={}) is None


@pytest.mark.parametrize(
    ("flags", "files", "no_auth", "environ", "named"),
    [
        ([""], [], False, {}, "--api-key"),  # --api-key "$UNSET_VARIABLE"
        (["  "], [], False, {"TLM_HOOKS_API_KEYS": "k"}, "--api-key"),
        ([], [], False, {"TLM_HOOKS_API_KEYS": ","}, "TLM_HOOKS_API_KEYS"),
        ([], [], False, {"TLM_HOOKS_API_KEYS": ""}, "TLM_HOOKS_API_KEYS"),
        ([], ["EMPTY"], False, {}, "--api-key-file"),
        ([], ["/nonexistent/keys"], False, {}, "--api-key-file"),
        ([], [], False, {}, "--no-auth"),  # nothing at all: say how to choose
        (["k"], [], True, {}, "--no-auth"),
        ([], [], True, {"TLM_HOOKS_API_KEYS": ","}, "TLM_HOOKS_API_KEYS"),
    ],
)
def test_a_key_source_that_gives_nothing_is_an_error(
    flags: list[str], files: list[str], no_auth: bool, environ: dict[str, str], named: str, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("# no key yet\n\n")
    files = [str(empty) if f == "EMPTY" else f for f in files]
    with pytest.raises(KeyConfigError, match=named):
        api_keys(flags, files, no_auth=no_auth, environ=environ)


def test_serve_refuses_to_start_without_a_key_choice() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TLM_HOOKS_API_KEYS"}
    for args, env_extra, named in (
        ([], {}, "--no-auth"),
        (["--api-key", ""], {}, "--api-key"),
        ([], {"TLM_HOOKS_API_KEYS": ","}, "TLM_HOOKS_API_KEYS"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "tlm_hooks.cli", "serve", "--model", "http://127.0.0.1:9/v1", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, **env_extra},
        )
        assert result.returncode == 2 and named in result.stderr, result.stderr


def test_cli_lists_serve(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--help"]) == 0
    assert "serve" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_background_job() -> None:
    """In the child: SIGINT ignored, as a shell's background job or nohup leaves it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _serve(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    command = [sys.executable, "-m", "tlm_hooks.cli", "serve", "--port", str(port), *args]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=_as_background_job,
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


def _stop(process: subprocess.Popen[str], signum: int = signal.SIGINT, within: float = 30) -> str:
    process.send_signal(signum)
    try:
        output, _ = process.communicate(timeout=within)
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
        # planted keys: in a query string (access log), and echoed by the upstream in an error
        # the engine logs (every judge call fails; a plain string response has no logprobs)
        planted = "planted-QUERY-key-555"
        assert httpx.post(f"{base}/v1/chat/completions?api-key={planted}", json=body, timeout=30).status_code == 401
        fake.default = Reply(status=400, error_param=f"Authorization: Bearer {upstream_key} api-key: {server_key}")
        scored = httpx.post(
            f"{base}/api/v0/trustworthy_llm/get_confidence_score",
            json={"prompt": "2+2?", "response": "4", "quality": "low"},
            headers={"api-key": "sk-second-key"},
            timeout=60,
        )
        assert scored.status_code == 200 and scored.json()["confidence_score"] is None
    finally:
        output = _stop(process, signum)
    assert "Shutting down" in output or "Finished server process" in output
    assert "scripted failure" in output and "/v1/chat/completions" in output  # the lines were logged...
    assert upstream_key not in output and server_key not in output and planted not in output  # ...scrubbed


def test_sigint_cuts_a_long_request_off_with_a_json_503_within_30s(fake: FakeOpenAI) -> None:
    fake.default = Reply(delay=40)  # the upstream takes longer than the shutdown may
    process, base = _serve(["--model", fake.url, "--timeout", "100", "--no-auth"])
    replies: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: replies.append(
            httpx.post(
                f"{base}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                timeout=90,
            )
        )
    )
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not fake.requests and not replies and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake.requests, f"the request never reached the upstream: {[r.text for r in replies]}"
        started = time.monotonic()
        _stop(process, signal.SIGINT, within=40)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    thread.join(10)
    assert took <= 30, f"shutdown took {took:.1f}s"
    [reply] = replies
    assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
    assert reply.json()["error"]["code"] == "shutting_down"


def test_serve_refuses_a_missing_model_file(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tlm_hooks.cli", "serve", "--model", "/nonexistent/model.gguf", "--no-auth"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "TLM_HOOKS_API_KEYS"},
    )
    assert result.returncode == 2 and "cannot load --model" in result.stderr


@pytest.mark.embedded_model
def test_serve_subprocess_with_the_embedded_model() -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra [local])")
    process, base = _serve([], env={"TLM_HOOKS_API_KEYS": "sk-embedded-cli"})
    try:
        body = {"messages": [{"role": "user", "content": "What is 2+2?"}], "max_tokens": 16}
        headers = {"authorization": "Bearer sk-embedded-cli"}
        reply = httpx.post(f"{base}/v1/chat/completions", json=body, headers=headers, timeout=120)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"]
        assert 0 <= reply.json()["tlm_metadata"]["trustworthiness_score"] <= 1
    finally:
        _stop(process)
