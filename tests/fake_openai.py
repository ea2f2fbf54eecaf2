"""A scripted OpenAI-compatible chat-completions server on loopback (stdlib only).

Both openai 2.x (httpx) and 3.x (httpx2) talk to it over real HTTP, so the same tests run
against both. Each reply is taken from a script, else a default answer is built.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


@dataclass
class Reply:
    text: str = "The answer is 4."
    logprob: float = -0.05  # per token
    status: int = 200
    error_param: str | None = None
    tlm_score: float | None = None  # attach tlm_metadata like a TLM backend would
    delay: float = 0.0
    tool_call: dict[str, Any] | None = None
    headers: dict[str, str] | None = None  # extra response headers (e.g. Retry-After on a 429)
    choices: list[str] | None = None  # texts of choices 1.. when the server honours n>1


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self.default = Reply()
        self.honour_n = False  # return n choices when asked for n>1 (default: always one)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    reply = fake.script.popleft() if fake.script else fake.default
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status != 200:
                    self._json(reply.status, headers=reply.headers, data={"error": {"message": f"scripted failure ({reply.error_param or 'none'})", "type": "invalid_request_error", "param": reply.error_param, "code": None}})
                    return
                if body.get("stream"):
                    self._stream(body, reply)
                else:
                    n = int(body.get("n") or 1) if fake.honour_n else 1
                    self._json(200, completion(body, reply, n))

            def _json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for chunk in chunks(body, reply):
                    self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()
        self.default = Reply()
        self.honour_n = False

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _tokens(text: str) -> list[str]:
    out, word = [], ""
    for ch in text:
        if ch == " " and word:
            out.append(word)
            word = ""
        word += ch
    if word:
        out.append(word)
    return out


def _logprobs(text: str, reply: Reply) -> dict[str, Any]:
    return {
        "content": [
            {"token": t, "logprob": reply.logprob, "bytes": list(t.encode()), "top_logprobs": []} for t in _tokens(text)
        ]
    }


def _metadata(body: dict[str, Any], reply: Reply) -> dict[str, Any] | None:
    if reply.tlm_score is None:
        return None
    data: dict[str, Any] = {"trustworthiness_score": reply.tlm_score}
    if "explanation" in (body.get("options") or {}).get("log", []):
        data["log"] = {"explanation": "scripted explanation"}
    return data


def completion(body: dict[str, Any], reply: Reply, n: int = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_call is not None:
        message = {"role": "assistant", "content": None, "tool_calls": [reply.tool_call]}
    data: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": body.get("model", "fake-model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "stop",
                "logprobs": _logprobs(reply.text, reply) if body.get("logprobs") else None,
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5 * n, "total_tokens": 5 + 5 * n},
    }
    texts = reply.choices or []
    for i in range(1, n):
        text = texts[(i - 1) % len(texts)] if texts else reply.text
        data["choices"].append(
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": _logprobs(text, reply) if body.get("logprobs") else None,
            }
        )
    metadata = _metadata(body, reply)
    if metadata is not None:
        data["tlm_metadata"] = metadata
    return data


def chunks(body: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": body.get("model", "fake-model")}
    out = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    for token in _tokens(reply.text):
        choice: dict[str, Any] = {"index": 0, "delta": {"content": token}, "finish_reason": None}
        if body.get("logprobs"):
            choice["logprobs"] = _logprobs(token.strip() and token or token, reply)
            choice["logprobs"]["content"] = choice["logprobs"]["content"][:1]
            choice["logprobs"]["content"][0]["token"] = token
        out.append({**base, "choices": [choice]})
    last: dict[str, Any] = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    metadata = _metadata(body, reply)
    if metadata is not None:
        last["tlm_metadata"] = metadata
    out.append(last)
    if (body.get("stream_options") or {}).get("include_usage"):
        out.append({**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})
    return out


def serve_in_process(url_queue: Any) -> None:
    """Run a default-reply server until killed, sending its URL through ``url_queue``
    (for benchmarks: a server in another process does not compete for the client's GIL)."""
    server = FakeOpenAI()
    url_queue.put(server.url)
    server.thread.join()
