"""`tlm-hooks serve --model-alias / --strict-models`: parsed, checked at startup, and honoured by
the real command run as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import httpx
import pytest
from fake_openai import FakeOpenAI

from tlm_hooks.server.serve import build_parser

QUESTION = [{"role": "user", "content": "What is 2+2?"}]


def test_alias_and_strict_flags_parse() -> None:
    args = build_parser().parse_args(
        ["--model-alias", "gpt-4.1-mini=local", "--model-alias", " a = b ", "--strict-models"]
    )
    assert args.model_alias == [("gpt-4.1-mini", "local"), ("a", "b")] and args.strict_models
    defaults = build_parser().parse_args([])
    assert defaults.model_alias == [] and not defaults.strict_models


@pytest.mark.parametrize("value", ["gpt-4.1-mini", "=local", "gpt-4.1-mini="])
def test_a_malformed_alias_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model-alias", value])
    assert "NAME=TARGET" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(port: int, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "tlm_hooks.cli", "serve", "--port", str(port), *args]


@pytest.fixture
def serve(fake: FakeOpenAI) -> Iterator[Callable[[Sequence[str]], str]]:
    started: list[subprocess.Popen[str]] = []

    def start(args: Sequence[str]) -> str:
        port = _free_port()
        process = subprocess.Popen(
            _command(port, ["--model", fake.url, *args]),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ),
            # it is stopped with SIGINT: the child must not inherit SIGINT as ignored (nohup, `make test &`)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve exited early: {process.communicate()[0]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    return base
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("serve did not come up within 60s")

    yield start
    for process in started:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_real_server_substitutes_aliases_and_refuses_when_strict(
    serve: Callable[[Sequence[str]], str], fake: FakeOpenAI
) -> None:
    base = serve(["--upstream-model", "served", "--model-alias", "gpt-4.1-mini=served", "--api-key", "sk-flags-1"])
    headers = {"authorization": "Bearer sk-flags-1"}
    body = {"messages": QUESTION, "quality_preset": "base", "options": {"model": "gpt-4o-mini"}}
    reply = httpx.post(f"{base}/api/chat/completions", json=body, headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-tlm-hooks-model"] == "served" and fake.requests[-1].body["model"] == "served"
    assert reply.json()["tlm_metadata"]["log"]["warnings"] == [
        "options.model 'gpt-4o-mini' is not served here; answered by 'served'"
    ]
    aliased = httpx.post(
        f"{base}/api/chat/completions", json={**body, "options": {"model": "gpt-4.1-mini"}}, headers=headers, timeout=30
    )
    assert aliased.status_code == 200 and "--model-alias" in aliased.json()["tlm_metadata"]["log"]["warnings"][0]

    strict = serve(["--upstream-model", "served", "--strict-models", "--api-key", "sk-flags-1"])
    seen = len(fake.requests)
    refused = httpx.post(f"{strict}/api/chat/completions", json=body, headers=headers, timeout=30)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "options.model"
    assert len(fake.requests) == seen


def test_serve_refuses_an_alias_to_a_model_it_cannot_serve(fake: FakeOpenAI) -> None:
    result = subprocess.run(
        _command(_free_port(), ["--model", fake.url, "--upstream-model", "served", "--model-alias", "a=elsewhere"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--model-alias a=elsewhere" in result.stderr
