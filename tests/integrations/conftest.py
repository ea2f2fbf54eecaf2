"""Real local MLflow and Phoenix servers (subprocesses on loopback, stores in a temp dir),
started once per session and only when a test asks for them.

Both run offline: telemetry is off, and their outbound HTTP(S) is sent through a proxy that
is a local trap recording every connection attempt (loopback is exempt), so a test can check
that the server never tried to reach the internet. The servers the selected tests need are
launched together right after collection (their startups overlap); startup times are printed
at the end.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

STARTUP_TIMEOUT = float(os.environ.get("TLM_HOOKS_TEST_SERVER_TIMEOUT", "180"))
STARTUP_TIMES: dict[str, float] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProxyTrap:
    """A loopback TCP listener used as HTTP(S)_PROXY: counts connection attempts, answers none."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.attempts: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    self.attempts.append(conn.recv(200))  # e.g. b"CONNECT pypi.org:443 ..."
                except OSError:
                    self.attempts.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@dataclass
class ServerProcess:
    """A server subprocess in its own process group (it may start workers); ``wait`` blocks
    until its health URL answers."""

    name: str
    url: str
    health_url: str
    process: subprocess.Popen[bytes]
    root: Path
    trap: ProxyTrap
    started: float = field(default_factory=time.perf_counter)
    startup_seconds: float | None = None
    last_answer: str = "nothing yet"  # what the health URL last answered, for a failed start
    _ready: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    def watch(self) -> None:
        """Poll the health URL in the background and note when it first answers."""
        threading.Thread(target=self._poll, name=f"{self.name}-health", daemon=True).start()

    def _poll(self) -> None:
        deadline = self.started + STARTUP_TIMEOUT
        while self.process.poll() is None and time.perf_counter() < deadline:
            try:
                status = httpx.get(self.health_url, timeout=2.0).status_code
                self.last_answer = f"HTTP {status}"
                if status == 200:
                    self.startup_seconds = time.perf_counter() - self.started
                    STARTUP_TIMES[self.name] = self.startup_seconds
                    break
            except httpx.HTTPError as exc:
                self.last_answer = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        self._ready.set()

    def wait(self) -> ServerProcess:
        self._ready.wait(STARTUP_TIMEOUT + 5)
        if self.startup_seconds is None:
            code = self.process.poll()
            tail = self.log_tail()  # before stop(), which removes the server's directory and its log
            self.stop()
            state = (
                f"exited during startup (code {code})" if code is not None else f"was not ready in {STARTUP_TIMEOUT:g}s"
            )
            pytest.fail(f"{self.name} {state}; its health URL last answered: {self.last_answer}\n{tail}")
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.trap.close()
        shutil.rmtree(self.root, ignore_errors=True)


def offline_env(trap: ProxyTrap, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HTTP_PROXY=trap.url, HTTPS_PROXY=trap.url, ALL_PROXY=trap.url,
        http_proxy=trap.url, https_proxy=trap.url, all_proxy=trap.url,
        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
        MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    env.update(extra)
    return env


def _launch(
    name: str, args: list[str], env: dict[str, str], url: str, health: str, root: Path, trap: ProxyTrap
) -> ServerProcess:
    with (root / "server.log").open("wb") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = ServerProcess(name, url, f"{url}{health}", process, root, trap)
    server.watch()
    return server


def launch_mlflow() -> ServerProcess:
    """``mlflow server`` with a SQLite store, on a free loopback port (no job runner)."""
    root = Path(tempfile.mkdtemp(prefix="tlm-mlflow-"))
    port = free_port()
    trap = ProxyTrap()
    args = [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--default-artifact-root", str(root / "artifacts"),
        "--workers", "1",
    ]  # fmt: skip
    env = offline_env(trap, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    return _launch("mlflow", args, env, f"http://127.0.0.1:{port}", "/health", root, trap)


def launch_phoenix() -> ServerProcess:
    """``phoenix serve`` with its working dir (SQLite) in a temp dir, free HTTP and gRPC ports."""
    root = Path(tempfile.mkdtemp(prefix="tlm-phoenix-"))
    port, grpc_port = free_port(), free_port()
    trap = ProxyTrap()
    env = offline_env(
        trap,
        PHOENIX_WORKING_DIR=str(root), PHOENIX_HOST="127.0.0.1", PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port), PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
    )  # fmt: skip
    for key in ("PHOENIX_COLLECTOR_ENDPOINT", "PHOENIX_BASE_URL", "PHOENIX_API_KEY", "PHOENIX_SQL_DATABASE_URL"):
        env.pop(key, None)
    args = [sys.executable, "-m", "phoenix.server.main", "serve"]
    return _launch("phoenix", args, env, f"http://127.0.0.1:{port}", "/healthz", root, trap)


# fixture name -> (module the server needs, launcher)
SERVERS = {"mlflow_server": ("mlflow", launch_mlflow), "phoenix_server": ("phoenix.server.main", launch_phoenix)}
_LAUNCHED: dict[str, ServerProcess] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Launch the servers the selected tests need now, so their startups overlap each other
    and the tests that run first; each fixture waits for its server on first use."""
    wanted = {name for item in session.items for name in SERVERS if name in getattr(item, "fixturenames", ())}
    for name in sorted(wanted):
        module, launch = SERVERS[name]
        if _installed(module) and name not in _LAUNCHED:
            _LAUNCHED[name] = launch()


def _installed(module: str) -> bool:
    """Whether ``module`` (dotted) exists, without importing it or its parent packages."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return spec is not None and not rest
    base = Path(next(iter(spec.submodule_search_locations)), *rest)
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def pytest_sessionfinish(session: pytest.Session) -> None:
    for server in _LAUNCHED.values():
        server.stop()
    _LAUNCHED.clear()


def _server(name: str) -> Iterator[ServerProcess]:
    module, launch = SERVERS[name]
    pytest.importorskip(module, reason=f"{module.split('.')[0]} is not installed")
    server = _LAUNCHED.get(name)
    if server is None:  # not launched at collection (e.g. requested dynamically)
        server = _LAUNCHED[name] = launch()
    yield server.wait()


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[ServerProcess]:
    """A real MLflow tracking server (SQLite store) on loopback."""
    yield from _server("mlflow_server")


@pytest.fixture(scope="session")
def phoenix_server() -> Iterator[ServerProcess]:
    """A real Phoenix server (SQLite working dir) on loopback."""
    yield from _server("phoenix_server")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if STARTUP_TIMES:
        times = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in STARTUP_TIMES.items())
        terminalreporter.write_line(f"tlm-hooks integration servers: launch to ready (started together): {times}")
