"""Two `tlm-hooks serve` replicas behind a real nginx on loopback; one is killed (SIGKILL) under load.

Counted: every request gets an HTTP reply (none lost), each is answered (200) or refused with a
retriable status carrying ``Retry-After``, both replicas serve before the kill and the survivor
serves everything after it. nginx comes from the OS packages (``make test`` installs it when it
can); without it the test is skipped and says so. The replicas generate on a scripted
OpenAI-compatible upstream with a fixed latency, so the load is in flight when the kill lands.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fake_openai import FakeOpenAI, Reply
from prometheus_client.parser import text_string_to_metric_families
from serve_process import ServeProcess

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install nginx; `make test` does it when run as root)"
)

KEY = "sk-replicas-3e8b"
QUESTION = [{"role": "user", "content": "What is 2+2?"}]
REQUESTS = 150
CLIENTS = 8  # concurrent clients: the bounded load
KILL_AFTER = 50  # replies received before one replica is killed
UPSTREAM_SECONDS = 0.15  # each generation takes this long upstream


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_config(tmp: Path, port: int, replicas: list[str]) -> str:
    """A foreground nginx balancing ``replicas`` (host:port): a refused connection, a reset and a 503
    go to the next replica; when none is left nginx answers 503 with ``Retry-After`` itself."""
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""  # workers keep our tmp access
    servers = "\n".join(f"        server {address} max_fails=3 fail_timeout=10s;" for address in replicas)
    return f"""
daemon off;
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream tlm_hooks {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://tlm_hooks;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
            # scoring has no side effects: a POST cut off by a dying replica is safe to send again
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 2;
            add_header X-Upstream $upstream_addr always;
        }}
        error_page 502 504 = @unavailable;
        location @unavailable {{
            add_header Retry-After 1 always;
            add_header X-Upstream $upstream_addr always;
            default_type application/json;
            return 503 '{{"error": {{"message": "no replica could answer; retry", "type": "server_error", "code": "no_replica"}}}}';
        }}
    }}
}}
"""


class Nginx:
    """nginx in the foreground with ``config``, a child of the test; stopped with SIGQUIT, then killed."""

    def __init__(self, tmp: Path, config: str, port: int) -> None:
        assert NGINX is not None
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "nginx.conf").write_text(config)
        self.tmp, self.base_url = tmp, f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [NGINX, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(tmp / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited at start:\n{self.errors()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"nginx did not answer within 20 s:\n{self.errors()}")

    def errors(self) -> str:
        path = self.tmp / "error.log"
        return path.read_text() if path.exists() else ""

    def access_lines(self) -> list[str]:
        return (self.tmp / "access.log").read_text().splitlines()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(3)  # SIGQUIT: graceful stop
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass(frozen=True)
class Outcome:
    index: int
    status: int | None  # None: no HTTP reply at all (a lost request)
    retry_after: str | None
    upstream: str  # the replica(s) nginx tried, as "host:port[, host:port]"
    after_kill: bool
    error: str = ""


def _requests_answered(metrics_text: str, route: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "tlm_hooks_requests_total" and sample.labels.get("route") == route:
                if sample.labels.get("status") == "200":
                    total += sample.value
    return total


def test_two_replicas_behind_nginx_survive_losing_one(tmp_path: Path) -> None:
    upstream = FakeOpenAI()
    upstream.default = Reply(delay=UPSTREAM_SECONDS)
    args = ["--model", upstream.url, "--upstream-model", "m", "--max-concurrency", "4", "--max-queue", "4"]
    env = {"TLM_HOOKS_API_KEYS": KEY}
    replicas: list[ServeProcess] = []
    nginx: Nginx | None = None
    try:
        replicas = [ServeProcess([*args, "--metrics", "public"], env=env) for _ in range(2)]
        addresses = [f"127.0.0.1:{replica.port}" for replica in replicas]
        port = _free_port()
        nginx = Nginx(tmp_path / "nginx", nginx_config(tmp_path / "nginx", port, addresses), port)
        victim, survivor = replicas
        killed = threading.Event()
        enough = threading.Event()
        done_lock = threading.Lock()
        done = 0

        def call(index: int, http: httpx.Client) -> Outcome:
            nonlocal done
            body = {"messages": QUESTION, "logprobs": True}
            after_kill = killed.is_set()
            try:
                reply = http.post("/v1/chat/completions", json=body)
            except httpx.HTTPError as exc:
                return Outcome(index, None, None, "", after_kill, f"{type(exc).__name__}: {exc}")
            finally:
                with done_lock:
                    done += 1
                    if done >= KILL_AFTER:
                        enough.set()
            if reply.status_code == 200:  # an answer is a scored answer
                assert reply.json()["tlm_metadata"]["trustworthiness_score"] is not None
            return Outcome(
                index,
                reply.status_code,
                reply.headers.get("retry-after"),
                reply.headers.get("x-upstream", ""),
                after_kill,
            )

        headers = {"Authorization": f"Bearer {KEY}"}
        started = time.monotonic()
        with (
            httpx.Client(base_url=nginx.base_url, headers=headers, timeout=60) as http,
            ThreadPoolExecutor(CLIENTS) as pool,
        ):
            futures = [pool.submit(call, i, http) for i in range(REQUESTS)]
            assert enough.wait(120), "the load did not get going"
            victim.process.kill()  # SIGKILL: no draining, connections reset mid-request
            victim.process.wait(timeout=10)
            killed.set()
            outcomes = [future.result(timeout=120) for future in futures]
        took = time.monotonic() - started
        survivor_metrics = httpx.get(f"{survivor.base_url}/metrics", timeout=10).text

        statuses = Counter(o.status for o in outcomes)
        print(
            f"\n{REQUESTS} requests through nginx, {CLIENTS} clients, one of 2 replicas SIGKILLed after "
            f"{KILL_AFTER} replies: {dict(statuses)} in {took:.2f}s; "
            f"retried on the other replica: {sum(',' in o.upstream for o in outcomes)}"
        )
        lost = [o for o in outcomes if o.status is None]
        assert not lost, f"requests without any reply: {lost[:5]}"
        posts = [line for line in nginx.access_lines() if '"POST /v1/chat/completions ' in line]
        assert len(outcomes) == REQUESTS and len(posts) == REQUESTS  # nginx saw each one once
        for o in outcomes:
            retriable = o.status in (502, 503) and o.retry_after is not None
            assert o.status == 200 or retriable, o
        answered = [o for o in outcomes if o.status == 200]
        final = Counter(o.upstream.split(", ")[-1] for o in answered)
        assert set(final) == set(addresses), f"both replicas served: {final}"
        survivor_address = addresses[1]
        late = [o for o in outcomes if o.after_kill]
        assert late, "no request was sent after the kill"
        assert any(o.status == 200 for o in late)
        assert all(o.upstream.split(", ")[-1] == survivor_address for o in late if o.status == 200), late
        assert survivor.process.poll() is None
        # the survivor counted exactly the answers it gave
        assert _requests_answered(survivor_metrics, "/v1/chat/completions") == final[survivor_address]
        # the survivor still answers on its own once the load is over
        after = httpx.post(f"{nginx.base_url}/v1/chat/completions", json={"messages": QUESTION}, headers=headers)
        assert after.status_code == 200 and after.headers["x-upstream"].split(", ")[-1] == survivor_address
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            replica.stop()
        upstream.close()
