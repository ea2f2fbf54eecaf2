"""`LocalBackend`: the embedded local model as a judge."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .base import Generation
from .convert import generations_from_completion, usage_of
from .fanout import complete_n, distinct_seeds
from .usage import record_request

if TYPE_CHECKING:
    from ..local.model import LocalModel

__all__ = ["LocalBackend"]

_MAX_TOP_LOGPROBS = 20


class LocalBackend:
    """Judge calls answered by a `LocalModel` (default: the embedded SmolLM2, loaded on first use),
    or by any model with the same ``achat`` (e.g. the server's upstream model).

    ``n>1`` is one call when the model decodes several choices side by side (a `LocalModel`
    takes up to ``max_choices``); for a model that passes ``n`` on to a server (``forwards_n``,
    the server's upstream model) one request asking for ``n``, topped up with parallel requests
    with distinct seeds when the server answers fewer; else sequential calls with distinct seeds.
    Each call runs on the model's own thread (the event loop never blocks).
    """

    def __init__(self, model: LocalModel | None = None, *, model_name: str | None = None) -> None:
        self._model = model
        # the name to ask for, for a model that serves several (the server's upstream model)
        self.model_name = model_name if getattr(model, "accepts_model_name", False) else None
        label = self.model_name or (model.name if model is not None else "smollm2-135m-instruct")
        self.name = f"local:{label}"

    def __repr__(self) -> str:
        return f"LocalBackend({self.name!r})"

    async def model(self) -> LocalModel:
        """The model, loading the embedded one (in a worker thread) if none was given."""
        if self._model is None:
            from ..local.model import get_default_model

            self._model = await asyncio.to_thread(get_default_model)
            self.name = f"local:{self._model.name}"
        return self._model

    @property
    def n_honoured(self) -> bool | None:
        """Whether ``n>1`` is answered by one model call (``None`` until the model is loaded)."""
        if self._model is None:
            return None
        forwarding: Any = self._model  # an upstream model: what its server was seen to do
        if getattr(forwarding, "forwards_n", False):
            return forwarding.n_support.honoured  # type: ignore[no-any-return]
        return int(getattr(self._model, "max_choices", 1)) > 1

    def with_model(self, model: str) -> LocalBackend:
        """This backend asking for ``model``; a local model serves one model only: ``self``."""
        if not getattr(self._model, "accepts_model_name", False) or model == self.model_name:
            return self
        return LocalBackend(self._model, model_name=model)

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
    ) -> list[Generation]:
        """``n`` answers to ``messages``: as many per model call as the model decodes at once."""
        model = await self.model()

        async def request(size: int, one_seed: int | None) -> list[Generation]:
            # only what is set, so any OpenAI-style model (also an upstream server) takes it
            kwargs: dict[str, Any] = {"max_tokens": max_tokens, "temperature": min(2.0, max(0.0, temperature))}
            if size > 1:
                kwargs["n"] = size
            if one_seed is not None:
                kwargs["seed"] = one_seed
            if logprobs:
                kwargs.update(logprobs=True, top_logprobs=min(top_logprobs, _MAX_TOP_LOGPROBS))
            if stop:
                kwargs["stop"] = list(stop)
            if self.model_name is not None:
                kwargs["model"] = self.model_name
            completion = await model.achat(list(messages), **kwargs)
            record_request(*usage_of(completion))
            return generations_from_completion(completion)[:size]

        forwarding: Any = model
        if getattr(forwarding, "forwards_n", False):
            return await complete_n(request, n, seed, forwarding.n_support)
        per_call = max(1, int(getattr(model, "max_choices", 1)))
        sizes = [min(per_call, n - done) for done in range(0, n, per_call)] or [1]
        seeds: list[int | None] = [seed] if len(sizes) == 1 else list(distinct_seeds(len(sizes), seed))
        out: list[Generation] = []
        for size, one_seed in zip(sizes, seeds, strict=True):
            out.extend(await request(size, one_seed))
        return out
