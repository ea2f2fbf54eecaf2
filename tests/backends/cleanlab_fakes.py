"""A scripted Cleanlab TLM service for `httpx.MockTransport`, and the documents' example replies."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

API_KEY = "sk-test-SECRET-0123456789"

# Example replies as the REST document shows them (before it deletes `deberta_success`).
PROMPT_REPLY: dict[str, Any] = {
    "confidence_score": 0.9895625234542792,
    "log": {"explanation": "Did not find a reason to doubt trustworthiness."},
    "response": "The first month of the year is January.",
    "deberta_success": True,
}
SCORE_REPLY: dict[str, Any] = {
    "confidence_score": 0.018654437417664177,
    "log": {"explanation": "The text is positive, so 'negative' is wrong."},
    "deberta_success": True,
}
RAG_SCORE_REPLY: dict[str, Any] = {
    "context_sufficiency": {"score": 0.9975124377784942},
    "query_ease": {"score": 0.9975124377422458},
    "response_groundedness": {"score": 0.0024875622025382848},
    "response_helpfulness": {"score": 0.00696355355661231},
    "trustworthiness": {"log": {"explanation": "Cannot verify that this response is correct."}, "score": 0.0},
    "deberta_success": True,
}
RAG_GENERATE_REPLY: dict[str, Any] = {
    "context_sufficiency": {"score": 0.9975124377990071},
    "query_ease": {"score": 0.9975124377422458},
    "response": "The first month of the year is January.",
    "response_groundedness": {"score": 0.9975124378109894},
    "response_helpfulness": {"score": 0.9975124378110278},
    "trustworthiness": {
        "log": {"explanation": "Did not find a reason to doubt trustworthiness."},
        "score": 0.9998661362818028,
    },
    "deberta_success": True,
}

Reply = httpx.Response | BaseException | Callable[[httpx.Request], Any]


def ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=data)


def status(code: int, body: Any = None, **headers: str) -> httpx.Response:
    body = {"detail": f"scripted {code}"} if body is None else body
    return httpx.Response(code, json=body, headers={k.replace("_", "-"): v for k, v in headers.items()})


class Service:
    """Replies are taken from ``script`` in order, then ``default``; every request is kept.

    A reply may be an ``httpx.Response``, an exception to raise, or ``fn(request)`` returning
    a response (a coroutine function works with async clients only).
    """

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.default: Reply = ok(SCORE_REPLY)
        self.requests: list[httpx.Request] = []

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def handler(self, request: httpx.Request) -> Any:
        self.requests.append(request)
        reply = self.script.popleft() if self.script else self.default
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply) and not isinstance(reply, httpx.Response):
            return reply(request)
        return reply

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))

    def body(self, index: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[index].content)
