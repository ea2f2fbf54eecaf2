"""One hooked LlamaIndex LLM call: the shared :class:`~tlm_hooks.hooks.pipeline.HookedCall`
with three LlamaIndex rules added.

- The original method (and every step of a stream it returns) runs inside
  :func:`~tlm_hooks.unhooked`: whatever it calls on the way — ``CustomLLM.chat``
  calling ``self.complete``, a subclass calling ``super().chat``, the ``openai`` client under
  ``OpenAILike`` hooked by ``patch_all`` — is not scored again. The outermost call is scored once.
- Repeated calls a fallback makes (``Regenerate``, ``Escalate(model=...)``) use the non-streamed
  method of the same LLM (``stream_chat`` -> ``chat``), so they get a whole answer to score.
- Async streams are async generators: ``close()`` closes them with ``aclose()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..._guard import unhooked
from ...hooks.config import HookConfig
from ...hooks.pipeline import HookedCall
from ...hooks.streams import AsyncStreamProxy, SyncStreamProxy
from .adapter import LlamaIndexCallAdapter, sibling_of
from .queries import open_call

__all__ = ["LlamaIndexCall", "call_sync", "call_async"]

logger = logging.getLogger("tlm_hooks")


class LlamaIndexCall(HookedCall):
    """A :class:`HookedCall` whose adapter is the call's own :class:`LlamaIndexCallAdapter`."""

    adapter: LlamaIndexCallAdapter

    def invoke(self) -> Any:
        with unhooked():
            return super().invoke()

    async def ainvoke(self) -> Any:
        with unhooked():
            return await super().ainvoke()

    def request_for(self, response: Any) -> Any:
        # no source client: a scorer without a judge of its own uses its default judge
        return self.adapter.score_request(self.kwargs, response, self.config.options, None)

    def _again(self, overrides: Mapping[str, Any]) -> tuple[Callable[..., Any], dict[str, Any]]:
        kwargs = self.adapter.single_call_kwargs(self.kwargs, overrides)
        return getattr(self.adapter.llm, sibling_of(self.adapter.method)), kwargs

    def call_model(self, **overrides: Any) -> Any:
        method, kwargs = self._again(overrides)
        with unhooked():
            return method(*self.args, **kwargs)

    async def acall_model(self, **overrides: Any) -> Any:
        method, kwargs = self._again(overrides)
        with unhooked():
            return await method(*self.args, **kwargs)


class _SyncStream(SyncStreamProxy):
    """A LlamaIndex sync stream: each step of the LLM's generator runs unhooked."""

    def __next__(self) -> Any:
        with unhooked():
            return super().__next__()


class _AsyncStream(AsyncStreamProxy):
    """A LlamaIndex async stream (an async generator)."""

    async def __anext__(self) -> Any:
        with unhooked():
            return await super().__anext__()

    async def aclose(self) -> None:
        """Close the generator, then score what was received (once)."""
        try:
            await self.__wrapped__.aclose()
        finally:
            await self._end(finished=False)

    async def close(self) -> None:
        await self.aclose()


def _prepare(
    config: HookConfig,
    llm: Any,
    method: str,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    is_async: bool,
) -> LlamaIndexCall | None:
    try:
        adapter = LlamaIndexCallAdapter(llm, method, args, kwargs)
        adapter.slot = open_call(config.policy.threshold, config.mode, adapter.prompt_text())
        return LlamaIndexCall(config, adapter, None, wrapped, args, kwargs, is_async=is_async)
    except Exception as exc:  # our own bug: the app's call goes through unhooked
        logger.warning("tlm-hooks: could not prepare the LlamaIndex call (%s); calling unhooked", exc)
        return None


def call_sync(
    config: HookConfig,
    llm: Any,
    method: str,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run a hooked sync LlamaIndex call (``chat``, ``complete``, ``stream_*``)."""
    call = _prepare(config, llm, method, wrapped, args, kwargs, False)
    if call is None:
        with unhooked():
            return wrapped(*args, **kwargs)
    result = call.invoke()
    kind = call.adapter.kind(result)
    if kind == "completion":
        return call.complete(result)
    if kind == "stream":
        return _SyncStream(result, call)
    return result


async def call_async(
    config: HookConfig,
    llm: Any,
    method: str,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run a hooked async LlamaIndex call (``achat``, ``acomplete``, ``astream_*``)."""
    call = _prepare(config, llm, method, wrapped, args, kwargs, True)
    if call is None:
        with unhooked():
            return await wrapped(*args, **kwargs)
    result = await call.ainvoke()
    kind = call.adapter.kind(result)
    if kind == "completion":
        return await call.acomplete(result)
    if kind == "async_stream":
        return _AsyncStream(result, call)
    return result
