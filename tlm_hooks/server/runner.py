"""Serving with uvicorn: ``server_config`` (read timeouts, graceful shutdown) and ``ServerThread``,
which serves an app on a loopback port from a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any

from ..errors import MissingDependencyError

try:
    import uvicorn
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("the server needs starlette and uvicorn: pip install 'tlm-hooks[server]'") from exc

__all__ = ["ServerThread", "server_config", "DEFAULT_READ_TIMEOUT"]

DEFAULT_READ_TIMEOUT = 30.0
_KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open (uvicorn's default)


def _header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers have not all arrived
    ``seconds`` after it opened (or after its previous response): uvicorn bounds only idle time."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = None
            if not self.transport.is_closing():
                self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            waiting_for_headers = self.cycle is None or self.cycle.response_complete
            if waiting_for_headers and not self.transport.is_closing():
                self.transport.close()

    return HeaderTimeoutH11Protocol


def server_config(app: Any, *, graceful_shutdown: float, **kwargs: Any) -> uvicorn.Config:
    """A uvicorn ``Config`` for ``app`` that bounds slow clients: request headers must arrive
    within the app's ``limits.read_timeout`` (``DEFAULT_READ_TIMEOUT`` for other apps), idle
    keep-alive connections close after 5 s, and shutdown waits ``graceful_shutdown`` seconds."""
    limits = getattr(getattr(app, "state", None), "limits", None)
    read_timeout = float(getattr(limits, "read_timeout", DEFAULT_READ_TIMEOUT))
    return uvicorn.Config(
        app,
        http=_header_timeout_protocol(read_timeout),
        timeout_keep_alive=max(1, min(_KEEP_ALIVE, int(read_timeout))),
        timeout_graceful_shutdown=max(1, round(graceful_shutdown)),
        **kwargs,
    )


class ServerThread:
    """Run ``app`` with uvicorn on ``host`` (a free port unless ``port`` is given) in a thread.

    Use as a context manager (or call ``start``/``stop``). ``start`` returns once the port accepts
    connections, or raises ``RuntimeError`` within ``startup_timeout`` seconds; ``stop`` shuts
    down gracefully, cutting open connections after ``shutdown_timeout`` seconds.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 30.0,
        shutdown_timeout: float = 10.0,
        log_level: str = "warning",
    ) -> None:
        self.app = app
        self.host = host
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self._requested_port = port
        self._log_level = log_level
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        """The port being served (only while running)."""
        if self._port is None:
            raise RuntimeError("the server is not running: call start() or use it as a context manager")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ServerThread:
        """Start serving; returns once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("this ServerThread was already started")
        # Binding here (not in uvicorn) means port 0 gives a free port with no pick-then-bind race.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self._socket = sock
        self._port = sock.getsockname()[1]
        config = server_config(
            self.app,
            graceful_shutdown=self.shutdown_timeout,
            log_config=None,
            log_level=self._log_level,
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name=f"tlm-hooks-server-{self._port}", daemon=True)
        self._thread.start()
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Shut down (bounded by ``shutdown_timeout``); safe to call more than once."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None and thread.is_alive():
            draining = getattr(getattr(self.app, "state", None), "draining", None)
            if draining is not None:  # requests in flight get a 503 before uvicorn cuts them off
                draining.begin(max(0.0, self.shutdown_timeout - 1))
            server.should_exit = True
            thread.join(self.shutdown_timeout + 2)
            if thread.is_alive():
                server.force_exit = True
                thread.join(2)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._port = None
        if thread is not None and thread.is_alive():
            raise RuntimeError(f"the server thread did not stop within {self.shutdown_timeout + 4:g}s")

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"serving {self.base_url}" if self.running and self._port else "stopped"
        return f"ServerThread({state})"

    def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by start(); uvicorn may raise SystemExit
            self._error = exc

    def _wait_until_ready(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                detail = f": {type(self._error).__name__}: {self._error}" if self._error else ""
                raise RuntimeError(f"uvicorn exited during startup{detail}")
            if self._server.started and self._accepts_connections():
                return
            time.sleep(0.02)
        raise RuntimeError(
            f"uvicorn did not accept connections on {self.host}:{self._port} within {self.startup_timeout:g}s"
        )

    def _accepts_connections(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0):
                return True
        except OSError:
            return False
