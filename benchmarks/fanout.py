"""Fan-out: wall time of one score divided by one LLM call's latency, against a fake server.

    .venv/bin/python benchmarks/fanout.py [--latency 0.2] [--repeats 5] [--out benchmarks/results/fanout.json]

A fake OpenAI-compatible server (in its own process, one thread per connection, so unlimited
concurrency) answers every chat request after a fixed ``--latency`` (200 ms). Two modes:
``n`` honoured (returns ``n`` choices, like OpenAI) and ``n`` ignored (one choice, like many
self-hosted servers). For each scorer we time one score of a (question, answer) pair — after a
warm-up score, so connection set-up and per-backend discovery (e.g. "does this server honour
n?") are not counted — and report median wall time / latency, plus the requests one score sent.
Goal for our ``medium`` and ``high``: <= 2x. Peers (uqlm, trustworthy-llm) run in their venvs
via ``--worker`` subprocesses, against the same fake server.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"
BENCH_TLM_PY = ROOT / ".venv-bench-tlm" / "bin" / "python"
QUESTION = "What is the capital of France?"
ANSWER = "The capital of France is Paris."
SYSTEM = "You are a helpful assistant. Answer the question briefly, in a few words."
MODEL = "fake-model"


# -- the fake server -------------------------------------------------------------------------------


def serve(url_queue: Any, latency: float, honour_n: bool) -> None:
    """Run the fake server until killed; its URL goes through ``url_queue``. ``GET /__count``
    returns the number of chat requests received so far."""
    count = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802
            self._send({"calls": count[0]})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            with lock:
                count[0] += 1
            time.sleep(latency)
            n = int(body.get("n") or 1) if honour_n else 1
            # a question gets an answer; a judge prompt (it quotes the answer) gets a verdict every
            # scorer parses, so no scorer retries on an unparseable reply
            prompt = " ".join(str(m.get("content")) for m in body.get("messages") or [])
            text = "Correct" if ANSWER in prompt or "Paris" in prompt else "Paris"
            logprobs = None
            if body.get("logprobs"):
                top = [{"token": "Paris", "logprob": -0.05, "bytes": None}]
                logprobs = {"content": [{"token": "Paris", "logprob": -0.05, "bytes": None, "top_logprobs": top}]}
            self._send({
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body.get("model", MODEL),
                "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                             "logprobs": logprobs} for i in range(n)],
                "usage": {"prompt_tokens": 50, "completion_tokens": n, "total_tokens": 50 + n},
            })  # fmt: skip

    class Server(ThreadingHTTPServer):
        # listen() runs in the constructor: the default backlog of 5 drops the SYNs of a burst
        # of new connections, and each dropped SYN costs a 1 s TCP retransmit
        request_queue_size = 1024
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    url_queue.put(f"http://127.0.0.1:{server.server_address[1]}")
    server.serve_forever()


def calls(base: str) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{base}/__count", timeout=10) as reply:
        return int(json.loads(reply.read())["calls"])


def timed(base: str, fn: Any, repeats: int) -> dict[str, Any]:
    fn()  # warm-up
    walls, sent = [], []
    for _ in range(repeats):
        c0 = calls(base)
        start = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - start)
        sent.append(calls(base) - c0)
    return {"wall": statistics.median(walls), "walls": walls, "calls": statistics.median(sent)}


# -- scorers ---------------------------------------------------------------------------------------


def ours(base: str, preset: str, repeats: int) -> dict[str, Any]:
    from tlm_hooks.llm import OpenAICompatibleBackend
    from tlm_hooks.scorers.tlm import TLMScorer
    from tlm_hooks.types import ScoreRequest, TokenLogprob

    judge = OpenAICompatibleBackend(model=MODEL, base_url=f"{base}/v1", api_key="unused")
    scorer = TLMScorer(quality_preset=preset, judge=judge)
    request = ScoreRequest(
        response=ANSWER,
        messages=({"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}),
        response_logprobs=(TokenLogprob("Paris", -0.05),),
    )
    return timed(base, lambda: scorer.score(request), repeats)


def worker_uqlm(base: str, repeats: int) -> dict[str, Any]:
    import asyncio
    import warnings

    warnings.filterwarnings("ignore")
    from langchain_openai import ChatOpenAI
    from uqlm import BlackBoxUQ, LLMPanel

    llm = ChatOpenAI(model=MODEL, base_url=f"{base}/v1", api_key="unused", temperature=0.0, max_tokens=64)
    sampler = BlackBoxUQ(llm=llm, scorers=["exact_match"], system_prompt=SYSTEM, sampling_temperature=1.0)
    panel = LLMPanel(judges=[llm])
    loop = asyncio.new_event_loop()

    async def bs_detector() -> None:  # the off-the-shelf ensemble's calls, minus the NLI model
        sampled = await sampler.generate_candidate_responses([QUESTION], num_responses=5, progress_bar=None)
        sampler.score(responses=[ANSWER], sampled_responses=sampled, show_progress_bars=False)
        await panel.score(prompts=[QUESTION], responses=[ANSWER], show_progress_bars=False)

    return timed(base, lambda: loop.run_until_complete(bs_detector()), repeats)


def worker_oss_tlm(base: str, preset: str, repeats: int) -> dict[str, Any]:
    import logging

    logging.disable(logging.WARNING)
    os.environ.update({"DEFAULT_MODEL": f"openai/{MODEL}", "DEFAULT_PROVIDER": "openai", "OPENAI_API_KEY": "unused",
                       "DEFAULT_API_KEY": "unused", "OPENAI_API_BASE": f"{base}/v1", "OPENAI_BASE_URL": f"{base}/v1",
                       "MAX_TOKENS": "128", "LITELLM_LOG": "ERROR"})  # fmt: skip
    from tlm import TLM
    from tlm.config.schema import Config

    tlm = TLM(config=Config(quality_preset=preset, api_base=f"{base}/v1", api_key="unused"))
    completion = {"id": "x", "object": "chat.completion", "created": 0, "model": MODEL,
                  "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}]}  # fmt: skip
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    response = {"chat_completion": completion, "perplexity": 0.95}
    return timed(base, lambda: tlm.score(response=response, messages=messages, model=f"openai/{MODEL}"), repeats)


def peer(python: Path, name: str, base: str, repeats: int) -> dict[str, Any]:
    if not python.exists():
        return {"error": f"{python} missing"}
    cmd = [str(python), __file__, "--worker", name, "--url", base, "--repeats", str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:] or ["failed"]}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fanout.json")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        if args.worker == "uqlm":
            result = worker_uqlm(args.url, args.repeats)
        else:
            result = worker_oss_tlm(args.url, args.worker.removeprefix("oss-tlm-"), args.repeats)
        print(json.dumps(result))
        return

    results: dict[str, Any] = {"latency": args.latency, "modes": {}}
    ctx = multiprocessing.get_context("spawn")
    for honour_n in (True, False):
        mode = "n honoured" if honour_n else "n ignored"
        queue = ctx.Queue()
        proc = ctx.Process(target=serve, args=(queue, args.latency, honour_n), daemon=True)
        proc.start()
        base = queue.get(timeout=30)
        rows: dict[str, Any] = {}
        try:
            for preset in ("medium", "high"):
                rows[f"tlm-{preset}"] = ours(base, preset, args.repeats)
            if not args.no_peers:
                rows["uqlm-bsdetector-nonli"] = peer(BENCH_PY, "uqlm", base, args.repeats)
                rows["oss-tlm-medium"] = peer(BENCH_TLM_PY, "oss-tlm-medium", base, args.repeats)
                rows["oss-tlm-high"] = peer(BENCH_TLM_PY, "oss-tlm-high", base, args.repeats)
        finally:
            proc.terminate()
            proc.join(5)
        for row in rows.values():
            if "wall" in row:
                row["ratio"] = row["wall"] / args.latency
        results["modes"][mode] = rows
    print(f"one call = {args.latency * 1000:.0f} ms; ratio = median wall time of one score / one call's latency\n")
    print("| scorer | server | requests / score | wall (s) | ratio |\n| --- | --- | ---: | ---: | ---: |")
    for mode, rows in results["modes"].items():
        for name, row in rows.items():
            if "wall" in row:
                print(f"| {name} | {mode} | {row['calls']:.0f} | {row['wall']:.3f} | {row['ratio']:.2f}x |")
            else:
                print(f"| {name} | {mode} | – | – | error: {row.get('error')} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nresults -> {args.out}")


if __name__ == "__main__":
    sys.exit(main())
