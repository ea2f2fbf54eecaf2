"""`UpstreamModel`: a server ``ChatModel`` that forwards chat requests to an OpenAI-compatible URL.

For ``tlm-hooks serve --model https://vllm.internal/v1``: generation happens on that server
(vLLM, TGI, llama.cpp server, OpenAI, ...), scoring here. The upstream key is sent only in the
``Authorization`` header and never appears in errors.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from ..llm.fanout import NSupport

__all__ = ["UpstreamModel", "UpstreamError"]


class UpstreamError(Exception):
    """The upstream server failed or refused; ``http_status`` is what this server replies with,
    ``status_code`` the upstream's own HTTP status (``None`` when it did not answer)."""

    def __init__(
        self, http_status: int, message: str, param: str | None = None, *, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.param = param
        self.status_code = status_code  # read by the judge's failure handling (a 400 refusing n>1)


class UpstreamModel:
    """Chat completions from ``base_url`` (``…/v1``), with ``model`` fixed or taken from each request.

    ``n`` is passed on (``forwards_n``): the upstream answers it, refuses it, or answers fewer
    choices; ``n_support`` remembers which, for the judge calls made through this model.
    """

    accepts_model_name = True
    forwards_n = True

    def __init__(
        self, base_url: str, *, api_key: str | None = None, model: str | None = None, timeout: float = 120.0
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = model or "upstream"
        self.timeout = timeout
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(timeout=timeout, headers=self._headers)
        self._async: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        self.n_support = NSupport()  # whether the upstream answers n>1 in one request (learned)

    def __repr__(self) -> str:
        return f"UpstreamModel(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def url(self) -> str:
        """The upstream chat-completions URL."""
        return f"{self.base_url}/chat/completions"

    def _body(self, messages: Sequence[Mapping[str, Any]], kwargs: dict[str, Any]) -> dict[str, Any]:
        requested = kwargs.pop("model", None)
        model = self.model or requested
        if not model:
            raise UpstreamError(400, "'model' is required: name the upstream model in the request", "model")
        return {"model": model, "messages": list(messages), **kwargs}

    def chat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """One completion (blocking)."""
        body = self._body(messages, dict(kwargs))
        try:
            response = self._client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from None
        return _json_reply(response)

    async def achat(self, messages: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
        """One completion, without blocking the event loop."""
        body = self._body(messages, dict(kwargs))
        try:
            response = await self._async_client().post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from None
        return _json_reply(response)

    def chat_stream(
        self, messages: Sequence[Mapping[str, Any]], *, include_usage: bool = False, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """The completion as ``chat.completion.chunk`` dicts (close the iterator if abandoned)."""
        body = self._body(messages, dict(kwargs))
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
        return self._chunks(body)

    def _chunks(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        try:
            with self._client.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    _json_reply(response)  # raises the mapped error
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    event = json.loads(data)
                    if isinstance(event, dict) and "error" in event and "choices" not in event:
                        raise UpstreamError(502, f"the upstream model failed mid-stream: {_message(event)}")
                    yield event
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from None

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (loop, httpx.AsyncClient(timeout=self.timeout, headers=self._headers))
        return self._async[1]

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()
        self._async = None


def _message(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or body)[:500]


def _json_reply(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {"error": {"message": response.text[:500]}}
    status = response.status_code
    if status == 200 and isinstance(body, dict):
        return body
    message = _message(body)
    param = (
        body.get("error", {}).get("param") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    )
    if status in (400, 404, 413, 422):
        raise UpstreamError(400, f"the upstream model refused the request: {message}", param, status_code=status)
    if status in (401, 403):
        raise UpstreamError(
            502, "the upstream model refused this server's credentials (check --upstream-api-key)", status_code=status
        )
    if status == 429:
        raise UpstreamError(503, f"the upstream model is rate-limited: {message}", status_code=status)
    raise UpstreamError(502, f"the upstream model failed with HTTP {status}: {message}", status_code=status)


def _transport_error(exc: httpx.HTTPError) -> UpstreamError:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamError(504, f"the upstream model did not answer in time ({type(exc).__name__})")
    return UpstreamError(502, f"cannot reach the upstream model: {type(exc).__name__}: {exc}")
