"""Bounded load test of `tlm-hooks serve` on loopback, with the embedded model.

    python benchmarks/load.py [--clients 16] [--seconds 30] [--max-concurrency 2] [--max-queue 4] [--threads 1]
    python benchmarks/load.py --compete 1 --threads all,default   # llama.cpp threads vs a busy machine

Starts the server in a subprocess, runs N concurrent clients for a fixed time (each sends one
chat completion after another, honouring Retry-After on 503), then stops the server with SIGINT.
Prints requests/s, p50/p95 latency of answered requests, and counts of: answered 200, refused
503 with Retry-After, timed out 504, and lost (anything else: connection errors, client
timeouts, 503 without Retry-After, other statuses). Lost must be 0; the exit status says so.

``--compete N`` runs N CPU-bound competitor processes (busy loops) for the whole run, as other
jobs on a shared machine would. ``--threads`` takes a comma-separated list (numbers, ``all`` =
every core, ``default`` = the server's default): each setting gets its own server and run, in
the same invocation, and the last table compares them against the first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

KEY = "sk-load-test"  # passed through the environment, not the command line
BODY = {
    "model": "smollm2",
    "messages": [{"role": "user", "content": "Name one colour of the rainbow."}],
    "max_tokens": 16,
    "quality_preset": "base",
}


@dataclass
class Tally:
    """What the clients saw."""

    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # of 200s, seconds
    lost_examples: list[str] = field(default_factory=list)

    def lost(self, why: str) -> None:
        self.outcomes["lost"] += 1
        if len(self.lost_examples) < 5:
            self.lost_examples.append(why)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, args: argparse.Namespace, threads: str) -> subprocess.Popen[bytes]:
    """`tlm-hooks serve` with the embedded model, in a subprocess; returns once /health answers."""
    command = [
        sys.executable, "-m", "tlm_hooks.cli", "serve", "--port", str(port),
        "--max-concurrency", str(args.max_concurrency), "--max-queue", str(args.max_queue),
        "--timeout", str(args.timeout), "--log-level", "warning",
    ]  # fmt: skip
    if threads != "default":
        command += ["--threads", str(os.cpu_count() or 1) if threads == "all" else threads]
    env = {**os.environ, "TLM_HOOKS_API_KEYS": KEY}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start within 120 s")


async def client(http: httpx.AsyncClient, url: str, until: float, tally: Tally) -> None:
    """Send requests back to back until ``until``; a 503 waits its Retry-After first."""
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            response = await http.post(url, json=BODY, headers={"authorization": f"Bearer {KEY}"})
        except httpx.HTTPError as exc:
            tally.lost(f"{type(exc).__name__}: {exc}")
            continue
        took = time.monotonic() - started
        if response.status_code == 200 and "tlm_metadata" in response.json():
            tally.outcomes["ok"] += 1
            tally.latencies.append(took)
        elif response.status_code == 503 and response.headers.get("retry-after"):
            tally.outcomes["refused"] += 1
            await asyncio.sleep(min(float(response.headers["retry-after"]), max(0.0, until - time.monotonic())))
        elif response.status_code == 504:
            tally.outcomes["timeout"] += 1
        else:
            tally.lost(f"HTTP {response.status_code}: {response.text[:200]}")


async def run_clients(port: int, args: argparse.Namespace) -> tuple[Tally, float]:
    """Run ``args.clients`` clients for ``args.seconds``; returns the tally and the wall time."""
    tally = Tally()
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(timeout=args.timeout + 30, limits=limits) as http:
        started = time.monotonic()
        url = f"http://127.0.0.1:{port}/api/chat/completions"
        await asyncio.gather(*(client(http, url, started + args.seconds, tally) for _ in range(args.clients)))
        return tally, time.monotonic() - started


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report(tally: Tally, wall: float, args: argparse.Namespace, threads: str) -> str:
    """The results table."""
    counts = tally.outcomes
    total = sum(counts.values())
    rows = [
        ("clients / seconds", f"{args.clients} / {args.seconds:g} (wall {wall:.1f} s)"),
        (
            "server flags",
            f"--max-concurrency {args.max_concurrency} --max-queue {args.max_queue} --timeout {args.timeout:g} "
            f"--threads {threads}",
        ),
        ("competitors (busy loops)", str(args.compete)),
        ("requests sent", str(total)),
        ("answered 200", str(counts["ok"])),
        ("refused 503 + Retry-After", str(counts["refused"])),
        ("timed out 504", str(counts["timeout"])),
        ("lost", str(counts["lost"])),
        ("answered/s", f"{counts['ok'] / wall:.2f}"),
        ("handled/s (200+503+504)", f"{(total - counts['lost']) / wall:.2f}"),
        ("p50 latency (200)", f"{_percentile(tally.latencies, 50) * 1000:.0f} ms"),
        ("p95 latency (200)", f"{_percentile(tally.latencies, 95) * 1000:.0f} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
    lines += [f"lost example: {example}" for example in tally.lost_examples]
    return "\n".join(lines)


def start_competitors(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes that each keep one core busy."""
    code = "while True:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


def run_once(args: argparse.Namespace, threads: str) -> tuple[Tally, float, int]:
    """One server with ``threads``, loaded for ``args.seconds``; returns the tally, wall time, exit status."""
    port = _free_port()
    print(f"starting tlm-hooks serve (embedded model, --threads {threads}) on 127.0.0.1:{port} ...", file=sys.stderr)
    process = start_server(port, args, threads)
    try:
        warm = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json=BODY,
            timeout=args.timeout + 30,
            headers={"authorization": f"Bearer {KEY}"},
        )  # the first call pays for loading
        if warm.status_code != 200:  # a result too: the server cannot answer one request in time
            print(f"warm-up request: HTTP {warm.status_code} {warm.text[:200]}", file=sys.stderr)
        tally, wall = asyncio.run(run_clients(port, args))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            code = -1
    return tally, wall, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-concurrency", type=int, default=2)
    parser.add_argument("--max-queue", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument(
        "--threads", default="1", help="llama.cpp threads: N, 'all', 'default', or a comma-separated list (1)"
    )
    parser.add_argument("--compete", type=int, default=0, help="CPU-bound competitor processes during the run (0)")
    args = parser.parse_args(argv)
    competitors = start_competitors(args.compete)
    results: list[tuple[str, Tally, float, int]] = []
    try:
        for threads in args.threads.split(","):
            tally, wall, code = run_once(args, threads.strip())
            results.append((threads.strip(), tally, wall, code))
            print(report(tally, wall, args, threads.strip()))
            print(f"server exit status after SIGINT: {code}\n")
    finally:
        for competitor in competitors:
            competitor.kill()
            competitor.wait()
    if len(results) > 1:
        base_threads, base, base_wall, _ = results[0]
        base_rate = base.outcomes["ok"] / base_wall
        print(f"threads  answered/s  p50 ms  p95 ms  answered/s vs --threads {base_threads}")
        for threads, tally, wall, _ in results:
            rate = tally.outcomes["ok"] / wall
            p50, p95 = _percentile(tally.latencies, 50) * 1000, _percentile(tally.latencies, 95) * 1000
            ratio = rate / base_rate if base_rate else float("nan")
            print(f"{threads:<8} {rate:>10.2f}  {p50:>6.0f}  {p95:>6.0f}  {ratio:.2f}x")
    ok = all(tally.outcomes["lost"] == 0 and code == 0 for _, tally, _, code in results)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
