"""`ModelJudge`: the server's own chat model as a judge for the scoring engine (a ``ChatBackend``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from .scoring import token_logprobs

__all__ = ["ModelJudge"]


class ModelJudge:
    """Adapts a server ``ChatModel`` (``achat`` returning an OpenAI dict) to ``acomplete``."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = str(getattr(model, "name", None) or type(model).__name__)

    async def acomplete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        n: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 256,
        logprobs: bool = False,
        top_logprobs: int = 0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
    ) -> list[Any]:
        """``n`` answers, one model call each (distinct seeds when ``seed`` is given)."""
        from ..llm.base import Generation

        async def one(i: int) -> Any:
            kwargs: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
            if logprobs:
                kwargs.update(logprobs=True, top_logprobs=top_logprobs)
            if seed is not None:
                kwargs["seed"] = seed + i
            if stop:
                kwargs["stop"] = list(stop)
            reply = await self.model.achat(list(messages), **kwargs)
            choice = (reply.get("choices") or [{}])[0]
            usage = reply.get("usage") or {}
            return Generation(
                text=(choice.get("message") or {}).get("content") or "",
                logprobs=token_logprobs((choice.get("logprobs") or {}).get("content")),
                finish_reason=choice.get("finish_reason"),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )

        return list(await asyncio.gather(*(one(i) for i in range(n))))
