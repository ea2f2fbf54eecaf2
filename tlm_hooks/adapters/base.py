"""The adapter protocols: everything the hook needs to know about one SDK's calls.

:class:`CallAdapter` is what one hooked call uses (the pipeline, the stream proxies, the
fallbacks); :class:`Adapter` adds what the table-driven patcher uses to find and hook clients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..options import TLMOptions
from ..types import ScoreRequest, TrustResult

__all__ = ["Adapter", "CallAdapter", "ResultKind", "Target", "TargetKind"]

ResultKind = Literal["completion", "stream", "async_stream", "raw", "other"]
TargetKind = Literal["sync", "async", "copy"]


class CallAdapter(Protocol):
    """Reads and writes the requests and responses of one kind of call."""

    def prepare_kwargs(
        self, kwargs: Mapping[str, Any], *, client: Any, route_body: Mapping[str, Any] | None, add_logprobs: bool
    ) -> tuple[dict[str, Any], frozenset[str]]:
        """A new kwargs dict for the real call on ``client`` (caller's objects untouched), and
        the names of the parameters the hook added."""
        ...

    def without(self, kwargs: Mapping[str, Any], added: frozenset[str]) -> dict[str, Any]:
        """``kwargs`` minus the parameters the hook added."""
        ...

    def rejects(self, exc: BaseException, param: str) -> bool:
        """True when ``exc`` is the API refusing ``param`` (so the call can go again without it)."""
        ...

    def model_of(self, kwargs: Mapping[str, Any]) -> str | None:
        """The model the call names (``None`` when it names none: the endpoint's own)."""
        ...

    def kind(self, result: Any) -> ResultKind:
        """What the original call returned: a whole response, a stream, a raw response, other."""
        ...

    def score_request(
        self, kwargs: Mapping[str, Any], response: Any, options: TLMOptions | None, source_client: Any = None
    ) -> ScoreRequest:
        """What the scorer sees: prompt and answer of this call (``source_client``: the client called)."""
        ...

    def text_of(self, response: Any) -> str:
        """The answer's text (what is scored and what fallbacks rewrite)."""
        ...

    def with_text(self, response: Any, text: str) -> Any:
        """A copy of ``response`` whose answer is ``text``."""
        ...

    def read_metadata(self, response: Any) -> Mapping[str, Any] | None:
        """The ``tlm_metadata`` a TLM backend put in ``response`` (route mode), else ``None``."""
        ...

    def attach(self, response: Any, result: TrustResult) -> Any:
        """Put ``result`` on ``response`` as ``tlm_metadata``; returns the response to hand back
        (the same object, or a carrier when the type can't hold attributes, e.g. ``str``)."""
        ...

    def accumulate(self, chunks: Sequence[Any]) -> Any:
        """A complete response built from a stream's chunks."""
        ...

    def text_chunk(self, template: Any, text: str) -> Any:
        """A new chunk (shaped like ``template``) that carries ``text`` as content."""
        ...

    def single_call_kwargs(self, kwargs: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
        """kwargs for a repeated, non-streamed, non-raw call with ``overrides`` applied."""
        ...

    def call_client(self, client: Any, kwargs: Mapping[str, Any]) -> Any:
        """Call the same method on another client of this SDK (may return an awaitable)."""
        ...

    def parse_raw(self, raw: Any) -> Any:
        """The parsed response of a raw-response object."""
        ...


class Adapter(CallAdapter, Protocol):
    """A :class:`CallAdapter` for SDK methods the table-driven patcher wraps (one instance per
    kind of call, stateless): it also finds the client behind a patched method's ``self``."""

    sdk: str
    client_classes: tuple[type, ...]
    """The SDK's client classes (``patch_all`` looks for live clients of these)."""

    def is_client(self, obj: Any) -> bool:
        """True when ``obj`` is a client this adapter's calls belong to."""
        ...

    def client_of(self, resource: Any) -> Any:
        """The client object a patched method's ``self`` belongs to."""
        ...

    def forget_cached_wrappers(self, client: Any) -> None:
        """Drop wrappers the client cached before it was hooked (they would bypass the hook)."""
        ...

    def bind_call(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's arguments in the form the other methods read (e.g. a positional body as ``body=``)."""
        ...


@dataclass(frozen=True)
class Target:
    """One SDK method the table-driven patcher wraps: ``module.owner.attr``, handled by ``adapter``.

    An adapter module lists its targets as ``TARGETS``. ``kind`` says how: ``sync``/``async``
    calls are hooked (``async`` is declared, not detected: the SDK's ``AsyncCompletions.create``
    does not look like a coroutine function); ``copy`` methods (``copy``/``with_options``)
    return a client that inherits its parent's hook, and need no adapter.
    """

    module: str
    owner: str
    attr: str
    kind: TargetKind
    adapter: Adapter | None = None

    def __post_init__(self) -> None:
        if self.kind != "copy" and self.adapter is None:
            raise ValueError(f"target {self.module}.{self.owner}.{self.attr}: a {self.kind!r} target needs an adapter")
