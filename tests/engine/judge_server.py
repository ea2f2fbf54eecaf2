"""A judge model on loopback HTTP (OpenAI chat completions, stdlib only) that can behave like the
servers that broke scores: refuse ``n>1`` with a 400 (as ``tlm-hooks serve`` does over an upstream server) and refuse
prompts longer than its context window (as OpenAI and llama.cpp servers do). It counts every
request it sees, so tests check what the judge was really asked."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine.conftest import prompt_kind

_VERDICTS = {"word_yes": "yes", "word_true": "true", "letter": "A", "scale": "10", "agreement": "yes"}


@dataclass
class Asked:
    """One request the judge received."""

    kind: str  # prompt_kind(), or "sample" for a re-asked user prompt
    n: int
    chars: int  # characters of all message contents
    last_user: str
    refused: int | None  # the HTTP status it got when refused
    tools: list[str]  # names of the function tools offered
    roles: list[str]  # of the messages, in order


class _Server(ThreadingHTTPServer):
    # every concurrent score opens several connections at once; the default backlog of 5 drops some
    # of them on a busy machine, and the client sees a judge that looks unreachable
    request_queue_size = 128


class JudgeServer:
    """``refuse_n``: answer any ``n>1`` with the 400 ``tlm-hooks serve`` sends over an upstream server. ``context_chars``:
    answer longer prompts with OpenAI's context-length 400. ``fail_kinds``: prompt kinds answered
    with a 500. ``answer``: the sampled answer. ``delay``: seconds before each reply (so
    concurrent requests overlap). ``tool_call``: when a sample request offers tools, the reply
    is this chat tool call instead of ``answer``. ``refuse_tools``: answer any request with
    ``tools`` with the 400 vLLM sends when it runs without tool calling."""

    def __init__(
        self,
        *,
        refuse_n: bool = True,
        context_chars: int | None = None,
        fail_kinds: frozenset[str] = frozenset(),
        answer: str = "4",
        delay: float = 0.05,
        tool_call: dict[str, Any] | None = None,
        refuse_tools: bool = False,
    ) -> None:
        self.refuse_n, self.context_chars, self.answer, self.delay = refuse_n, context_chars, answer, delay
        self.tool_call, self.refuse_tools = tool_call, refuse_tools
        self.fail_kinds = fail_kinds
        self.asked: list[Asked] = []
        self._lock = threading.Lock()
        judge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                status, data = judge.reply(body)
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def kinds(self, *, refused: bool | None = None) -> list[str]:
        with self._lock:
            return [a.kind for a in self.asked if refused is None or (a.refused is not None) == refused]

    def reply(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        messages = body.get("messages") or []
        texts = [str(m.get("content") or "") for m in messages]
        users = [t for m, t in zip(messages, texts, strict=True) if m.get("role") == "user"]
        last_user = users[-1] if users else ""
        kind = prompt_kind(texts[-1] if texts else "")
        if kind == "other":
            kind = "sample"
        n = int(body.get("n") or 1)
        chars = sum(map(len, texts))
        refusal: tuple[int, dict[str, Any]] | None = None
        if self.refuse_tools and body.get("tools"):
            refusal = 400, _error(
                '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set', "tools", None
            )
        elif kind in self.fail_kinds:
            refusal = 500, _error("scripted judge failure", "messages", None)
        elif self.context_chars is not None and chars > self.context_chars:
            refusal = 400, _error(
                f"This model's maximum context length is {self.context_chars // 4} tokens. However, your "
                f"messages resulted in {chars // 4} tokens.", "messages", "context_length_exceeded"
            )  # fmt: skip
        elif n > 1 and self.refuse_n:
            refusal = 400, _error(f"this server generates one choice per request, so n must be 1, got {n}", "n", None)
        with self._lock:
            tools = [str((t.get("function") or {}).get("name")) for t in body.get("tools") or ()]
            roles = [str(m.get("role")) for m in messages]
            self.asked.append(Asked(kind, n, chars, last_user, refusal[0] if refusal else None, tools, roles))
        time.sleep(self.delay)
        if refusal is not None:
            return refusal
        text = self.answer if kind == "sample" else _VERDICTS.get(kind, "yes")
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = "stop"
        if kind == "sample" and body.get("tools") and self.tool_call is not None:
            message, finish = {"role": "assistant", "content": None, "tool_calls": [self.tool_call]}, "tool_calls"
        choices = [{"index": i, "message": message, "finish_reason": finish, "logprobs": None} for i in range(n)]
        usage = {"prompt_tokens": chars // 4, "completion_tokens": n, "total_tokens": chars // 4 + n}
        data = {
            "id": "judge",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "choices": choices,
        }
        return 200, {**data, "usage": usage}


def _error(message: str, param: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


@contextmanager
def judge_server(**kwargs: Any) -> Iterator[JudgeServer]:
    server = JudgeServer(**kwargs)
    try:
        yield server
    finally:
        server.close()
