"""`tlm-hooks serve` as a real subprocess on a free loopback port, for tests that drive it with real clients."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from types import TracebackType

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``tlm-hooks serve ARGS`` with ``env`` added; ``base_url`` once ``/health`` answers.

    Stopped with SIGTERM (a background job may inherit SIGINT as ignored), killed if it
    does not exit within 30 s. Its output goes to a file, read by ``output()``.
    """

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None, startup_timeout: float = 180) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile(mode="w+")
        command = [sys.executable, "-m", "tlm_hooks.cli", "serve", "--port", str(self.port), *args]
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
        )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"tlm-hooks serve exited early:\n{self.output()}")
            try:
                health = httpx.get(f"{self.base_url}/health", timeout=1)
                if health.status_code == 200:
                    self.served_model: str = health.json()["model"]
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError(f"tlm-hooks serve did not come up within {startup_timeout:g}s:\n{self.output()}")

    def warm_up(self, messages: list[dict[str, str]], headers: dict[str, str]) -> None:
        """One throwaway completion of ``messages``: the embedded model's greedy answer to a prompt
        it has not seen yet can differ from its answer once the prompt is in its cache, and
        tests compare answers across calls."""
        body = {"messages": messages, "max_tokens": 4}
        reply = httpx.post(f"{self.base_url}/v1/chat/completions", json=body, headers=headers, timeout=300)
        assert reply.status_code == 200, reply.text

    def output(self) -> str:
        """Everything the server printed so far."""
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()  # output() still works afterwards
