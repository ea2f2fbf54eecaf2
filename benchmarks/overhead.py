"""Per-call overhead of the hook: a patched client (scorer returns at once) vs. the same
client unpatched, against a local server, measured in one run.

    python benchmarks/overhead.py [--calls 2000] [--rounds 10]

Prints median latency per call for both, the added microseconds and the ratio, and the same
for a stream's time to first chunk. Rounds alternate patched/unpatched so drift hits both.

Then the hook's own cost with the SDK taken out (``own_cost``): the hook's call path with the
original method replaced by a function that returns a ready response (chat: 5 tokens with
logprobs; Responses: the same text), against calling that function directly, best of 7 repeats,
and ``LogprobScorer.score`` alone on that chat response. This is the number a loaded machine
disturbs least. Last (``paired_added``), the added time measured call by call: a plain and a
hooked in-process ``create()`` alternate, and the median of the differences is printed, so drift
between rounds cancels out; once with the instant scorer inline, once with the default
``LogprobScorer`` on answers whose logprobs the app asked for (the path most hooked calls take).
Between SDK calls the hook's code runs with cold CPU caches, so this is 2-4x ``own_cost`` (measured).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "responses"))

import openai  # noqa: E402
from fake_openai import Reply, completion, serve_in_process  # noqa: E402
from fake_responses import Answer, response  # noqa: E402

import tlm_hooks  # noqa: E402

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}]


def _instant(_request: tlm_hooks.ScoreRequest) -> float:
    return 1.0


def time_calls(client: openai.OpenAI, calls: int) -> tuple[list[float], float]:
    """Wall time of each call, and this process's CPU time per call (the server runs elsewhere)."""
    out = []
    cpu = time.process_time()
    for _ in range(calls):
        start = time.perf_counter()
        client.chat.completions.create(model="bench", messages=MESSAGES)
        out.append(time.perf_counter() - start)
    return out, (time.process_time() - cpu) / calls


def time_responses(client: openai.OpenAI, calls: int) -> list[float]:
    """Wall time of each ``responses.create`` call."""
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        client.responses.create(model="bench", instructions="You are terse.", input="What is 2+2?")
        out.append(time.perf_counter() - start)
    return out


def in_process_client(body_of: str = "chat") -> openai.OpenAI:
    """A client whose HTTP transport answers in-process (no sockets): what remains is SDK + hook.
    ``body_of="chat_logprobs"`` answers 5 tokens with their logprobs (what the default scorer reads)."""
    if body_of == "responses":
        body = json.dumps(response({"model": "bench"}, Answer())).encode()
    elif body_of == "chat_logprobs":
        reply = Reply(text="The answer is four.", logprob=-0.1)
        body = json.dumps(completion({"model": "bench", "logprobs": True}, reply, 1)).encode()
    else:
        body = json.dumps(completion({"model": "bench"}, Reply())).encode()
    try:  # openai 3.x uses httpx2, 2.x uses httpx
        import httpx2 as http
    except ImportError:
        import httpx as http  # type: ignore[no-redef]

    def answer(request: object) -> object:
        return http.Response(200, content=body, headers={"content-type": "application/json"})

    transport = http.MockTransport(answer)
    return openai.OpenAI(base_url="http://bench.invalid/v1", api_key="bench", max_retries=0, http_client=http.Client(transport=transport))


def time_first_chunk(client: openai.OpenAI, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        stream = client.chat.completions.create(model="bench", messages=MESSAGES, stream=True)
        next(iter(stream))
        out.append(time.perf_counter() - start)
        for _chunk in stream:
            pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per round and variant")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    urls: multiprocessing.Queue[str] = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve_in_process, args=(urls,), daemon=True)
    server.start()
    url = urls.get(timeout=30)
    plain = openai.OpenAI(base_url=url, api_key="bench", max_retries=0)
    hooked = openai.OpenAI(base_url=url, api_key="bench", max_retries=0)
    tlm_hooks.patch(hooked, scorer=_instant)

    results: dict[str, list[float]] = {"plain": [], "hooked": [], "plain_ttft": [], "hooked_ttft": []}
    cpu: dict[str, list[float]] = {"plain": [], "hooked": []}
    time_calls(plain, 50), time_calls(hooked, 50)  # warm up connections and caches
    for _ in range(args.rounds):
        for name, client in (("plain", plain), ("hooked", hooked)):
            walls, cpu_per_call = time_calls(client, args.calls)
            results[name] += walls
            cpu[name].append(cpu_per_call)
        results["plain_ttft"] += time_first_chunk(plain, args.calls // 5)
        results["hooked_ttft"] += time_first_chunk(hooked, args.calls // 5)
    server.kill()

    # The same comparison without any network: SDK + hook only, so noise is small.
    # The default policy scores a sync scorer under a deadline (handed to a scoring thread);
    # `score_timeout=None` scores it inline: the difference is the deadline's cost.
    plain_mem, hooked_mem, inline_mem = in_process_client(), in_process_client(), in_process_client()
    tlm_hooks.patch(hooked_mem, scorer=_instant)
    tlm_hooks.patch(inline_mem, scorer=_instant, policy=tlm_hooks.TrustPolicy(score_timeout=None))
    mem: dict[str, list[float]] = {"plain": [], "hooked": [], "inline": []}
    time_calls(plain_mem, 200), time_calls(hooked_mem, 200), time_calls(inline_mem, 200)
    for _ in range(args.rounds):
        for name, client in (("plain", plain_mem), ("hooked", hooked_mem), ("inline", inline_mem)):
            mem[name] += time_calls(client, args.calls * 2)[0]

    # The Responses API, in-process too: its hook next to chat's
    plain_resp, hooked_resp = in_process_client("responses"), in_process_client("responses")
    tlm_hooks.patch(hooked_resp, scorer=_instant)
    resp: dict[str, list[float]] = {"plain": [], "hooked": []}
    time_responses(plain_resp, 200), time_responses(hooked_resp, 200)
    for _ in range(args.rounds):
        for name, client in (("plain", plain_resp), ("hooked", hooked_resp)):
            resp[name] += time_responses(client, args.calls * 2)

    print(f"openai {openai.__version__}, {args.rounds} rounds x {args.calls} calls per variant; server in another process")
    rows = (
        ("create() in-process", [statistics.median(mem["plain"])], [statistics.median(mem["hooked"])]),
        ("  no score_timeout", [statistics.median(mem["plain"])], [statistics.median(mem["inline"])]),
        ("responses in-process", [statistics.median(resp["plain"])], [statistics.median(resp["hooked"])]),
        ("create() wall", [statistics.median(results["plain"])], [statistics.median(results["hooked"])]),
        ("create() client CPU", cpu["plain"], cpu["hooked"]),
        ("stream first chunk", [statistics.median(results["plain_ttft"])], [statistics.median(results["hooked_ttft"])]),
    )
    for label, base_values, hook_values in rows:
        b = statistics.median(base_values) * 1e6
        h = statistics.median(hook_values) * 1e6
        print(f"{label:20s} unpatched {b:8.1f} us   patched {h:8.1f} us   added {h - b:+7.1f} us   ratio {h / b:.3f}")
    # On a busy or throttled machine the medians swing by hundreds of us between runs; the fastest
    # tenth of the in-process calls is what the code costs when nothing else gets in the way.
    print("fastest 10% of in-process calls (p10), less disturbed by other load:")
    for label, base, hook in (
        ("create() in-process", mem["plain"], mem["hooked"]),
        ("  no score_timeout", mem["plain"], mem["inline"]),
        ("responses in-process", resp["plain"], resp["hooked"]),
    ):
        b, h = _p10(base) * 1e6, _p10(hook) * 1e6
        print(f"{label:20s} unpatched {b:8.1f} us   patched {h:8.1f} us   added {h - b:+7.1f} us   ratio {h / b:.3f}")
    print("the hook's own cost, SDK taken out (best of 7 x 5000 calls):")
    for label, added in own_cost():
        print(f"  {label:38s} {added:+7.1f} us")
    print("create() in-process, paired call by call (median of 3000 hooked-minus-plain differences):")
    print(f"  instant scorer, no score_timeout       {paired_added():+7.1f} us")
    print(f"  default scorer (app asks for logprobs) {paired_added(default_scorer=True):+7.1f} us")


def own_cost(calls: int = 5000, repeats: int = 7) -> list[tuple[str, float]]:
    """Microseconds the hook adds per call with the SDK taken out (see the module docstring)."""
    from openai._models import construct_type  # how the SDK builds what it returns (lenient)
    from openai.types.chat import ChatCompletion
    from openai.types.responses import Response

    from tlm_hooks.adapters.openai import ADAPTER as CHAT
    from tlm_hooks.adapters.openai_responses import ADAPTER as RESPONSES
    from tlm_hooks.hooks.pipeline import call_sync
    from tlm_hooks.hooks.registry import REGISTRY

    chat = construct_type(type_=ChatCompletion, value=completion(
        {"model": "bench", "logprobs": True}, Reply(text="The answer is four.", logprob=-0.1), 1))  # fmt: skip
    resp = construct_type(type_=Response, value=response(
        {"model": "bench", "include": ["message.output_text.logprobs"]}, Answer()))  # fmt: skip
    cases = (
        ("chat, default scorer (logprobs)", CHAT, chat, {}, {"model": "bench", "messages": MESSAGES}),
        ("chat, instant scorer, inline", CHAT, chat, {"scorer": _instant, "policy": INLINE},
         {"model": "bench", "messages": MESSAGES}),
        ("responses, default scorer (logprobs)", RESPONSES, resp, {},
         {"model": "bench", "instructions": "You are terse.", "input": "What is 2+2?"}),
        ("responses, instant scorer, inline", RESPONSES, resp, {"scorer": _instant, "policy": INLINE},
         {"model": "bench", "instructions": "You are terse.", "input": "What is 2+2?"}),
    )  # fmt: skip
    out = []
    for label, adapter, ready, hook, kwargs in cases:
        client = openai.OpenAI(base_url="http://bench.invalid/v1", api_key="bench")
        tlm_hooks.patch(client, **hook)
        config = REGISTRY.own(client)

        def original(*_args: object, _ready: object = ready, **_kwargs: object) -> object:
            return _ready

        assert call_sync(config, adapter, client, original, (), dict(kwargs)).tlm_metadata["trustworthiness_score"]
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                call_sync(config, adapter, client, original, (), dict(kwargs))
            hooked = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(calls):
                original(**dict(kwargs))
            best = min(best, (hooked - (time.perf_counter() - start)) / calls)
        out.append((label, best * 1e6))
    from tlm_hooks import LogprobScorer

    request = CHAT.score_request({"model": "bench", "messages": MESSAGES}, chat, None)
    scorer = LogprobScorer()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            scorer.score(request)
        best = min(best, (time.perf_counter() - start) / calls)
    out.append(("LogprobScorer.score alone (5 tokens)", best * 1e6))
    return out


def paired_added(pairs: int = 3000, *, default_scorer: bool = False) -> float:
    """Median over ``pairs`` of (hooked − plain) in-process ``create()`` time, the two alternating
    call by call, in microseconds: the instant scorer inline, or (``default_scorer``) the default
    ``LogprobScorer`` on answers with logprobs the app asked for."""
    body_of = "chat_logprobs" if default_scorer else "chat"
    plain, hooked = in_process_client(body_of), in_process_client(body_of)
    if default_scorer:
        tlm_hooks.patch(hooked)
    else:
        tlm_hooks.patch(hooked, scorer=_instant, policy=INLINE)
    extra = {"logprobs": True} if default_scorer else {}

    def call(client: openai.OpenAI) -> Any:
        return client.chat.completions.create(model="bench", messages=MESSAGES, **extra)

    for _ in range(200):
        call(plain), call(hooked)
    assert call(hooked).tlm_metadata["trustworthiness_score"] is not None  # really scored
    diffs = []
    for _ in range(pairs):
        a = time.perf_counter()
        call(plain)
        b = time.perf_counter()
        call(hooked)
        diffs.append(time.perf_counter() - b - (b - a))
    return statistics.median(diffs) * 1e6


INLINE = tlm_hooks.TrustPolicy(score_timeout=None)


def _p10(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[0]


if __name__ == "__main__":
    main()
