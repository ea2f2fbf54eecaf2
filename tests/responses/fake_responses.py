"""A scripted OpenAI Responses API server on loopback (stdlib only): ``POST .../responses``,
plain JSON or server-sent events in the API's event shapes. openai 2.x and 3.x (and their
Azure clients) talk to it over real HTTP. Each reply is taken from a script, else the default."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOGPROBS_INCLUDE = "message.output_text.logprobs"


@dataclass
class Answer:
    text: str = "The answer is 4."
    logprob: float = -0.05  # per token
    status: int = 200
    error_param: str | None = None
    tlm_score: float | None = None  # tlm_metadata as a TLM backend sends it
    function_call: dict[str, Any] | None = None  # {"name", "arguments"}: answer with a call (and no text)
    refuse_include: bool = False  # a 400 on `include` (a model without logprobs)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeResponses:
    script: deque[Answer] = field(default_factory=deque)
    requests: list[Seen] = field(default_factory=list)
    default: Answer = field(default_factory=Answer)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                with fake._lock:
                    fake.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    answer = fake.script.popleft() if fake.script else fake.default
                if answer.refuse_include and LOGPROBS_INCLUDE in (body.get("include") or ()):
                    answer = Answer(status=400, error_param="include")
                if answer.status != 200:
                    error = {"message": f"scripted failure ({answer.error_param})", "type": "invalid_request_error",
                             "param": answer.error_param, "code": None}  # fmt: skip
                    self._send(answer.status, "application/json", json.dumps({"error": error}).encode())
                    return
                if body.get("stream"):
                    events = stream_events(body, answer)
                    raw = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
                    self._send(200, "text/event-stream", raw.encode())
                else:
                    self._send(200, "application/json", json.dumps(response(body, answer)).encode())

            def _send(self, status: int, kind: str, raw: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def push(self, *answers: Answer) -> None:
        self.script.extend(answers)

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()
        self.default = Answer()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def tokens(text: str) -> list[str]:
    """``text`` cut before each space (the fake's tokens)."""
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch == " " or i == 0:
            out.append(ch)
        else:
            out[-1] += ch
    return out


def _logprobs(text: str, answer: Answer) -> list[dict[str, Any]]:
    return [
        {"token": t, "logprob": answer.logprob, "bytes": list(t.encode()), "top_logprobs": []} for t in tokens(text)
    ]


def response(body: dict[str, Any], answer: Answer, status: str = "completed") -> dict[str, Any]:
    """The ``Response`` JSON for ``answer``."""
    wants = LOGPROBS_INCLUDE in (body.get("include") or ())
    if answer.function_call is not None:
        output = [
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "status": "completed", **answer.function_call}
        ]
    else:
        part = {"type": "output_text", "text": answer.text, "annotations": [],
                "logprobs": _logprobs(answer.text, answer) if wants else []}  # fmt: skip
        output = [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": [part]}]
    data: dict[str, Any] = {
        "id": "resp_fake", "object": "response", "created_at": 1700000000, "model": body.get("model", "fake"),
        "status": status, "output": output if status == "completed" else [], "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
        "instructions": body.get("instructions"),
        "usage": {"input_tokens": 5, "output_tokens": 5, "total_tokens": 10,
                  "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
    }  # fmt: skip
    if answer.tlm_score is not None and status == "completed":
        data["tlm_metadata"] = {"trustworthiness_score": answer.tlm_score}
    return data


def stream_events(body: dict[str, Any], answer: Answer) -> list[dict[str, Any]]:
    """The event sequence the API sends for ``answer`` (created ... completed)."""
    wants = LOGPROBS_INCLUDE in (body.get("include") or ())
    done = response(body, answer)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response(body, answer, "in_progress")},
        {"type": "response.in_progress", "response": response(body, answer, "in_progress")},
    ]
    item = done["output"][0]
    if answer.function_call is not None:
        events.append(
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "arguments": "", "status": "in_progress"},
            }
        )
        events.append(
            {
                "type": "response.function_call_arguments.delta",
                "output_index": 0,
                "item_id": item["id"],
                "delta": item["arguments"],
            }
        )
        events.append(
            {
                "type": "response.function_call_arguments.done",
                "output_index": 0,
                "item_id": item["id"],
                "arguments": item["arguments"],
                "name": item["name"],
            }
        )
    else:
        ids = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        events.append(
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "content": [], "status": "in_progress"},
            }
        )
        events.append(
            {
                "type": "response.content_part.added",
                **ids,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            }
        )
        for token in tokens(answer.text):
            lp = _logprobs(token, answer)[:1] if wants else []
            if lp:
                lp[0]["token"] = token
            events.append({"type": "response.output_text.delta", **ids, "delta": token, "logprobs": lp})
        events.append(
            {
                "type": "response.output_text.done",
                **ids,
                "text": answer.text,
                "logprobs": item["content"][0]["logprobs"],
            }
        )
        events.append({"type": "response.content_part.done", **ids, "part": item["content"][0]})
    events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    events.append({"type": "response.completed", "response": done})
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def serve_in_process(url_queue: Any) -> None:
    """Run a default-answer server until killed, sending its root URL through ``url_queue``."""
    server = FakeResponses()
    url_queue.put(server.url)
    threading.Event().wait()
