"""`CleanlabTLM`: Cleanlab's hosted or self-hosted (VPC) TLM service as a scorer and a client.

httpx is imported on first use, so ``import tlm_hooks`` stays light.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from .._run import run_sync
from ..errors import CleanlabAuthError, InvalidOptionError
from ..options import QualityPreset, Task, TLMOptions, _redact
from ..scorers.base import BaseScorer
from ..types import ScoreRequest, TrustResult
from . import _wire as wire

if TYPE_CHECKING:
    import httpx

    from ._http import Call, RetryPolicy

__all__ = ["CleanlabTLM", "API_KEY_ENV"]

logger = logging.getLogger("tlm_hooks")

API_KEY_ENV = "CLEANLAB_TLM_API_KEY"
DEFAULT_BASE_URL = "https://api.cleanlab.ai"

T = TypeVar("T")


class CleanlabTLM(BaseScorer):
    """Cleanlab's TLM REST service: a :class:`~tlm_hooks.Scorer` plus the documented calls.

    ``api_key`` defaults to ``$CLEANLAB_TLM_API_KEY``. ``base_url`` is the hosted service or a
    VPC install, with or without its trailing ``/api`` (``https://h`` → ``https://h/api/...``;
    ``http://h:8080/api`` → ``http://h:8080/api/...``). ``quality_preset``, ``task`` and
    ``options`` are validated by :class:`TLMOptions` here and sent as ``quality``, ``task``,
    ``options``. Each request waits at most ``timeout`` seconds and is retried at most
    ``max_retries`` times on 408/429/5xx, timeouts and connection failures, each wait capped at
    ``max_retry_wait``. Lists run up to ``max_concurrency`` requests at once. ``http_client`` /
    ``async_http_client`` replace the httpx clients it would create (and are not closed by it);
    ``sleep`` / ``async_sleep`` replace the waiting functions (for tests). The async client it
    creates belongs to one event loop; used from another loop, it opens a new one. A scored request
    with a ``context`` goes to the RAG score endpoint unless ``use_rag_for_context=False``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        quality_preset: QualityPreset = "medium",
        task: Task = "default",
        options: Mapping[str, Any] | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        max_retry_wait: float = 60.0,
        max_concurrency: int = 8,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        use_rag_for_context: bool = True,
        sleep: Callable[[float], None] | None = None,
        async_sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not isinstance(key, str) or not key.strip():
            raise CleanlabAuthError(
                f"no Cleanlab TLM API key: pass CleanlabTLM(api_key=...) or set the {API_KEY_ENV} environment variable"
            )
        self.__api_key = key.strip()
        self.base_url = base_url
        self.api_root = wire.api_root(base_url)
        self.config = TLMOptions(quality_preset=quality_preset, task=task, options=options or {})
        self.timeout = _positive("timeout", timeout)
        self.max_retry_wait = _non_negative("max_retry_wait", max_retry_wait)
        self.max_retries = _count("max_retries", max_retries, low=0)
        self.max_concurrency = _count("max_concurrency", max_concurrency, low=1)
        self.use_rag_for_context = bool(use_rag_for_context)
        self._sleep = sleep or time.sleep
        self._async_sleep = async_sleep or asyncio.sleep
        self._client = http_client
        self._async_client = async_http_client
        self._owns_client = http_client is None
        self._owns_async_client = async_http_client is None
        self._async_loop: Callable[[], asyncio.AbstractEventLoop | None] = _loop_ref(None)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"CleanlabTLM(base_url={self.base_url!r}, quality_preset={self.config.quality_preset!r}, "
            f"task={self.config.task!r}, options={_redact(dict(self.config.options))!r})"
        )

    # --- Scorer ---------------------------------------------------------------------------

    def score(self, request: ScoreRequest) -> TrustResult:
        """Score ``request`` with ``get_confidence_score`` (or RAG ``score`` when it has a context)."""
        path, payload, rag = self._score_call(request)
        return self._to_result(self._post(path, payload), path, rag)

    async def ascore(self, request: ScoreRequest) -> TrustResult:
        """Async form of :meth:`score`."""
        path, payload, rag = self._score_call(request)
        return self._to_result(await self._apost(path, payload), path, rag)

    def _score_call(self, request: ScoreRequest) -> tuple[str, dict[str, Any], bool]:
        config = wire.merged_config(self.config, request.options)
        if request.context and self.use_rag_for_context:
            payload = wire.rag_payload(
                config,
                query=wire.last_user_text(request),
                context=request.context,
                prompt=request.prompt_text(),
                evals=None,
                response=request.response,
            )
            return wire.RAG_SCORE_PATH, payload, True
        return wire.SCORE_PATH, self._tlm_payload(config, request.prompt_text(), request.response), False

    def _to_result(self, data: dict[str, Any], path: str, rag: bool) -> TrustResult:
        url = self.api_root + path
        if rag:
            return wire.rag_to_trust_result(wire.map_rag_result(data, url))
        return wire.to_trust_result(wire.map_tlm_result(data, url))

    # --- the documented calls -------------------------------------------------------------

    def prompt(self, prompt: str | Sequence[str]) -> dict[str, Any] | list[dict[str, Any]]:
        """Generate a response and score it: ``{"response", "trustworthiness_score", "log"?}``.

        A list gives a list in the same order; an item that failed holds ``error`` instead.
        """
        items = _texts("prompt", prompt)
        if items is None:
            return self._prompt_one(prompt)  # type: ignore[arg-type]
        return self._map_sync(self._prompt_one, items, with_response=True)

    async def prompt_async(self, prompt: str | Sequence[str]) -> dict[str, Any] | list[dict[str, Any]]:
        """Async form of :meth:`prompt`."""
        items = _texts("prompt", prompt)
        if items is None:
            return await self._aprompt_one(prompt)  # type: ignore[arg-type]
        return await self._map_async(self._aprompt_one, items, with_response=True)

    def get_trustworthiness_score(
        self, prompt: str | Sequence[str], response: str | Sequence[str]
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Score given responses: ``{"trustworthiness_score", "log"?}``, or a list of them in order."""
        pairs = _pairs(prompt, response)
        if pairs is None:
            return self._score_one((prompt, response))  # type: ignore[arg-type]
        return self._map_sync(self._score_one, pairs, with_response=False)

    async def get_trustworthiness_score_async(
        self, prompt: str | Sequence[str], response: str | Sequence[str]
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Async form of :meth:`get_trustworthiness_score`."""
        pairs = _pairs(prompt, response)
        if pairs is None:
            return await self._ascore_one((prompt, response))  # type: ignore[arg-type]
        return await self._map_async(self._ascore_one, pairs, with_response=False)

    def score_rag(
        self,
        query: str,
        context: str,
        response: str,
        prompt: str | None = None,
        evals: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Score a RAG answer: ``{"trustworthiness": {"score", "log"?}, <eval>: {"score"}, ...}``.

        ``prompt`` should be the exact prompt that produced ``response`` (a plain one is built
        from ``query`` and ``context`` when omitted); ``evals`` default to the service's own.
        """
        payload = self._rag_payload(query, context, prompt, evals, response)
        return wire.map_rag_result(self._post(wire.RAG_SCORE_PATH, payload), self.api_root + wire.RAG_SCORE_PATH)

    async def score_rag_async(
        self,
        query: str,
        context: str,
        response: str,
        prompt: str | None = None,
        evals: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Async form of :meth:`score_rag`."""
        payload = self._rag_payload(query, context, prompt, evals, response)
        data = await self._apost(wire.RAG_SCORE_PATH, payload)
        return wire.map_rag_result(data, self.api_root + wire.RAG_SCORE_PATH)

    def generate_rag(
        self,
        query: str,
        context: str,
        prompt: str | None = None,
        evals: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Generate and score a RAG answer: :meth:`score_rag`'s shape plus ``response``."""
        payload = self._rag_payload(query, context, prompt, evals, None)
        data = self._post(wire.RAG_GENERATE_PATH, payload)
        return wire.map_rag_result(data, self.api_root + wire.RAG_GENERATE_PATH)

    async def generate_rag_async(
        self,
        query: str,
        context: str,
        prompt: str | None = None,
        evals: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Async form of :meth:`generate_rag`."""
        payload = self._rag_payload(query, context, prompt, evals, None)
        data = await self._apost(wire.RAG_GENERATE_PATH, payload)
        return wire.map_rag_result(data, self.api_root + wire.RAG_GENERATE_PATH)

    # --- payloads and single items ----------------------------------------------------------

    @staticmethod
    def _tlm_payload(config: TLMOptions, prompt: str, response: str | None = None) -> dict[str, Any]:
        payload = wire.base_payload(config)
        payload["prompt"] = prompt
        if response is not None:
            payload["response"] = response
        return payload

    def _rag_payload(self, query: Any, context: Any, prompt: Any, evals: Any, response: Any) -> dict[str, Any]:
        for key, value in (("query", query), ("context", context), ("response", response), ("prompt", prompt)):
            if value is not None and not isinstance(value, str):
                raise InvalidOptionError(key, value, "a string")
        if query is None or context is None:
            raise InvalidOptionError("query" if query is None else "context", None, "a string")
        return wire.rag_payload(
            self.config, query=query, context=context, prompt=prompt, evals=wire.check_evals(evals), response=response
        )

    def _prompt_one(self, prompt: str) -> dict[str, Any]:
        payload = self._tlm_payload(self.config, prompt)
        return wire.map_tlm_result(self._post(wire.PROMPT_PATH, payload), self.api_root + wire.PROMPT_PATH)

    async def _aprompt_one(self, prompt: str) -> dict[str, Any]:
        payload = self._tlm_payload(self.config, prompt)
        return wire.map_tlm_result(await self._apost(wire.PROMPT_PATH, payload), self.api_root + wire.PROMPT_PATH)

    def _score_one(self, pair: tuple[str, str]) -> dict[str, Any]:
        payload = self._tlm_payload(self.config, *pair)
        return wire.map_tlm_result(self._post(wire.SCORE_PATH, payload), self.api_root + wire.SCORE_PATH)

    async def _ascore_one(self, pair: tuple[str, str]) -> dict[str, Any]:
        payload = self._tlm_payload(self.config, *pair)
        return wire.map_tlm_result(await self._apost(wire.SCORE_PATH, payload), self.api_root + wire.SCORE_PATH)

    # --- lists ------------------------------------------------------------------------------

    def _map_sync(
        self, fn: Callable[[T], dict[str, Any]], items: list[T], *, with_response: bool
    ) -> list[dict[str, Any]]:
        def safe(item: T) -> dict[str, Any]:
            try:
                return fn(item)
            except Exception as exc:
                return _item_error(exc, with_response)

        if len(items) <= 1 or self.max_concurrency <= 1:
            return [safe(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(items))) as pool:
            return list(pool.map(safe, items))

    async def _map_async(
        self, fn: Callable[[T], Awaitable[dict[str, Any]]], items: list[T], *, with_response: bool
    ) -> list[dict[str, Any]]:
        limit = asyncio.Semaphore(self.max_concurrency)

        async def safe(item: T) -> dict[str, Any]:
            async with limit:
                try:
                    return await fn(item)
                except Exception as exc:
                    return _item_error(exc, with_response)

        return list(await asyncio.gather(*(safe(item) for item in items)))

    # --- transport ----------------------------------------------------------------------------

    def _call(self, path: str, payload: dict[str, Any]) -> tuple[Call, RetryPolicy]:
        from ._http import Call, RetryPolicy

        headers = {"authorization": f"Bearer {self.__api_key}", "content-type": "application/json"}
        call = Call(self.api_root + path, payload, headers, self.timeout, secret=self.__api_key)
        return call, RetryPolicy(max_retries=self.max_retries, max_wait=self.max_retry_wait)

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        from ._http import send

        call, policy = self._call(path, payload)
        return send(self._sync_client(), call, policy, self._sleep)

    async def _apost(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        from ._http import asend

        call, policy = self._call(path, payload)
        return await asend(self._async_client_for_use(), call, policy, self._async_sleep)

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(timeout=self.timeout)
                self._owns_client = True
            return self._client

    def _async_client_for_use(self) -> httpx.AsyncClient:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            if self._owns_async_client and self._async_client is not None and self._async_loop() is not loop:
                # pooled connections belong to the loop that opened them: start afresh on a new loop
                self._async_client = None
            if self._async_client is None:
                import httpx

                self._async_client = httpx.AsyncClient(timeout=self.timeout)
                self._owns_async_client = True
                self._async_loop = _loop_ref(loop)
            return self._async_client

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the httpx clients this object created (a later call opens new ones)."""
        with self._lock:
            client, self._client = (self._client, None) if self._owns_client else (None, self._client)
            aclient, self._async_client = (
                (self._async_client, None) if self._owns_async_client else (None, self._async_client)
            )
        if client is not None:
            client.close()
        if aclient is not None:
            try:
                run_sync(aclient.aclose())
            except Exception as exc:  # its connections may belong to an event loop that is gone
                logger.debug("tlm-hooks: closing the async Cleanlab client failed: %s", exc)

    async def aclose(self) -> None:
        """Async form of :meth:`close`."""
        with self._lock:
            client, self._client = (self._client, None) if self._owns_client else (None, self._client)
            aclient, self._async_client = (
                (self._async_client, None) if self._owns_async_client else (None, self._async_client)
            )
        if client is not None:
            client.close()
        if aclient is not None:
            await aclient.aclose()

    def __enter__(self) -> CleanlabTLM:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> CleanlabTLM:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _loop_ref(loop: asyncio.AbstractEventLoop | None) -> Callable[[], asyncio.AbstractEventLoop | None]:
    """A weak reference to ``loop`` (or a callable returning ``None``)."""
    return (lambda: None) if loop is None else weakref.ref(loop)


def _item_error(exc: BaseException, with_response: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"response": None} if with_response else {}
    out["trustworthiness_score"] = None
    out["error"] = {"message": str(exc) or type(exc).__name__, "type": type(exc).__name__}
    return out


def _texts(key: str, value: Any) -> list[str] | None:
    """``None`` for one string; the items of a list of strings; else :class:`InvalidOptionError`."""
    if isinstance(value, str):
        return None
    if not isinstance(value, Sequence) or isinstance(value, (bytes, bytearray)):
        raise InvalidOptionError(key, value, "a string or a list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidOptionError(f"{key}[{i}]", item, "a string")
    return list(value)


def _pairs(prompt: Any, response: Any) -> list[tuple[str, str]] | None:
    prompts, responses = _texts("prompt", prompt), _texts("response", response)
    if prompts is None and responses is None:
        return None
    if prompts is None or responses is None or len(prompts) != len(responses):
        raise InvalidOptionError(
            "response", response, "a string when prompt is a string, or a list as long as the prompt list"
        )
    return list(zip(prompts, responses, strict=True))


def _positive(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise InvalidOptionError(key, value, "a number of seconds > 0")
    return float(value)


def _non_negative(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise InvalidOptionError(key, value, "a number of seconds >= 0")
    return float(value)


def _count(key: str, value: Any, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidOptionError(key, value, f"an integer >= {low}")
    return value
