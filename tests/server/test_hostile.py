"""The server under hostile load: exact admission, request bounds, slow clients, abandoned work,
bad input that must be a 400 (never a 500), and secrets on every log and error path."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
from fake_openai import FakeOpenAI, Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_fakes import FakeModel, RecordingScorer
from starlette.testclient import TestClient

from tlm_hooks.scorers import LogprobScorer
from tlm_hooks.server import Limits, ServerThread, create_app
from tlm_hooks.server.errors import ApiError
from tlm_hooks.server.limits import Gate
from tlm_hooks.server.scoring import DefaultScorers
from tlm_hooks.server.upstream import UpstreamModel

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
CHAT = "/v1/chat/completions"


def _client(model: Any = None, **kwargs: Any) -> TestClient:
    kwargs.setdefault("scorer", LogprobScorer())
    return TestClient(create_app(model or FakeModel(), **kwargs), raise_server_exceptions=False)


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


class BlockingModel(FakeModel):
    """A fake model whose plain completions wait for ``release`` (cancellable: ``achat`` is async)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.finished = 0

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        self.started.set()
        try:
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        self.finished += 1
        return self.chat(messages, **kwargs)


class QuickModel(FakeModel):
    """A fake model that never sleeps (``FakeModel`` sleeps ``seed`` seconds; the engine sends seeds)."""

    def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        kwargs.pop("seed", None)
        return super().chat(messages, **kwargs)


def _wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# -- admission: exactly max_concurrency + max_queue --------------------------------------------------


@pytest.mark.parametrize("attempts", [6, 7, 40])
def test_gate_admits_exactly_concurrency_plus_queue(attempts: int) -> None:
    async def held() -> None:
        gate = Gate(2, 4, max_wait=5)
        tasks = [asyncio.ensure_future(gate.acquire()) for _ in range(attempts)]
        await asyncio.sleep(0.05)  # every attempt has run up to its wait
        done = [t for t in tasks if t.done()]
        refused = [t for t in done if isinstance(t.exception(), ApiError)]
        assert (gate.running, gate.waiting, len(refused)) == (2, 4, attempts - 6)
        for task in done:
            if task.exception() is None:
                task.result().release()
        pending = {t for t in tasks if t not in done}
        later = 0
        while pending:  # each released place goes to a waiter, two at a time
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            assert gate.running == 2
            for task in finished:
                task.result().release()
                later += 1
        assert later == 4 and gate.running == 0 and gate.waiting == 0

    asyncio.run(held())


def test_gate_gives_a_cancelled_waiters_place_back() -> None:
    async def scenario() -> None:
        gate = Gate(1, 1, max_wait=5)
        first = await gate.acquire()
        waiter = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0.01)
        assert gate.waiting == 1
        waiter.cancel()
        await asyncio.sleep(0.01)
        assert gate.waiting == 0  # the queue place is free again
        second_waiter = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0.01)
        # a place handed to a waiter that is cancelled before it runs passes on to the next one
        third = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0.01)
        assert isinstance(third.exception(), ApiError)  # queue (1) full
        first.release()
        second_waiter.cancel()
        await asyncio.sleep(0.01)
        assert gate.running == 0 and gate.waiting == 0

    asyncio.run(scenario())


def _fire(url: str, count: int, body: dict[str, Any]) -> tuple[list[threading.Thread], list[int]]:
    """``count`` requests released at the same instant from their own threads and connections."""
    codes: list[int] = []
    barrier = threading.Barrier(count)

    def call() -> None:
        with httpx.Client(timeout=60) as http:
            barrier.wait(10)
            response = http.post(url, json=body)
            if response.status_code == 503:
                assert response.json()["error"]["code"] == "server_busy" and response.headers["retry-after"]
            codes.append(response.status_code)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, codes


@pytest.mark.parametrize("attempts", [6, 40])
def test_simultaneous_requests_admit_exactly_concurrency_plus_queue(attempts: int) -> None:
    model = BlockingModel()
    app = create_app(model, scorer=LogprobScorer(), limits=Limits(max_concurrency=2, max_queue=4, timeout=60))
    gate = app.state.gate
    with ServerThread(app) as server:
        threads, codes = _fire(f"{server.base_url}{CHAT}", attempts, {"messages": QUESTION})
        try:
            # all attempts are in: the refused ones have their answer, the others hold a place
            assert _wait_until(lambda: len(codes) >= attempts - 6 and gate.running + gate.waiting == 6, 30), (
                codes,
                gate.running,
                gate.waiting,
            )
        finally:
            model.release.set()
            for thread in threads:
                thread.join(60)
    assert Counter(codes) == Counter({200: 6, 503: attempts - 6}), Counter(codes)
    assert model.finished == 6


# -- bounds before any model work -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "param", "limit_name"),
    [
        ([{"role": "user", "content": ""}] * 30_000, "messages", "max_messages"),
        ([{"role": "u" * 900_000, "content": "hi"}], "messages[0].role", "max_name_chars"),
        ([{"role": "user", "name": "n" * 65, "content": "hi"}], "messages[0].name", "max_name_chars"),
        (
            [{"role": "user", "content": "x" * 60}, {"role": "assistant", "content": "y" * 38}],
            "messages",
            "max_prompt_chars",
        ),
    ],
    ids=["30000-empty-messages", "900k-role", "long-name", "roles-count-towards-prompt"],
)
@pytest.mark.parametrize("path", [CHAT, "/api/chat/score"])
def test_message_bounds_are_checked_before_any_model_work(
    messages: list[dict[str, Any]], param: str, limit_name: str, path: str
) -> None:
    model, scorer = FakeModel(), RecordingScorer()
    client = _client(model, scorer=scorer, limits=Limits(max_prompt_chars=100))
    body: dict[str, Any] = {"messages": messages}
    if path != CHAT:
        body["response"] = "4"
    error = _error(client.post(path, json=body), 400)
    assert error["param"] == param and limit_name in error["message"]
    assert model.calls == [] and scorer.requests == []


def test_message_bounds_accept_what_is_within_them() -> None:
    limits = Limits(max_messages=3, max_name_chars=9, max_prompt_chars=30)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "name": "ann", "content": "hi there"}]
    assert _client(limits=limits).post(CHAT, json={"messages": messages}).status_code == 200  # 6+8+4+3+8 = 29


# -- bad input: a 400 naming the field, never a 500 ---------------------------------------------------

_LOGPROBS_BODY = {"messages": QUESTION, "response": {"choices": [{"message": {"content": "4"}, "logprobs": None}]}}


def _with_logprobs(logprobs: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(_LOGPROBS_BODY))
    body["response"]["choices"][0]["logprobs"] = logprobs
    return body


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


BAD_INPUT = [
    (
        "max_tokens-5000-digits",
        CHAT,
        '{"messages": [{"role":"user","content":"hi"}], "max_tokens": ' + "9" * 5000 + "}",
        "max_tokens",
    ),
    ("seed-5000-digits", CHAT, '{"messages": [{"role":"user","content":"hi"}], "seed": -' + "9" * 5000 + "}", "seed"),
    ("seed-past-int64", CHAT, {"messages": QUESTION, "seed": 2**63}, "seed"),
    ("json-1000-deep", CHAT, '{"messages": ' + _nested(1000) + "}", None),
    (
        "options-500-deep",
        CHAT,
        {"messages": QUESTION, "options": json.loads('{"a": ' * 500 + "1" + "}" * 500)},
        "options",
    ),
    ("logprobs-content-string", "/api/chat/score", _with_logprobs({"content": "abc"}), "response.choices[0].logprobs"),
    ("logprobs-entry-number", "/api/chat/score", _with_logprobs({"content": [5]}), "response.choices[0].logprobs"),
    (
        "logprobs-null-logprob",
        "/api/chat/score",
        _with_logprobs({"content": [{"token": "4", "logprob": None}]}),
        "response.choices[0].logprobs",
    ),
    (
        "logprobs-bad-top",
        "/api/chat/score",
        _with_logprobs({"content": [{"token": "4", "logprob": -0.1, "top_logprobs": [7]}]}),
        "response.choices[0].logprobs",
    ),
    ("model_provider-empty", CHAT, {"messages": QUESTION, "options": {"model_provider": {}}}, "options.model_provider"),
    (
        "temperature-huge",
        CHAT,
        '{"messages": [{"role":"user","content":"hi"}], "temperature": ' + "1" * 400 + "}",
        "temperature",
    ),
]


@pytest.mark.parametrize(("path", "body", "param"), [row[1:] for row in BAD_INPUT], ids=[row[0] for row in BAD_INPUT])
def test_bad_input_is_a_400_naming_the_field(path: str, body: Any, param: str | None) -> None:
    model = QuickModel()
    client = _client(model, scorer=DefaultScorers())
    sent = client.post(path, content=body) if isinstance(body, str) else client.post(path, json=body)
    error = _error(sent, 400)
    if param is not None:
        assert error["param"] == param and param.split(".")[-1].split("[")[0] in error["message"]
    else:
        assert "nested" in error["message"]
    assert model.calls == []


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_FIELDS = st.sampled_from(
    ["messages", "max_tokens", "seed", "temperature", "top_p", "stop", "logprobs", "top_logprobs", "n", "stream",
     "stream_options", "options", "quality_preset", "task", "model", "response", "tools"]
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from([CHAT, "/api/chat/score", "/api/v0/trustworthy_llm/prompt"]),
    fields=st.dictionaries(_FIELDS, _JSON, max_size=4),
)
def test_no_body_makes_a_500(path: str, fields: dict[str, Any]) -> None:
    body = {**_BASE_BODIES[path], **fields}
    response = _HYPOTHESIS_CLIENT.post(path, json=body)
    # TLM's REST routes answer a validation error with 422 (Cleanlab's client retries a 400)
    assert response.status_code in (200, 400, 422), response.text
    if response.status_code != 200:
        error = response.json()["error"]
        assert error["message"] if isinstance(error, dict) else error


_BASE_BODIES: dict[str, dict[str, Any]] = {
    CHAT: {"messages": QUESTION},
    "/api/chat/score": {"messages": QUESTION, "response": "4"},
    "/api/v0/trustworthy_llm/prompt": {"prompt": "p"},
}
_HYPOTHESIS_CLIENT = _client(QuickModel(), scorer=DefaultScorers())  # the engine judges with the fake model


# -- slow clients ---------------------------------------------------------------------------------------


@pytest.fixture
def slow_server() -> Iterator[tuple[ServerThread, BlockingModel]]:
    model = BlockingModel()
    app = create_app(model, scorer=LogprobScorer(), limits=Limits(read_timeout=1.0, timeout=30))
    with ServerThread(app) as server:
        yield server, model
        model.release.set()


def _trickle(sock: socket.socket, data: bytes, every: float) -> tuple[int, bytes]:
    """Send ``data`` one byte every ``every`` seconds until the server answers or closes;
    returns the bytes sent and what the server sent back."""
    sent, received = 0, b""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break
        sent += 1
        time.sleep(every)
        sock.setblocking(False)
        try:
            chunk = sock.recv(65536)
            if chunk == b"":
                break
            received += chunk
        except BlockingIOError:
            pass
        except OSError:
            break
        finally:
            sock.setblocking(True)
        if received:
            break
    return sent, received


def test_trickled_headers_are_cut_off(slow_server: tuple[ServerThread, BlockingModel]) -> None:
    server, model = slow_server
    head = f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        started = time.monotonic()
        sent, received = _trickle(sock, head, every=0.3)  # the whole head would take ~25 s
        took = time.monotonic() - started
    assert sent < len(head) and took < 6 and received == b"", (sent, took, received)
    assert not model.started.is_set()


def test_trickled_body_gets_408_within_the_read_timeout(slow_server: tuple[ServerThread, BlockingModel]) -> None:
    server, model = slow_server
    body = json.dumps({"messages": QUESTION}).encode()
    head = f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode())
        started = time.monotonic()
        sent, reply = _trickle(sock, body, every=0.3)
        took = time.monotonic() - started
        sock.settimeout(2)
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except OSError:
            pass
    assert sent < len(body) and took < 6, (sent, took)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b'"request_timeout"' in reply and b"read_timeout" in reply
    assert not model.started.is_set()


def test_an_idle_connection_is_closed(slow_server: tuple[ServerThread, BlockingModel]) -> None:
    server, _ = slow_server
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the server, without a byte sent
        assert time.monotonic() - started < 6


# -- abandoned work is cancelled --------------------------------------------------------------------------


def _post_and_hang_up(port: int, body: dict[str, Any]) -> socket.socket:
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    return sock


def test_a_disconnected_clients_work_is_cancelled_and_its_place_freed() -> None:
    model, scorer = BlockingModel(), RecordingScorer()
    app = create_app(model, scorer=scorer, limits=Limits(max_concurrency=1, max_queue=1, timeout=60))
    gate = app.state.gate
    with ServerThread(app) as server:
        running = _post_and_hang_up(server.port, {"messages": QUESTION})
        assert model.started.wait(10)
        queued = _post_and_hang_up(server.port, {"messages": QUESTION})
        assert _wait_until(lambda: gate.waiting == 1, 10)
        queued.close()
        assert _wait_until(lambda: gate.waiting == 0, 5)  # the queue place came back
        running.close()
        assert model.cancelled.wait(5)  # the model call was cancelled, not finished
        assert _wait_until(lambda: gate.running == 0, 5)
        model.release.set()
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            assert http.post(CHAT, json={"messages": QUESTION}).status_code == 200
    assert model.finished == 1 and len(scorer.requests) == 1  # only the last request was answered and scored


# -- secrets on every path -----------------------------------------------------------------------------------

SERVER_KEY = "sk-server-HOSTILE-111"
UPSTREAM_KEY = "upstream-plain-secret-222"  # no sk- prefix: only the server's knowledge hides it


def test_an_upstream_error_echoing_the_key_is_scrubbed_from_logs(
    caplog: pytest.LogCaptureFixture, fake: FakeOpenAI
) -> None:
    caplog.set_level(logging.DEBUG)
    pytest.importorskip("tlm_hooks.scorers.tlm")
    upstream = UpstreamModel(fake.url, api_key=UPSTREAM_KEY, model="m")
    # every judge call of the engine fails with the key echoed back: the engine logs the failure
    fake.default = Reply(status=400, error_param=f"Authorization: {UPSTREAM_KEY}")
    app = create_app(upstream, scorer=DefaultScorers(), api_keys=[SERVER_KEY], hidden=[UPSTREAM_KEY])
    client = TestClient(app, raise_server_exceptions=False)
    reply = client.post(
        "/api/v0/trustworthy_llm/get_confidence_score",  # no logprobs: the judge calls are all there is
        json={"prompt": "What is 2+2?", "response": "4", "quality": "low"},
        headers={"authorization": f"Bearer {SERVER_KEY}"},
    )
    assert reply.status_code == 200 and reply.json()["confidence_score"] is None
    assert fake.requests[-1].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "scripted failure" in logged  # the upstream's error was logged...
    assert UPSTREAM_KEY not in logged and UPSTREAM_KEY not in reply.text  # ...without the key


@pytest.mark.parametrize(
    ("options", "secret"),
    [
        ({"sk-live-abcdef123456": 1}, "sk-live-abcdef123456"),
        ({"log": ["sk-proj-zyxwvu98765"]}, "sk-proj-zyxwvu98765"),
        ({"model_provider": {"api_key": "plain-value-333", "apikey": "plain-value-333"}}, "plain-value-333"),
        ({"api_key": "plain-value-444"}, "plain-value-444"),
    ],
)
def test_error_param_and_message_never_echo_secret_looking_values(
    options: dict[str, Any], secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = _client(allow_model_provider=True)
    reply = client.post(CHAT, json={"messages": QUESTION, "options": options})
    assert reply.status_code == 400
    assert secret not in reply.text
    assert secret not in "\n".join(r.getMessage() for r in caplog.records)
